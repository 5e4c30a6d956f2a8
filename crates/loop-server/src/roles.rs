//! What each role of named token may send where (see [`loop_core::token::TokenRole`]). Some
//! answers depend on data: an agent token changes only the issues it holds a claim on and
//! reports only on its own sessions; the caller looks those up.

use axum::http::Method;
use loop_core::token::TokenRole;

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// Refused, with what the role is for.
    Refused(&'static str),
    /// Allowed if the caller holds an open claim on this issue (id or number), or held its last.
    HoldsClaimOn(String),
    /// Allowed if the session is one of the caller's.
    OwnsSession(String),
}

/// What `role` may do with `method` on `path` (under `/api`). HEAD is judged as the GET it is
/// routed to.
pub fn access(role: TokenRole, method: &Method, path: &str) -> Access {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    let tokens = parts.get(1) == Some(&"tokens");
    match role {
        TokenRole::Admin => Access::Allowed,
        TokenRole::Member if tokens => Access::Refused("a member token does not administer tokens; an admin does"),
        TokenRole::Member => Access::Allowed,
        TokenRole::Ingest => match (method, parts.as_slice()) {
            ("POST", ["api", "signals"]) | ("GET", ["api", "me"]) => Access::Allowed,
            _ => Access::Refused(
                "an ingest token only sends signals (POST /api/signals) and asks who it is (GET /api/me)",
            ),
        },
        TokenRole::Agent if tokens => Access::Refused("an agent token does not administer tokens"),
        TokenRole::Agent => match (method, parts.as_slice()) {
            ("GET", _) => Access::Allowed,
            ("POST", ["api", "issues"]) => Access::Allowed,
            ("POST", ["api", "issues", _, "comments" | "relations" | "dispatch"]) => Access::Allowed,
            ("POST", ["api", "prompt-reviews"]) => Access::Allowed,
            ("PATCH", ["api", "issues", id]) => Access::HoldsClaimOn((*id).to_owned()),
            ("POST", ["api", "sessions", id, "heartbeat" | "release" | "fail" | "questions"]) => {
                Access::OwnsSession((*id).to_owned())
            }
            // A landing runner: the merge slot, and what it finds (a conflict, a red
            // verification) or does (the merge). Approving stays with people.
            ("POST" | "DELETE", ["api", "merge-slots", _]) => Access::Allowed,
            ("POST", ["api", "issues", _, "rework" | "merged"]) => Access::Allowed,
            ("PUT", ["api", "sessions", id, "record"]) => Access::OwnsSession((*id).to_owned()),
            _ => Access::Refused(
                "an agent token claims work, reads, creates issues, comments and relations, reviews prompts, \
                 changes the issues it holds (or last held), reports on its own sessions (and asks from them), \
                 and lands approved work (merge slot, rework, merged)",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_reaches_what_it_is_for() {
        let a = |role, m: Method, p: &str| access(role, &m, p);
        assert_eq!(a(TokenRole::Admin, Method::POST, "/api/tokens"), Access::Allowed);
        assert!(matches!(a(TokenRole::Member, Method::GET, "/api/tokens"), Access::Refused(_)));
        assert_eq!(a(TokenRole::Member, Method::DELETE, "/api/issues/1"), Access::Allowed);
        assert_eq!(a(TokenRole::Ingest, Method::POST, "/api/signals"), Access::Allowed);
        assert!(matches!(a(TokenRole::Ingest, Method::GET, "/api/issues"), Access::Refused(_)));
        assert!(matches!(a(TokenRole::Ingest, Method::POST, "/api/signals/github"), Access::Refused(_)));
        assert_eq!(a(TokenRole::Agent, Method::HEAD, "/api/dispatch/next"), Access::Allowed);
        assert_eq!(a(TokenRole::Agent, Method::PATCH, "/api/issues/7"), Access::HoldsClaimOn("7".into()));
        assert_eq!(a(TokenRole::Agent, Method::PUT, "/api/sessions/s1/record"), Access::OwnsSession("s1".into()));
        assert!(matches!(a(TokenRole::Agent, Method::DELETE, "/api/issues/7"), Access::Refused(_)));
        assert!(matches!(a(TokenRole::Agent, Method::GET, "/api/tokens"), Access::Refused(_)));
    }
}
