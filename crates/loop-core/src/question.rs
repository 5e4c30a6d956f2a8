//! Questions an agent asks a person. An agent that cannot go on without a decision asks; its
//! session ends (the runner keeps the branch) and the issue waits: an open question counts as
//! an open blocker, so the issue is not dispatched until a person answers. The next prompt
//! carries every question and answer.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::text::RequiredBody;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Question {
    pub id: String,
    pub issue_id: String,
    pub issue_number: i64,
    pub issue_title: String,
    /// The session that asked (its claim ended with the question).
    pub session_id: Option<String>,
    pub question: String,
    pub asked_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub asked_at: Timestamp,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub answered_at: Option<Timestamp>,
}

impl Question {
    pub fn is_open(&self) -> bool {
        self.answered_at.is_none()
    }
}

/// The body of `POST /api/sessions/:id/questions`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewQuestion {
    /// What the agent needs decided, with the options it sees.
    #[cfg_attr(feature = "openapi", schema(value_type = RequiredBody))]
    pub question: RequiredBody,
}

/// The body of `POST /api/questions/:id/answer`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAnswer {
    #[cfg_attr(feature = "openapi", schema(value_type = RequiredBody))]
    pub answer: RequiredBody,
}
