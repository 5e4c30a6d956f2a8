//! Loop's HTTP API. Handlers are thin: they parse input, call the store, and wrap the result
//! in the envelope the existing clients expect (`{data}` or `{data, total}`).

mod auth;
mod caller;
mod closing;
mod connections;
mod error;
mod extract;
mod health;
mod leases;
mod mcp;
pub mod model_hints;
mod named_token;
mod openapi;
mod prompting;
mod rate_limit;
mod roles;
mod routes;
mod scope;
mod token;
mod web;
mod widget;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use loop_core::Store;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use auth::{ApiKey, Secret};
pub use closing::Closing;
pub use error::{ApiError, ApiResult};

/// Bodies above this size are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub api_key: ApiKey,
    /// Browser origins allowed to call the API (CORS).
    pub cors_origins: Vec<String>,
    /// How long a claim holds its issue without a heartbeat.
    pub lease_ttl: Duration,
    /// How often expired leases are looked for.
    pub sweep_interval: Duration,
    /// The URL agents call back on (`{{loopUrl}}` in prompts).
    pub public_url: String,
    pub webhooks: WebhookSecrets,
    /// The GitHub label that turns an issue into a Loop task.
    pub github_ready_label: String,
    /// Branches whose red CI runs open a fix task for `loop agent` (under the CI signal); a
    /// green run of the same workflow and branch closes the signal.
    pub ci_fix_branches: Vec<String>,
    /// Accept unsigned webhook deliveries for providers without a secret (local trials only).
    pub insecure_webhooks: bool,
    /// New signal issues go straight to `todo` instead of `triage`.
    pub auto_triage: bool,
    /// Triage and backlog issues untouched for this many days are closed by the sweeper, with
    /// a comment saying so. Off when `None`.
    pub stale_after_days: Option<u32>,
    /// The model each kind of claim should use, returned as `meta.model`.
    pub model_hints: model_hints::ModelHints,
    /// Closed when the server starts shutting down (see [`serve`]).
    pub closing: Closing,
    /// How long a client may take to send a request's headers before its connection is
    /// closed (see [`serve`]).
    pub header_timeout: Duration,
    /// How long a request body may send nothing before the request is refused with 408.
    pub body_timeout: Duration,
    /// Connections kept open at most: past it, idle ones are closed so that new ones can be
    /// accepted (set below the process's file limit).
    pub max_connections: usize,
}

/// Each provider's webhook secret; a provider without one refuses deliveries.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    pub github: Option<Secret>,
    pub sentry: Option<Secret>,
    pub posthog: Option<Secret>,
}

