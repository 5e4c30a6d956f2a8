//! The conformance cases. Each takes a fresh [`Harness`](crate::Harness) (an empty store and a
//! clock at [`START`](crate::START)) and panics on the first behaviour that differs from the
//! contract. Cases are grouped by resource; all are re-exported here, flat, so that
//! [`conformance_suite!`](crate::conformance_suite) can name them.

mod comments;
mod dashboard;
mod dispatch;
mod handoff;
mod history;
mod hypotheses;
mod issues;
mod labels;
mod patches;
mod projects;
mod relations;
mod templates;
mod triage;

pub use comments::*;
pub use dashboard::*;
pub use dispatch::*;
pub use handoff::*;
pub use history::*;
pub use hypotheses::*;
pub use issues::*;
pub use labels::*;
pub use patches::*;
pub use projects::*;
pub use relations::*;
pub use templates::*;
pub use triage::*;
