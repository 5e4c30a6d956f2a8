//! `loop serve` and `loop migrate`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use loop_core::template::Seeded;
use loop_core::{Store, SystemClock};
use loop_server::{ApiKey, ServerConfig};
use loop_store::postgres::{PgConfig, PgStore};
use loop_store::sqlite::{SqliteConfig, SqliteStore};

use crate::api_key;

#[derive(Args, Debug)]
pub struct StorageArgs {
    /// Where Loop keeps its SQLite database and generated API key.
    /// [default: the per-user data directory, e.g. ~/.local/share/loop]
    #[arg(long, env = "LOOP_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database to use instead of the embedded SQLite file: sqlite:///srv/loop.db, or
    /// postgres://user:password@host:5432/loop (add ?sslmode=require for TLS) to run several
    /// `loop serve` nodes on one database.
    #[arg(long, env = "LOOP_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// PostgreSQL only: the most connections this node opens.
    #[arg(long, env = "LOOP_DB_MAX_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,

    /// PostgreSQL only: seconds a request waits for a free connection before it fails.
    #[arg(long, env = "LOOP_DB_ACQUIRE_TIMEOUT", default_value_t = 10)]
    pub db_acquire_timeout: u64,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Address or host name to listen on: 127.0.0.1, ::1, localhost, or 0.0.0.0 / :: for
    /// every interface.
    #[arg(long, env = "LOOP_BIND", default_value = "127.0.0.1")]
    pub bind: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 5667)]
    pub port: u16,

    /// Skip applying database migrations at start.
    #[arg(long)]
    pub no_migrate: bool,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive such as loop_server=debug.
    #[arg(long, env = "LOOP_LOG", default_value = "info")]
    pub log_level: String,

    /// Write logs as JSON lines (for log collectors).
    #[arg(long, env = "LOOP_LOG_JSON")]
    pub log_json: bool,

    /// Seconds a claim holds its issue without a heartbeat before it returns to todo.
    #[arg(long, env = "LOOP_LEASE_TTL", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_ttl: u64,

    /// The URL agents should call back on, put in prompts as {{loopUrl}} [default: the listen address].
    #[arg(long, env = "LOOP_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Put new signal issues straight into todo instead of triage.
    #[arg(long, env = "LOOP_AUTO_TRIAGE")]
    pub auto_triage: bool,

    /// Close triage and backlog issues nobody touched for this many days (with a comment
    /// saying so). Off unless set.
    #[arg(long, env = "LOOP_STALE_AFTER_DAYS", value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub stale_after_days: Option<u32>,

    /// The model a kind of claim should use, returned to runners as the claim's meta.model:
    /// KEY=MODEL, comma-separated or repeated; KEY is a template slug, an issue type, or
    /// `triage` (every *-triage template). E.g. triage=haiku,hypothesis=opus.
    #[arg(long = "model-hint", env = "LOOP_MODEL_HINTS", value_delimiter = ',', value_name = "KEY=MODEL")]
    pub model_hints: Vec<String>,

    /// The GitHub issue label that turns a GitHub issue into a Loop task.
    #[arg(long, env = "LOOP_GITHUB_READY_LABEL", default_value = "loop:ready")]
    pub github_ready_label: String,

    /// Branches (comma-separated) whose failed GitHub CI runs open a fix task under the CI
    /// signal, for `loop agent` to pick up; a later green run of that workflow closes the signal.
    #[arg(long, env = "LOOP_CI_FIX_BRANCHES", value_delimiter = ',', value_name = "BRANCHES")]
    pub ci_fix_branches: Vec<String>,

    /// Accept UNSIGNED webhook deliveries from providers that have no secret configured. For
    /// local trials only; every such delivery is logged. Secrets come from
    /// LOOP_GITHUB_WEBHOOK_SECRET, LOOP_SENTRY_CLIENT_SECRET and LOOP_POSTHOG_WEBHOOK_SECRET.
    #[arg(long, env = "LOOP_INSECURE_WEBHOOKS")]
    pub insecure_webhooks: bool,

    /// Browser origins allowed to call the API, comma-separated.
    #[arg(
        long,
        env = "LOOP_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:5668,https://app.looped.me"
    )]
    pub cors_origins: Vec<String>,
}

