//! Loop's domain: the entities, their validation, the rules the server enforces, the `Store`
//! traits every backend implements, and an injectable clock.
//!
//! Nothing here knows about HTTP or SQL. Wire shapes are the serde forms of these types
//! (camelCase JSON), so server, client and CLI cannot drift apart.

#[macro_use]
mod schema;
pub mod actor;
pub mod changelog;
pub mod comment;
pub mod dashboard;
pub mod dispatch;
pub mod duration_histogram;
pub mod error;
pub mod event;
pub mod feedback;
pub mod goal;
pub mod hydration;
pub mod hypothesis;
pub mod id;
pub mod improvement;
pub mod input;
pub mod issue;
pub mod label;
pub mod metrics;
pub mod page;
pub mod project;
pub mod question;
pub mod relation;
pub mod rework;
pub mod session;
pub mod settings;
pub mod signal;
pub mod skill;
pub mod store;
pub mod template;
pub mod text;
pub mod time;
pub mod token;

pub use actor::Actor;
pub use error::{Error, Result};
pub use page::{Page, Paged};
pub use store::Store;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