impl ServerConfig {
    pub fn new(api_key: ApiKey) -> Self {
        Self {
            api_key,
            cors_origins: Self::default_cors_origins(),
            lease_ttl: Duration::from_secs(30 * 60),
            sweep_interval: Duration::from_secs(1),
            public_url: "http://127.0.0.1:5667".into(),
            webhooks: WebhookSecrets::default(),
            github_ready_label: "loop:ready".into(),
            ci_fix_branches: Vec::new(),
            insecure_webhooks: false,
            auto_triage: false,
            stale_after_days: None,
            model_hints: model_hints::ModelHints::default(),
            closing: Closing::default(),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }

    /// The reference's origins: its dashboard in development and the hosted app.
    pub fn default_cors_origins() -> Vec<String> {
        vec!["http://localhost:5668".into(), "https://app.looped.me".into()]
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ServerConfig>,
    /// Bumped after every change that may make an issue dispatchable; long-polls wait on it.
    pub changes: Arc<tokio::sync::watch::Sender<u64>>,
    pub prompts: Arc<loop_prompts::PromptEngine>,
    pub templates: Arc<prompting::TemplateCache>,
    /// Dashboard sessions ended by "Log out" on this node.
    pub logouts: Arc<web::Revoked>,
    /// Whether writes are failing for want of storage (see `health.rs`).
    pub health: Arc<health::StorageHealth>,
    /// Requests per named token, on this node.
    pub rates: Arc<rate_limit::RateLimiter>,
    /// Attempts per address (sign-ins, widget feedback), on this node.
    pub per_address: Arc<rate_limit::RateLimiter>,
}

impl AppState {
    /// Something this node did may make an issue dispatchable: wake the long-polls and live
    /// pages here, and tell the other nodes on the same database.
    pub fn changed(&self) {
        self.changed_elsewhere();
        let store = self.store.clone();
        tokio::spawn(async move { store.announce_change().await });
    }

    /// Another node announced a change.
    fn changed_elsewhere(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The whole application: public routes, the authenticated API, CORS, tracing and limits.
/// Also starts the lease sweeper, so it must be called inside a Tokio runtime.
pub fn app(store: Arc<dyn Store>, config: ServerConfig) -> Router {
    let cors = cors(&config.cors_origins);
    let state = AppState {
        store,
        config: Arc::new(config),
        changes: Arc::new(tokio::sync::watch::channel(0).0),
        prompts: Arc::new(loop_prompts::PromptEngine::new()),
        templates: Arc::new(prompting::TemplateCache::default()),
        logouts: Arc::new(web::Revoked::default()),
        health: Arc::new(health::StorageHealth::default()),
        rates: Arc::default(),
        per_address: Arc::default(),
    };
    tokio::spawn(leases::sweep(state.clone()));
    let follower = state.clone();
    tokio::spawn(async move {
        let store = follower.store.clone();
        store.follow_changes(Arc::new(move || follower.changed_elsewhere())).await;
    });
    let body_timeout = state.config.body_timeout;
    let (api, openapi) = routes::api(state.clone()).split_for_parts();
    let openapi_json = Arc::new(openapi::document(openapi));
    let routes = routes::system::router(openapi_json)
        .merge(api)
        .merge(web::router())
        .merge(widget::router())
        .fallback(routes::system::not_found)
        .method_not_allowed_fallback(routes::system::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), leases::wake_on_write))
        .layer(axum::middleware::from_fn_with_state(state.clone(), health::record))
        .with_state(state.clone());
    // The MCP tools call the rest of the application in process.
    routes
        .clone()
        .merge(mcp::router(state, routes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .layer(cors)
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-loop-agent"),
        ])
        .max_age(Duration::from_secs(86_400))
}

/// Creates the templates Loop ships that this database has never had, and brings those still
/// running an earlier shipped text up to this release's (idempotent; a user's own versions and
/// deletions stick). Returns what changed, by slug.
pub async fn seed_default_templates(
    store: &dyn Store,
) -> loop_core::Result<Vec<(&'static str, loop_core::template::Seeded)>> {
    let mut changed = Vec::new();
    for t in loop_prompts::defaults::TEMPLATES {
        let seed = loop_core::template::TemplateSeed {
            id: t.id.into(),
            version_id: t.version_id.into(),
            slug: t.slug.into(),
            name: t.name.into(),
            description: t.description.into(),
            conditions: serde_json::from_value(t.conditions()).map_err(loop_core::Error::internal)?,
            specificity: t.specificity.try_into().map_err(loop_core::Error::Internal)?,
            content: t.content.into(),
        };
        match store.seed_template(seed).await? {
            loop_core::template::Seeded::Kept => {}
            done => changed.push((t.slug, done)),
        }
    }
    Ok(changed)
}

/// Serves `app` (made with `config`) until `shutdown` resolves, then lets in-flight requests
/// finish; [`ServerConfig::closing`] ends the long-polls and live pages first.
///
/// HTTP/1.1 through hyper with a timer, so that a client that opens a connection and never
/// finishes its request headers is dropped after [`ServerConfig::header_timeout`] instead of
/// holding the connection for ever (`axum::serve` cannot set that). Past
/// [`ServerConfig::max_connections`] (or when accepting fails for want of file descriptors),
/// idle connections are closed, oldest first, so that real requests keep being served.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(config.header_timeout);
    let connections = Arc::new(connections::Connections::default());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) => {
                    // Out of file descriptors, say: make room, and wait a moment rather than spin.
                    let shed = connections.shed_idle(connections.open() / 8 + 1);
                    tracing::warn!(error = %e, open = connections.open(), shed, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(if shed > 0 { 1 } else { 100 })).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let open = connections.open();
        if open >= config.max_connections {
            let shed = connections.shed_idle(open + 1 - config.max_connections + config.max_connections / 8);
            tracing::warn!(open, limit = config.max_connections, shed, "too many connections: closing idle ones");
        }
        let _ = stream.set_nodelay(true);
        let (entry, guard) = connections.add();
        let service = connections::track(entry.clone(), app.clone(), connections::PeerAddr(peer.ip()));
        let connection =
            http.serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service));
        tokio::spawn(async move {
            let _guard = guard;
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = entry.closing() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    config.closing.close();
    connections.close_all().await;
    Ok(())
}
