//! Bearer authentication for `/api/*`.
//!
//! - The master key (compared in constant time) acts as `human` and may do anything.
//! - A named token (`loopk_…`, found by the hash of its secret) acts under its name, within
//!   its role (see [`crate::roles`]) and its request rate.
//! - A claim's scoped token (see [`crate::token`]) acts as the claiming agent, within the
//!   limits of its [`Scope`].
//!
//! The [`Caller`], its [`Actor`] (and [`Scope`] for scoped tokens) reach handlers as extensions.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loop_core::token::ApiToken;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::scope::Scope;
use crate::{named_token, token};

pub async fn require_bearer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let caller = match authenticate(&state, bearer(&req)).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    // The rate first: it costs nothing, and what a role may do can take a lookup.
    if let Caller::Named(token) = &caller
        && let Err(wait) = state.rates.take(&token.id, token.rate_per_minute, std::time::Instant::now())
    {
        let message =
            format!("token {} may send {} requests a minute; wait and retry", token.name, token.rate_per_minute);
        return ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).retry_after(wait).into_response();
    }
    if let Err(refused) = caller.may(&state, req.method(), req.uri().path()).await {
        return refused;
    }
    let actor = match caller.actor(req.headers()) {
        Ok(actor) => actor,
        Err(refused) => return refused.into_response(),
    };
    if let Caller::Claim(scope) = &caller {
        req.extensions_mut().insert(scope.clone());
    }
    req.extensions_mut().insert(actor);
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// For `/mcp`: valid credentials, or a 401 before anything runs. What each tool may then do is
/// decided by `/api/*`, which every tool goes through with the same credentials.
pub async fn require_credentials(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match authenticate(&state, bearer(&req)).await {
        Ok(_) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// Who the request's Bearer credentials are: the master key, a live named token, or a live
/// claim's token.
pub(crate) async fn authenticate(state: &AppState, bearer: Option<String>) -> Result<Caller, Response> {
    let Some(bearer) = bearer else {
        return Err(unauthorized("Missing or malformed Authorization header: send Authorization: Bearer <key>"));
    };
    if state.config.api_key.is_valid(&bearer) {
        return Ok(Caller::Master);
    }
    if bearer.starts_with(named_token::PREFIX) {
        return match named(state, &bearer).await {
            Ok(token) => Ok(Caller::Named(token)),
            Err(refused) => Err(refused),
        };
    }
    let Some(session_id) = token::session_of(&state.config.api_key, &bearer) else {
        return Err(unauthorized("Invalid API key"));
    };
    match scope_of(state, &session_id).await {
        Ok(Some(scope)) => Ok(Caller::Claim(scope)),
        Ok(None) => Err(unauthorized("This token's claim has ended (its lease expired or the work was reported)")),
        Err(e) => Err(e.into_response()),
    }
}

/// The live named token whose secret this is, looked up by its hash on every request, so a
/// revocation holds at once on every node. Its use is noted (at most once a minute).
pub(crate) async fn named(state: &AppState, secret: &str) -> Result<ApiToken, Response> {
    let found =
        state.store.token_by_hash(&named_token::hash(secret)).await.map_err(|e| ApiError::from(e).into_response())?;
    let Some(token) = found else { return Err(unauthorized("Invalid API key")) };
    let now = loop_core::Clock::now(&loop_core::SystemClock);
    if let Some(why) = token.dead(now) {
        return Err(unauthorized(&format!("Token {} was {why}: ask an admin for a new one", token.name)));
    }
    if token.use_to_note(now) {
        let (store, used) = (state.store.clone(), token.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&used).await {
                tracing::warn!(token = %used.name, error = %e, "could not note when a token was last used");
            }
        });
    }
    Ok(token)
}

/// The credentials of `Authorization: Bearer …`.
fn bearer(req: &Request) -> Option<String> {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    header.and_then(|h| h.strip_prefix("Bearer ")).map(str::to_owned)
}

/// The scope of a token's session, or `None` once the token is dead.
async fn scope_of(state: &AppState, session_id: &str) -> Result<Option<Scope>, ApiError> {
    let session = match state.store.get_session(session_id).await {
        Ok(s) => s,
        Err(loop_core::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let issue = match state.store.get_issue(&session.issue_id).await {
        Ok(issue) => issue,
        Err(loop_core::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Scope::of(&session, issue.number, loop_core::Clock::now(&loop_core::SystemClock)))
}

fn unauthorized(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response()
}

/// The master API key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn is_valid(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A configured secret (webhook secrets). Its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison.
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(…)")
    }
}
