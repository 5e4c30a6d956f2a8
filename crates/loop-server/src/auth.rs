//! Bearer authentication for `/api/*`.
//!
//! - The master key (compared in constant time) acts as `human` and may do anything.
//! - A claim's scoped token (see [`crate::token`]) acts as the claiming agent while its lease
//!   runs, and may only read, create issues, comments and relations, update its own issue,
//!   post reviews and draft template versions, and renew or end its own session.
//!
//! The caller's [`Actor`] (and [`Scope`] for scoped tokens) reach handlers as extensions.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loop_core::Actor;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;
use crate::token;

/// What a scoped token is limited to.
#[derive(Debug, Clone)]
pub struct Scope {
    pub session_id: String,
    pub issue_id: String,
    pub issue_number: i64,
}

pub async fn require_bearer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(bearer) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return unauthorized("Missing or malformed Authorization header: send Authorization: Bearer <key>");
    };
    if state.config.api_key.is_valid(bearer) {
        req.extensions_mut().insert(Actor::human());
        return next.run(req).await;
    }
    let Some(session_id) = token::session_of(&state.config.api_key, bearer) else {
        return unauthorized("Invalid API key");
    };
    let scope = match scope_of(&state, &session_id).await {
        Ok(Some(scope)) => scope,
        Ok(None) => return unauthorized("This token's claim has ended (its lease expired or the work was reported)"),
        Err(e) => return e.into_response(),
    };
    if !allowed(&scope, req.method(), req.uri().path()) {
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
    let session = state.store.get_session(&scope.session_id).await;
    let agent = session.map(|s| s.agent).unwrap_or_else(|_| "agent".into());
    req.extensions_mut().insert(Actor::agent(agent));
    req.extensions_mut().insert(scope);
    next.run(req).await
}

/// The scope of a live session, or `None` once its lease is over.
async fn scope_of(state: &AppState, session_id: &str) -> Result<Option<Scope>, ApiError> {
    let session = match state.store.get_session(session_id).await {
        Ok(s) => s,
        Err(loop_core::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !session.is_open() || session.lease_expires_at <= loop_core::Clock::now(&loop_core::SystemClock) {
        return Ok(None);
    }
    let issue = state.store.get_issue(&session.issue_id).await?;
    Ok(Some(Scope { session_id: session.id, issue_id: issue.id, issue_number: issue.number }))
}

/// What a scoped token may do.
fn allowed(scope: &Scope, method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let own_issue = |s: &str| s == scope.issue_id || s == scope.issue_number.to_string();
    match (method.as_str(), parts.as_slice()) {
        // Reading is free, except that claiming is a GET.
        ("GET", ["api", "dispatch", "next"]) => false,
        ("GET" | "HEAD", _) => true,
        ("POST", ["api", "issues"]) => true,
        ("POST", ["api", "issues", _, "comments" | "relations"]) => true,
        ("PATCH", ["api", "issues", id]) => own_issue(id),
        ("POST", ["api", "prompt-reviews"]) => true,
        ("POST", ["api", "templates", _, "versions"]) => true,
        ("POST", ["api", "sessions", id, "heartbeat" | "release" | "fail"]) => *id == scope.session_id,
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scoped_token_reaches_only_its_own_claim() {
        let s = Scope { session_id: "s1".into(), issue_id: "i1".into(), issue_number: 7 };
        let ok = |m: Method, p: &str| allowed(&s, &m, p);
        assert!(ok(Method::GET, "/api/issues/anything"));
        assert!(!ok(Method::GET, "/api/dispatch/next"));
        assert!(ok(Method::PATCH, "/api/issues/i1") && ok(Method::PATCH, "/api/issues/7"));
        assert!(!ok(Method::PATCH, "/api/issues/i2"));
        assert!(ok(Method::POST, "/api/issues") && ok(Method::POST, "/api/issues/i9/comments"));
        assert!(ok(Method::POST, "/api/sessions/s1/heartbeat") && !ok(Method::POST, "/api/sessions/s2/heartbeat"));
        assert!(!ok(Method::DELETE, "/api/issues/i1"));
        assert!(!ok(Method::POST, "/api/templates/t/versions/v/promote"));
        assert!(!ok(Method::POST, "/api/labels"));
    }
}