/// Webhook secrets, read from the environment (never from flags, which `ps` shows).
fn webhook_secrets() -> loop_server::WebhookSecrets {
    let secret = |var: &str| std::env::var(var).ok().filter(|s| !s.trim().is_empty()).map(loop_server::Secret::new);
    loop_server::WebhookSecrets {
        github: secret("LOOP_GITHUB_WEBHOOK_SECRET"),
        sentry: secret("LOOP_SENTRY_CLIENT_SECRET"),
        posthog: secret("LOOP_POSTHOG_WEBHOOK_SECRET"),
    }
}

/// This module's log target. The binary crate is `loop`, a Rust keyword, so the default
/// target would read `r#loop::serve`.
const LOG_TARGET: &str = "loop::serve";

/// Reads `LOOP_API_KEY` here rather than through clap so the key never shows in `--help`.
fn api_key_from_env() -> Option<String> {
    std::env::var("LOOP_API_KEY").ok()
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_level, args.log_json)?;
    let max_connections = match crate::file_limit::raise() {
        Ok(limit) => {
            tracing::info!(target: LOG_TARGET, was = limit.was, now = limit.now, hard = limit.hard, "open-file limit");
            limit.connections()
        }
        Err(e) => {
            tracing::warn!(target: LOG_TARGET, error = %e, "cannot read the open-file limit; assuming 1024");
            crate::file_limit::Limit { was: 1024, now: 1024, hard: 1024 }.connections()
        }
    };
    let data_dir = data_dir(&args.storage)?;
    let (key, key_source) = api_key::load_or_create(api_key_from_env(), &data_dir)?;
    let store = open_store(&args.storage, &data_dir, !args.no_migrate).await?;

    // A host name listens on the first of its addresses that is free.
    let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port)).await.with_context(|| {
        format!("cannot listen on {} port {} (is another Loop running? try --port)", args.bind, args.port)
    })?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}");
    print_banner(&url, &key, &key_source);
    if let Some(warning) = reach_warning(local, args.public_url.as_deref()) {
        tracing::warn!(target: LOG_TARGET, "{warning}");
    }

    let seeded = loop_server::seed_default_templates(store.store().as_ref()).await?;
    let created = seeded.iter().filter(|(_, s)| *s == Seeded::Created).count();
    if created > 0 {
        tracing::info!(target: LOG_TARGET, templates = created, "seeded the default prompt templates");
    }
    for (slug, _) in seeded.iter().filter(|(_, s)| *s == Seeded::Updated) {
        tracing::info!(target: LOG_TARGET, template = slug, "a default prompt template now runs this release's text");
    }
    let model_hints = loop_server::model_hints::ModelHints::parse(&args.model_hints).map_err(|e| anyhow::anyhow!(e))?;
    let config = ServerConfig {
        public_url: args.public_url.unwrap_or_else(|| url.clone()),
        cors_origins: args.cors_origins,
        lease_ttl: std::time::Duration::from_secs(args.lease_ttl),
        webhooks: webhook_secrets(),
        github_ready_label: args.github_ready_label,
        ci_fix_branches: args.ci_fix_branches.iter().map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()).collect(),
        insecure_webhooks: args.insecure_webhooks,
        auto_triage: args.auto_triage,
        stale_after_days: args.stale_after_days,
        model_hints,
        max_connections,
        ..ServerConfig::new(ApiKey::new(key))
    };
    let app = loop_server::app(store.store(), config.clone());
    if config.insecure_webhooks {
        tracing::warn!(target: LOG_TARGET,
            "--insecure-webhooks: providers without a secret accept UNSIGNED deliveries; do not expose this server"
        );
    }
    tracing::info!(target: LOG_TARGET, %url, "listening");
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!(target: LOG_TARGET, "shutting down: ending long-polls, finishing requests in flight");
    };
    loop_server::serve(listener, app, &config, shutdown).await.context("server error")?;
    tracing::info!(target: LOG_TARGET, "shutting down: closing the database");
    store.close().await;
    Ok(())
}

pub async fn migrate(args: StorageArgs) -> Result<()> {
    let data_dir = data_dir(&args)?;
    let store = open_store(&args, &data_dir, false).await?;
    let applied = store.migrate().await?;
    store.close().await;
    println!("{applied} migration(s) applied; the database is up to date.");
    Ok(())
}

fn print_banner(url: &str, key: &str, source: &api_key::Source) {
    println!("Loop is listening on {url}");
    println!("Dashboard: open {url} in a browser and sign in with the API key.");
    match source {
        api_key::Source::Generated(path) => {
            println!("Generated an API key. It is shown only this once and stored in {}:", path.display());
            println!();
            println!("    {key}");
            println!();
            println!(
                "Use it as: Authorization: Bearer <key>   (CLI: loop config set token <key>; dashboard: paste it)"
            );
        }
        api_key::Source::File(path) => println!("API key: stored in {} (LOOP_API_KEY overrides it)", path.display()),
        api_key::Source::Environment => println!("API key: from LOOP_API_KEY"),
    }
}

