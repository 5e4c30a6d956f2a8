//! Agent sessions: every claim is one, and it is where `previousSessions` comes from.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::issue::string_enum;
use crate::text::Body;

string_enum!(
    /// How a session ended. `failed`, `expired` and `released` are failed attempts.
    SessionOutcome {
        Done = "done",
        Canceled = "canceled",
        Failed = "failed",
        Expired = "expired",
        Released = "released",
    }
);

impl SessionOutcome {
    pub fn is_failed_attempt(self) -> bool {
        matches!(self, SessionOutcome::Failed | SessionOutcome::Expired | SessionOutcome::Released)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AgentSession {
    pub id: String,
    pub issue_id: String,
    pub agent: String,
    /// The prompt version the agent was given, when one was rendered.
    pub template_version_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub claimed_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub lease_expires_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Timestamp>,
    pub outcome: Option<SessionOutcome>,
    pub summary: Option<String>,
    pub tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub duration_ms: Option<i64>,
}

impl AgentSession {
    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }
}

/// The body of `POST /api/sessions/:id/release` and `/fail`: what the agent reports.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionReport {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Body>))]
    pub summary: Option<Body>,
    #[serde(default, deserialize_with = "crate::input::count")]
    pub tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::input::amount")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub cost_usd: Option<f64>,
    #[serde(default, deserialize_with = "crate::input::count")]
    pub duration_ms: Option<u64>,
}

/// Filters of `GET /api/sessions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFilter {
    pub issue_id: Option<String>,
    pub agent: Option<String>,
    pub outcome: Option<SessionOutcome>,
    /// Only sessions still holding a lease.
    pub open: Option<bool>,
}
