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

/// What ran in a session and what came of it, as the runner that worked it (`loop agent`)
/// records it: an attestation (the agent command and its exit, the verify commands, the branch,
/// the commits, the pull request, the model, tokens and cost the agent reported) and the
/// agent's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub session_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attestation: serde_json::Map<String, serde_json::Value>,
    pub transcript: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Timestamp,
}

/// The body of `PUT /api/sessions/:id/record`. Tokens, cost and duration also go on the session
/// itself, where budgets count them.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSessionRecord {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attestation: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000000))]
    pub transcript: Option<String>,
    #[serde(default, deserialize_with = "crate::input::count")]
    pub tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::input::amount")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub cost_usd: Option<f64>,
    #[serde(default, deserialize_with = "crate::input::count")]
    pub duration_ms: Option<u64>,
}

/// The most a transcript may hold (the body limit is 1 MiB; `loop agent` keeps 256 KiB).
pub const MAX_TRANSCRIPT_CHARS: usize = 1_000_000;
/// The most an attestation may hold, as JSON text.
pub const MAX_ATTESTATION_BYTES: usize = 64 * 1024;

impl NewSessionRecord {
    pub fn validate(&self) -> crate::Result<()> {
        if self.transcript.as_ref().is_some_and(|t| t.chars().count() > MAX_TRANSCRIPT_CHARS) {
            return Err(crate::Error::invalid(
                "transcript",
                "too_long",
                format!("at most {MAX_TRANSCRIPT_CHARS} characters: keep the start and the end"),
            ));
        }
        let size = serde_json::to_string(&self.attestation).map_or(0, |s| s.len());
        if size > MAX_ATTESTATION_BYTES {
            return Err(crate::Error::invalid(
                "attestation",
                "too_long",
                format!("at most {MAX_ATTESTATION_BYTES} bytes of JSON, got {size}"),
            ));
        }
        Ok(())
    }
}