pub(crate) fn data_dir(args: &StorageArgs) -> Result<PathBuf> {
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => dirs::data_dir()
            .map(|d| d.join("loop"))
            .context("no per-user data directory on this system: pass --data-dir or set LOOP_DATA_DIR")?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    Ok(dir)
}

/// The database behind a node: the embedded SQLite file or a shared PostgreSQL.
#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Backend {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(s) => Arc::new(s.clone()),
            Backend::Postgres(s) => Arc::new(s.clone()),
        }
    }

    async fn migrate(&self) -> loop_core::Result<usize> {
        match self {
            Backend::Sqlite(s) => s.migrate().await,
            Backend::Postgres(s) => s.migrate().await,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(s) => s.close().await,
        }
    }

    pub(crate) async fn export(&self, out: &mut loop_store::export::ExportSink<'_>) -> loop_core::Result<u64> {
        match self {
            Backend::Sqlite(s) => s.export(out).await,
            Backend::Postgres(s) => s.export(out).await,
        }
    }

    pub(crate) async fn import(&self, rows: &mut loop_store::export::ImportRows<'_>) -> loop_core::Result<u64> {
        match self {
            Backend::Sqlite(s) => s.import(rows).await,
            Backend::Postgres(s) => s.import(rows).await,
        }
    }
}

pub(crate) async fn open_store(args: &StorageArgs, data_dir: &std::path::Path, migrate: bool) -> Result<Backend> {
    let location = match &args.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let config = PgConfig {
                migrate,
                max_connections: args.db_max_connections,
                acquire_timeout: std::time::Duration::from_secs(args.db_acquire_timeout),
                ..PgConfig::new(url.clone())
            };
            return Ok(Backend::Postgres(PgStore::open(config, Arc::new(SystemClock)).await.map_err(cannot_open)?));
        }
        Some(url) if url.starts_with("sqlite:") => url.clone(),
        Some(url) => bail!("unsupported database URL {url:?}: expected sqlite://PATH or postgres://…"),
        None => data_dir.join("loop.db").to_string_lossy().into_owned(),
    };
    let config = SqliteConfig { migrate, ..SqliteConfig::new(location) };
    Ok(Backend::Sqlite(SqliteStore::open(config, Arc::new(SystemClock)).await.map_err(cannot_open)?))
}

/// Opening the database fails for reasons outside Loop (a server down, a wrong password, a
/// path): said as they are, not as an "internal error".
fn cannot_open(e: loop_core::Error) -> anyhow::Error {
    match e {
        loop_core::Error::Internal(message) => anyhow::anyhow!(message),
        other => other.into(),
    }
}

fn init_logging(level: &str, json: bool) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("invalid --log-level {level:?} ({e}): use error, warn, info, debug or trace"))?;
    // Colours only on a terminal: a log redirected to a file stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init()
    } else {
        builder.init()
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// What to warn of when the server listens beyond this machine without `--public-url`.
fn reach_warning(local: std::net::SocketAddr, public_url: Option<&str>) -> Option<String> {
    if local.ip().is_loopback() || public_url.is_some() {
        return None;
    }
    Some(format!(
        "listening on {local}, beyond this machine, without --public-url: prompts tell agents to call back \
         on http://{local}, which they may not reach; set --public-url to the address agents use. Traffic is \
         plain HTTP (the API key and tokens travel in clear) unless a TLS proxy is in front"
    ))
}

#[cfg(test)]
mod tests {
    use super::reach_warning;

    #[test]
    fn listening_beyond_this_machine_without_a_public_url_is_warned_of() {
        for local in ["127.0.0.1:5667", "[::1]:5667"] {
            assert_eq!(reach_warning(local.parse().unwrap(), None), None, "{local}");
        }
        for local in ["0.0.0.0:5667", "[::]:5667", "192.0.2.7:80"] {
            let warning = reach_warning(local.parse().unwrap(), None).expect(local);
            assert!(warning.contains("--public-url") && warning.contains("plain HTTP"), "{warning}");
        }
        assert_eq!(reach_warning("0.0.0.0:5667".parse().unwrap(), Some("https://loop.example")), None);
    }
}
