//! Who sent a request, what they may do, and the name their actions are recorded under.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use loop_core::Actor;
use loop_core::actor::ActorKind;
use loop_core::dispatch::ClaimLimit;
use loop_core::token::{ApiToken, TokenRole};

use crate::AppState;
use crate::error::ApiError;
use crate::roles::{self, Access};
use crate::scope::Scope;

/// The credentials a request came with.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The master key: the bootstrap admin, recorded as `human`.
    Master,
    /// A named token: recorded under its name.
    Named(ApiToken),
    /// A claim's token: recorded as the claiming agent.
    Claim(Scope),
}

impl Caller {
    /// Refuses (403, or 401 for a claim that has ended) what the caller may not do.
    pub async fn may(&self, state: &AppState, method: &Method, path: &str) -> Result<(), Response> {
        match self {
            Caller::Master => Ok(()),
            Caller::Claim(scope) if scope.allows(method, path) => Ok(()),
            Caller::Claim(scope) if scope.ended => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "This token's claim has ended (its lease expired or the work was reported); \
                 for a day it may still post its one review of the prompt (POST /api/prompt-reviews)",
            )
            .into_response()),
            Caller::Claim(scope) => Err(forbidden(format!(
                "this token is scoped to the claim of issue #{}: it cannot {method} {path}",
                scope.issue_number
            ))),
            Caller::Named(token) => {
                let refuse = |why: &str| {
                    forbidden(format!("token {} ({}) cannot {method} {path}: {why}", token.name, token.role.as_str()))
                };
                match roles::access(token.role, method, path) {
                    Access::Allowed => Ok(()),
                    Access::Refused(why) => Err(refuse(why)),
                    Access::HoldsClaimOn(key) => {
                        let sessions =
                            state.store.issue_sessions(&key).await.map_err(|e| ApiError::from(e).into_response())?;
                        // Its open claim, or the last claim on the issue (its runner wraps up
                        // a failed attempt: a label, back to the backlog).
                        let held = sessions.iter().any(|s| s.is_open() && holds(&token.name, &s.agent))
                            || sessions.last().is_some_and(|s| holds(&token.name, &s.agent));
                        if held {
                            Ok(())
                        } else {
                            Err(refuse("an agent token changes only the issues it holds or last held a claim on"))
                        }
                    }
                    Access::OwnsSession(id) => match state.store.get_session(&id).await {
                        Ok(s) if holds(&token.name, &s.agent) => Ok(()),
                        Ok(_) => Err(refuse("the session is another agent's")),
                        Err(e) => Err(ApiError::from(e).into_response()),
                    },
                }
            }
        }
    }

    /// Who its actions are recorded as. An agent token's workers, named by `X-Loop-Agent`, act
    /// as `<token>/<worker>`: one token, several workers, every one of them attributable.
    pub fn actor(&self, headers: &HeaderMap) -> Result<Actor, ApiError> {
        Ok(match self {
            Caller::Master => Actor::human(),
            Caller::Claim(scope) => Actor::agent(scope.agent.clone()),
            Caller::Named(t) if t.role.is_person() => Actor { name: t.name.clone(), kind: ActorKind::Human },
            Caller::Named(t) => match worker(headers)? {
                Some(w) if w != t.name && !holds(&t.name, &w) => Actor::agent(format!("{}/{w}", t.name)),
                Some(w) => Actor::agent(w),
                None => Actor::agent(t.name.clone()),
            },
        })
    }

    /// The agent name a claim with these credentials is recorded under: under the master key,
    /// `X-Loop-Agent` names the agent; otherwise the actor's name (with its worker) is it.
    pub fn claim_agent(&self, actor: &Actor, headers: &HeaderMap) -> Result<String, ApiError> {
        match self {
            Caller::Master => Ok(worker(headers)?.unwrap_or_else(|| actor.name.clone())),
            _ => Ok(actor.name.clone()),
        }
    }

    /// Whether the caller acts under a name Loop gave it (a named token, a claim): then what it
    /// writes is attributed to that name, whatever the body says.
    pub fn is_named(&self) -> bool {
        !matches!(self, Caller::Master)
    }

    /// The claims its token may hold at once, when limited.
    pub fn claim_limit(&self) -> Option<ClaimLimit> {
        match self {
            Caller::Named(t) => t.max_claims.map(|most| ClaimLimit { holder: t.name.clone(), most }),
            _ => None,
        }
    }

    /// The project an ingest token is limited to.
    pub fn project(&self) -> Option<&str> {
        match self {
            Caller::Named(t) if t.role == TokenRole::Ingest => t.project_id.as_deref(),
            _ => None,
        }
    }
}

/// Where a signal an ingest token sends goes: its own project when it has one (asking for
/// another is refused), else the one asked for.
pub fn signal_project(own: Option<&str>, asked: Option<String>) -> Result<Option<String>, ApiError> {
    match (own, asked) {
        (Some(own), Some(asked)) if own != asked => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("projectId: this token sends signals to project {own} only"),
        )),
        (Some(own), _) => Ok(Some(own.to_owned())),
        (None, asked) => Ok(asked),
    }
}

/// The `X-Loop-Agent` header.
fn worker(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    header_text(headers, "X-Loop-Agent")
}

/// A header of 1–200 visible characters, or none.
pub fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    match headers.get(name).map(|v| v.to_str()) {
        None => Ok(None),
        // Printable ASCII (a tab passes `to_str` but is not a name's character).
        Some(Ok(v)) if !v.trim().is_empty() && v.len() <= 200 && !v.contains('\t') => Ok(Some(v.trim().to_owned())),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            format!("{name}: must be 1–200 visible ASCII characters"),
        )),
    }
}

/// Whether the agent name `agent` is the token `name` or one of its workers.
fn holds(name: &str, agent: &str) -> bool {
    agent == name || agent.strip_prefix(name).is_some_and(|rest| rest.starts_with('/'))
}

fn forbidden(message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::header_text;

    #[test]
    fn a_name_header_is_printable_ascii_of_1_to_200() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("X-Loop-Agent", HeaderValue::from_str(v).unwrap());
            header_text(&h, "X-Loop-Agent")
        };
        assert_eq!(with(" builder-1 ").unwrap().as_deref(), Some("builder-1"));
        assert!(with("a\tb").is_err(), "a tab is not a name's character");
        assert!(with("   ").is_err());
        assert!(with(&"x".repeat(201)).is_err());
        assert_eq!(header_text(&HeaderMap::new(), "X-Loop-Agent").unwrap(), None);
    }
}
