//! Shorthands the cases share: inputs built from JSON, actors, pages and error assertions.

use std::fmt::Debug;

use loop_core::issue::{Issue, IssueFilter, NewIssue};
use loop_core::label::Label;
use loop_core::{Actor, Error, Page, Paged, Result, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{Harness, START};

/// Builds an input the way the HTTP layer does: from its camelCase JSON body.
#[track_caller]
pub fn input<T: DeserializeOwned>(v: Value) -> T {
    match serde_json::from_value(v.clone()) {
        Ok(t) => t,
        Err(e) => panic!("test input {v} does not deserialise into {}: {e}", std::any::type_name::<T>()),
    }
}

pub fn bot() -> Actor {
    Actor::agent("bot-1")
}

pub fn human() -> Actor {
    Actor::human()
}

pub fn page(limit: u32, offset: u64) -> Page {
    Page { limit, offset }
}

/// The largest page: every test list fits in it.
pub fn all() -> Page {
    page(200, 0)
}

/// The instant `ms` milliseconds after [`START`].
pub fn at(ms: i64) -> Timestamp {
    START.plus_millis(ms)
}

pub fn now(h: &Harness) -> Timestamp {
    use loop_core::Clock;
    h.clock.now()
}

pub async fn create_issue(h: &Harness, body: Value) -> Issue {
    create_issue_as(h, body, &human()).await
}

pub async fn create_issue_as(h: &Harness, body: Value, actor: &Actor) -> Issue {
    let new: NewIssue = input(body.clone());
    match h.store.create_issue(new, actor).await {
        Ok(i) => i,
        Err(e) => panic!("create_issue({body}) failed: {e:?}"),
    }
}

/// A plain task with this title.
pub async fn task(h: &Harness, title: &str) -> Issue {
    create_issue(h, json!({ "title": title, "type": "task" })).await
}

pub async fn label(h: &Harness, name: &str) -> Label {
    h.store
        .create_label(input(json!({ "name": name, "color": "#f59e0b" })))
        .await
        .unwrap_or_else(|e| panic!("create_label({name}) failed: {e:?}"))
}

/// Every live issue matching the filter, as numbers in list order.
pub async fn numbers(h: &Harness, filter: &IssueFilter) -> Vec<i64> {
    let p = list(h, filter, all()).await;
    assert_eq!(p.total as usize, p.data.len(), "total must count every match when all fit in one page");
    p.data.iter().map(|i| i.number).collect()
}

pub async fn list(h: &Harness, filter: &IssueFilter, page: Page) -> Paged<Issue> {
    h.store.list_issues(filter, page).await.expect("list_issues")
}

pub async fn issue_count(h: &Harness) -> u64 {
    list(h, &IssueFilter::default(), page(1, 0)).await.total
}

#[track_caller]
pub fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(t) => t,
        Err(e) => panic!("expected success, got {e:?}"),
    }
}

#[track_caller]
pub fn expect_invalid<T: Debug>(r: Result<T>, field: &str, code: &str) -> String {
    match r {
        Err(Error::Invalid { field: f, code: c, message }) => {
            assert_eq!((f.as_str(), c), (field, code), "wrong Invalid error (message: {message})");
            assert!(!message.is_empty(), "an Invalid error must say what is wrong");
            message
        }
        other => panic!("expected Invalid {{ field: {field:?}, code: {code:?} }}, got {other:?}"),
    }
}

#[track_caller]
pub fn expect_not_found<T: Debug>(r: Result<T>) {
    match r {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub fn expect_conflict<T: Debug>(r: Result<T>, code: &str) {
    match r {
        Err(Error::Conflict { code: c, .. }) => assert_eq!(c, code, "wrong Conflict code"),
        other => panic!("expected Conflict {{ code: {code:?} }}, got {other:?}"),
    }
}

/// The id of an issue's newest event.
pub async fn newest_event(h: &Harness, issue: &Issue) -> i64 {
    let events = ok(h.store.issue_events(&issue.id, all()).await).data;
    events.iter().map(|e| e.id).max().expect("the issue has events")
}

/// Waits until the live feed reaches event `id`. On PostgreSQL the feed holds back events while
/// an older transaction is still running anywhere on the server (other tests' included), so
/// an event is followable a moment after its commit, not at once.
pub async fn feed_reaches(h: &Harness, id: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let end = ok(h.store.last_event_id().await);
        if end == id {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the feed ends at event {end}, not at {id}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
