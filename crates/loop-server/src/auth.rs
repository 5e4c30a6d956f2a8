//! Bearer authentication for `/api/*`.
//!
//! - The master key (compared in constant time) acts as `human` and may do anything.
//! - A claim's scoped token (see [`crate::token`]) acts as the claiming agent, within the
//!   limits of its [`Scope`].
//!
//! The caller's [`Actor`] (and [`Scope`] for scoped tokens) reach handlers as extensions.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loop_core::Actor;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;
use crate::scope::Scope;
use crate::token;

pub async fn require_bearer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let (actor, scope) = match authenticate(&state, bearer(&req)).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    if let Some(scope) = scope {
        if !scope.allows(req.method(), req.uri().path()) {
            if scope.ended {
                return unauthorized(
                    "This token's claim has ended (its lease expired or the work was reported); \
                     for a day it may still post its one review of the prompt (POST /api/prompt-reviews)",
                );
            }
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this token is scoped to the claim of issue #{}: it cannot {} {}",
                    scope.issue_number,
                    req.method(),
                    req.uri().path()
                ),
            )
            .into_response();
        }
        req.extensions_mut().insert(scope);
    }
    req.extensions_mut().insert(actor);
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

/// Who the request's Bearer credentials are: the master key (`human`), or a live claim's
/// token (its agent, within its scope).
async fn authenticate(state: &AppState, bearer: Option<String>) -> Result<(Actor, Option<Scope>), Response> {
    let Some(bearer) = bearer else {
        return Err(unauthorized("Missing or malformed Authorization header: send Authorization: Bearer <key>"));
    };
    if state.config.api_key.is_valid(&bearer) {
        return Ok((Actor::human(), None));
    }
    let Some(session_id) = token::session_of(&state.config.api_key, &bearer) else {
        return Err(unauthorized("Invalid API key"));
    };
    match scope_of(state, &session_id).await {
        Ok(Some(scope)) => Ok((Actor::agent(scope.agent.clone()), Some(scope))),
        Ok(None) => Err(unauthorized("This token's claim has ended (its lease expired or the work was reported)")),
        Err(e) => Err(e.into_response()),
    }
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
