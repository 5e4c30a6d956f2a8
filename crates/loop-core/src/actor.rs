//! Who is acting: recorded on every event in the issue history.

use serde::{Deserialize, Serialize};

/// The caller of an operation. The master key acts as `human` (it is for people and admin
/// scripts); a named agent token acts under its own name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub kind: ActorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Human,
    Agent,
}

impl Actor {
    pub fn human() -> Self {
        Self { name: "human".into(), kind: ActorKind::Human }
    }

    pub fn agent(name: impl Into<String>) -> Self {
        Self { name: name.into(), kind: ActorKind::Agent }
    }
}

impl Actor {
    /// Loop itself (lease expiry and other automatic changes).
    pub fn system() -> Self {
        Self { name: "loop".into(), kind: ActorKind::Agent }
    }
}
