//! The domain error. Each variant says whose fault it is, so the HTTP layer can map it to a
//! status without knowing the rule that failed.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The addressed entity does not exist (or is deleted, which is the same to callers).
    #[error("{entity} not found")]
    NotFound { entity: &'static str, id: String },

    /// The input is well-formed but breaks a rule. `field` names the offending input.
    #[error("{field}: {message}")]
    Invalid { field: String, code: &'static str, message: String },

    /// The input clashes with existing data (a name already taken, a duplicate relation).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    /// The caller is at a limit it was given (the claims a token may hold at once): it must
    /// finish something before it asks again.
    #[error("{message}")]
    Limited { code: &'static str, message: String },

    /// The database could not take the work just now: it aborted a transaction to break a lock
    /// conflict, or no connection came free in time. Nothing was written; the same request may
    /// well succeed when retried.
    #[error("busy: {0}")]
    Busy(String),

    /// The database's disk is full: nothing was written. Writes succeed again once space is
    /// freed.
    #[error("storage full: {0}")]
    StorageFull(String),

    /// The database cannot be reached or read just now (an I/O error, a lost connection, a
    /// server restarting), or a commit's outcome is unknown. Nothing is acknowledged; the
    /// connection it happened on is discarded, and a retry may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),

    /// Something broke inside: the database, a corrupt row. Never the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { entity, id: id.into() }
    }

    pub fn invalid(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), code, message: message.into() }
    }

    /// A PATCH that names no field.
    pub fn empty_patch() -> Self {
        Self::invalid("body", "empty_patch", "give at least one field to change")
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// A storage fault (full disk, I/O, lost connection): the kind `/health` reports.
    pub fn is_storage_fault(&self) -> bool {
        matches!(self, Self::StorageFull(_) | Self::Unavailable(_))
    }
}
