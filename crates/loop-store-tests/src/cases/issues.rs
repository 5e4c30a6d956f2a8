//! Issues: numbering, defaults, hierarchy, lifecycle, listing and soft delete.

use std::collections::BTreeSet;
use std::sync::Arc;

use loop_core::issue::{IssueFilter, IssuePatch, IssueStatus, IssueType, Priority};
use serde_json::json;
use tokio::task::JoinSet;

use crate::Harness;
use crate::support::*;

/// Numbers are 1, 2, 3… across all issues; defaults, timestamps and JSON fields survive the
/// round trip; an issue is found by id and by its number.
pub async fn issue_create_numbers_defaults_and_lookup(h: &Harness) {
    let a = create_issue(h, json!({ "title": "first", "type": "task" })).await;
    assert_eq!(a.number, 1);
    assert_eq!(a.title, "first");
    assert_eq!(a.issue_type, IssueType::Task);
    assert_eq!(a.status, IssueStatus::Triage, "status defaults to triage");
    assert_eq!(a.priority, Priority::NONE, "priority defaults to 0");
    assert_eq!(a.description, None);
    assert_eq!(a.parent_id, None);
    assert_eq!(a.project_id, None);
    assert_eq!(a.signal_source, None);
    assert_eq!(a.signal_payload, None);
    assert_eq!(a.hypothesis, None);
    assert_eq!(a.agent_session_id, None);
    assert_eq!(a.agent_summary, None);
    assert_eq!(a.commits, None);
    assert_eq!(a.pull_requests, None);
    assert_eq!(a.completed_at, None);
    assert_eq!(a.deleted_at, None);
    assert_eq!(a.created_at, at(0), "createdAt is the clock's now");
    assert_eq!(a.updated_at, at(0), "updatedAt starts equal to createdAt");

    h.clock.advance_millis(1_000);
    let payload = json!({
        "alert": "cpu",
        "value": 97.5,
        "tags": ["a", "b"],
        "nested": { "x": null, "deep": [1, { "y": true }] },
    });
    let hypothesis = json!({
        "statement": "the cache is cold",
        "confidence": 0.75,
        "evidence": ["p99 doubled", "miss rate 80%"],
        "validationCriteria": "hit rate above 90%",
        "prediction": "latency halves",
    });
    let b = create_issue(
        h,
        json!({
            "title": "second",
            "type": "hypothesis",
            "description": "why it is slow",
            "status": "backlog",
            "priority": 2,
            "signalSource": "sentry",
            "signalPayload": payload,
            "hypothesis": hypothesis,
        }),
    )
    .await;
    assert_eq!(b.number, 2);
    assert_eq!(b.created_at, at(1_000));
    assert_eq!(b.updated_at, at(1_000));
    assert_eq!(b.status, IssueStatus::Backlog);
    assert_eq!(b.priority.value(), 2);
    assert_eq!(b.description.as_deref(), Some("why it is slow"));
    assert_eq!(b.signal_source.as_deref(), Some("sentry"));
    assert_eq!(b.signal_payload, Some(payload.clone()));
    // What was sent, plus the lifecycle Loop keeps: a new hypothesis is proposed.
    let mut hypothesis = hypothesis;
    hypothesis["status"] = json!("proposed");
    assert_eq!(serde_json::to_value(&b.hypothesis).unwrap(), hypothesis);

    // What the store returns on create is exactly what it reads back, by id and by number.
    let by_id = ok(h.store.get_issue(&b.id).await);
    assert_eq!(by_id, b);
    assert_eq!(by_id.signal_payload, Some(payload));
    assert_eq!(serde_json::to_value(&by_id.hypothesis).unwrap(), hypothesis);
    assert_eq!(ok(h.store.get_issue("2").await), b);
    assert_eq!(ok(h.store.get_issue("1").await), a);
    assert_eq!(ok(h.store.issue_detail("1").await).issue, a);
    assert_eq!(ok(h.store.issue_detail(&b.id).await).issue, b);

    // Numbering is global: other types and other projects share the sequence.
    let project = ok(h.store.create_project(input(json!({ "name": "P" }))).await);
    let c = create_issue(h, json!({ "title": "third", "type": "signal", "projectId": project.id })).await;
    assert_eq!(c.number, 3);
    assert_eq!(c.project_id.as_deref(), Some(project.id.as_str()));
    assert_ne!(a.id, b.id);
    assert_ne!(b.id, c.id);

    expect_not_found(h.store.get_issue("4").await);
    expect_not_found(h.store.get_issue("no-such-issue").await);
    expect_not_found(h.store.issue_detail("4").await);
}

/// Fifty simultaneous creates get fifty distinct numbers, 1 to 50.
pub async fn issue_concurrent_creates_get_distinct_numbers(h: &Harness) {
    let mut set = JoinSet::new();
    for n in 0..50 {
        let store = Arc::clone(&h.store);
        set.spawn(async move {
            let new = input(json!({ "title": format!("concurrent {n}"), "type": "task" }));
            store.create_issue(new, &bot()).await
        });
    }
    let mut numbers = Vec::new();
    while let Some(joined) = set.join_next().await {
        numbers.push(ok(joined.expect("task panicked")).number);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=50).collect::<Vec<i64>>());
    assert_eq!(issue_count(h).await, 50);
    let listed: BTreeSet<i64> = list(h, &IssueFilter::default(), all()).await.data.iter().map(|i| i.number).collect();
    assert_eq!(listed, (1..=50).collect::<BTreeSet<i64>>());
}

/// Repeated label ids collapse to one; an unknown or deleted label rejects the whole create.
pub async fn issue_create_label_ids_are_deduplicated_and_checked(h: &Harness) {
    let bug = label(h, "bug").await;
    let feature = label(h, "feature").await;
    let i = create_issue(
        h,
        json!({ "title": "labelled", "type": "task", "labelIds": [bug.id, bug.id, feature.id, bug.id] }),
    )
    .await;
    let detail = ok(h.store.issue_detail(&i.id).await);
    let mut ids: Vec<&str> = detail.labels.iter().map(|l| l.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![bug.id.as_str(), feature.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "each label shows once");
    let bug_ref = detail.labels.iter().find(|l| l.id == bug.id).unwrap();
    assert_eq!((bug_ref.name.as_str(), bug_ref.color.as_str()), ("bug", "#f59e0b"));

    let by_label = IssueFilter { label_id: Some(bug.id.clone()), ..Default::default() };
    assert_eq!(numbers(h, &by_label).await, vec![1]);

    let before = issue_count(h).await;
    let bad = input(json!({ "title": "ghost", "type": "task", "labelIds": [bug.id, "no-such-label"] }));
    expect_invalid(h.store.create_issue(bad, &bot()).await, "labelIds", "label_not_found");

    ok(h.store.delete_label(&feature.id).await);
    let deleted = input(json!({ "title": "ghost", "type": "task", "labelIds": [feature.id] }));
    expect_invalid(h.store.create_issue(deleted, &bot()).await, "labelIds", "label_not_found");

    assert_eq!(issue_count(h).await, before, "a rejected create writes nothing");
    let all_issues = list(h, &IssueFilter::default(), all()).await;
    assert!(all_issues.data.iter().all(|i| i.title != "ghost"));
    assert_eq!(numbers(h, &by_label).await, vec![1], "no label link was written either");
}

/// On create: the parent must exist and be live, and must not itself have a parent. A blank
/// parentId means none.
pub async fn issue_create_hierarchy_rules(h: &Harness) {
    let parent = task(h, "parent").await;
    let child = create_issue(h, json!({ "title": "child", "type": "task", "parentId": parent.id })).await;
    assert_eq!(child.parent_id.as_deref(), Some(parent.id.as_str()));
    let by_number = create_issue(h, json!({ "title": "child 2", "type": "task", "parentId": "1" })).await;
    assert_eq!(by_number.parent_id.as_deref(), Some(parent.id.as_str()), "a parent number resolves to its id");

    let detail = ok(h.store.issue_detail(&parent.id).await);
    let children: Vec<&str> = detail.children.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(children, vec![child.id.as_str(), by_number.id.as_str()]);
    assert_eq!(detail.parent, None);
    let child_detail = ok(h.store.issue_detail(&child.id).await);
    assert_eq!(child_detail.parent.as_ref().map(|p| p.id.as_str()), Some(parent.id.as_str()));

    let before = issue_count(h).await;
    let missing = input(json!({ "title": "x", "type": "task", "parentId": "no-such-issue" }));
    expect_invalid(h.store.create_issue(missing, &bot()).await, "parentId", "parent_not_found");

    let gone = task(h, "gone").await;
    ok(h.store.delete_issue(&gone.id, &bot()).await);
    let deleted = input(json!({ "title": "x", "type": "task", "parentId": gone.id }));
    expect_invalid(h.store.create_issue(deleted, &bot()).await, "parentId", "parent_not_found");

    let grandchild = input(json!({ "title": "x", "type": "task", "parentId": child.id }));
    expect_invalid(h.store.create_issue(grandchild, &bot()).await, "parentId", "hierarchy_depth");
    assert_eq!(issue_count(h).await, before, "rejected creates write nothing");

    let blank = create_issue(h, json!({ "title": "root", "type": "task", "parentId": "" })).await;
    assert_eq!(blank.parent_id, None, "a blank parentId means none");
}

/// On update: one level only, never one's own parent, and `null` clears the parent.
pub async fn issue_update_hierarchy_rules(h: &Harness) {
    let a = task(h, "a").await;
    let b = create_issue(h, json!({ "title": "b", "type": "task", "parentId": a.id })).await;
    let c = task(h, "c").await;

    let to_child: IssuePatch = input(json!({ "parentId": b.id }));
    expect_invalid(h.store.update_issue(&c.id, to_child, &bot()).await, "parentId", "hierarchy_depth");

    let parent_gets_parent: IssuePatch = input(json!({ "parentId": c.id }));
    expect_invalid(h.store.update_issue(&a.id, parent_gets_parent, &bot()).await, "parentId", "hierarchy_depth");

    let itself: IssuePatch = input(json!({ "parentId": c.id }));
    expect_invalid(h.store.update_issue(&c.id, itself, &bot()).await, "parentId", "self_parent");

    let itself_by_number: IssuePatch = input(json!({ "parentId": c.number.to_string() }));
    expect_invalid(h.store.update_issue(&c.id, itself_by_number, &bot()).await, "parentId", "self_parent");

    let missing: IssuePatch = input(json!({ "parentId": "no-such-issue" }));
    expect_invalid(h.store.update_issue(&c.id, missing, &bot()).await, "parentId", "parent_not_found");

    assert_eq!(ok(h.store.get_issue(&c.id).await).parent_id, None, "rejected updates change nothing");
    assert_eq!(ok(h.store.get_issue(&a.id).await).parent_id, None);

    // Move b from a to c.
    let moved = ok(h.store.update_issue(&b.id, input(json!({ "parentId": c.id })), &bot()).await);
    assert_eq!(moved.parent_id.as_deref(), Some(c.id.as_str()));
    assert!(ok(h.store.issue_detail(&a.id).await).children.is_empty());
    let c_children: Vec<String> = ok(h.store.issue_detail(&c.id).await).children.into_iter().map(|i| i.id).collect();
    assert_eq!(c_children, vec![b.id.clone()]);

    // Clear it with null.
    let patch = IssuePatch { parent_id: Some(None), ..Default::default() };
    let cleared = ok(h.store.update_issue(&b.id, patch, &bot()).await);
    assert_eq!(cleared.parent_id, None);
    let b_detail = ok(h.store.issue_detail(&b.id).await);
    assert_eq!(b_detail.issue.parent_id, None);
    assert_eq!(b_detail.parent, None);
    assert!(ok(h.store.issue_detail(&c.id).await).children.is_empty());

    // A blank parentId also clears.
    ok(h.store.update_issue(&b.id, input(json!({ "parentId": a.id })), &bot()).await);
    let blank = ok(h.store.update_issue(&b.id, input(json!({ "parentId": "" })), &bot()).await);
    assert_eq!(blank.parent_id, None);

    // Only live children count: once b is deleted, a may take a parent.
    ok(h.store.update_issue(&b.id, input(json!({ "parentId": a.id })), &bot()).await);
    ok(h.store.delete_issue(&b.id, &bot()).await);
    let adopted = ok(h.store.update_issue(&a.id, input(json!({ "parentId": c.id })), &bot()).await);
    assert_eq!(adopted.parent_id.as_deref(), Some(c.id.as_str()));
}

/// completedAt is set when an issue becomes done, kept while it stays done, cleared when it
/// leaves done; updatedAt follows every change.
pub async fn issue_completed_at_follows_done(h: &Harness) {
    let i = task(h, "work").await;
    assert_eq!(i.completed_at, None);

    h.clock.advance_millis(1_000);
    let done = ok(h.store.update_issue(&i.id, input(json!({ "status": "done" })), &bot()).await);
    assert_eq!(done.status, IssueStatus::Done);
    assert_eq!(done.completed_at, Some(at(1_000)));
    assert_eq!(done.updated_at, at(1_000));
    assert_eq!(done.created_at, at(0), "createdAt never changes");
    assert_eq!(ok(h.store.get_issue(&i.id).await), done, "the update is what is stored");

    h.clock.advance_millis(1_000);
    let renamed = ok(h.store.update_issue(&i.id, input(json!({ "title": "work, renamed" })), &bot()).await);
    assert_eq!(renamed.completed_at, Some(at(1_000)), "kept while the issue stays done");
    assert_eq!(renamed.updated_at, at(2_000));

    h.clock.advance_millis(1_000);
    let again = ok(h.store.update_issue(&i.id, input(json!({ "status": "done" })), &bot()).await);
    assert_eq!(again.completed_at, Some(at(1_000)), "done → done keeps the first completion");

    h.clock.advance_millis(1_000);
    let reopened = ok(h.store.update_issue(&i.id, input(json!({ "status": "todo" })), &bot()).await);
    assert_eq!(reopened.completed_at, None, "reopening clears completedAt");
    assert_eq!(ok(h.store.get_issue(&i.id).await).completed_at, None);

    h.clock.advance_millis(1_000);
    let redone = ok(h.store.update_issue(&i.id, input(json!({ "status": "done" })), &bot()).await);
    assert_eq!(redone.completed_at, Some(at(5_000)));
    let canceled = ok(h.store.update_issue(&i.id, input(json!({ "status": "canceled" })), &bot()).await);
    assert_eq!(canceled.completed_at, None, "canceled is not done");

    h.clock.advance_millis(1_000);
    let born_done = create_issue(h, json!({ "title": "already", "type": "task", "status": "done" })).await;
    assert_eq!(born_done.completed_at, Some(at(6_000)));
    assert_eq!(ok(h.store.get_issue(&born_done.id).await).completed_at, Some(at(6_000)));
    let born_canceled = create_issue(h, json!({ "title": "dropped", "type": "task", "status": "canceled" })).await;
    assert_eq!(born_canceled.completed_at, None);
}

/// Every list filter, alone and combined; `total` counts all matches whatever the page; the
/// order is creation order.
pub async fn issue_list_filters_and_pagination(h: &Harness) {
    let project = ok(h.store.create_project(input(json!({ "name": "P" }))).await);
    let l1 = label(h, "l1").await;
    let l2 = label(h, "l2").await;
    async fn make(h: &Harness, body: serde_json::Value) -> loop_core::issue::Issue {
        h.clock.advance_millis(1);
        create_issue(h, body).await
    }
    let one = make(h, json!({ "title": "1", "type": "task" })).await;
    make(
        h,
        json!({
            "title": "2", "type": "signal", "status": "todo", "priority": 1,
            "projectId": project.id, "labelIds": [l1.id],
        }),
    )
    .await;
    make(h, json!({ "title": "3", "type": "task", "status": "done", "priority": 2, "parentId": one.id })).await;
    make(
        h,
        json!({
            "title": "4", "type": "plan", "status": "canceled", "priority": 1,
            "projectId": project.id, "labelIds": [l1.id, l2.id],
        }),
    )
    .await;
    make(h, json!({ "title": "5", "type": "hypothesis", "status": "in_progress", "parentId": one.id })).await;
    make(h, json!({ "title": "6", "type": "monitor", "status": "backlog", "labelIds": [l2.id] })).await;

    let any = IssueFilter::default();
    assert_eq!(numbers(h, &any).await, vec![1, 2, 3, 4, 5, 6]);

    let f = IssueFilter { statuses: vec![IssueStatus::Todo, IssueStatus::Done], ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![2, 3]);
    let open = IssueFilter { statuses: ok(IssueFilter::parse_statuses("open")), ..Default::default() };
    assert_eq!(numbers(h, &open).await, vec![1, 2, 5, 6]);
    let terminal = IssueFilter { statuses: ok(IssueFilter::parse_statuses("done,canceled")), ..Default::default() };
    assert_eq!(numbers(h, &terminal).await, vec![3, 4]);

    let f = IssueFilter { types: vec![IssueType::Task], ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![1, 3]);
    let f = IssueFilter { types: vec![IssueType::Signal, IssueType::Plan], ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![2, 4]);

    let f = IssueFilter { project_id: Some(project.id.clone()), ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![2, 4]);
    let f = IssueFilter { project_id: Some("no-such-project".into()), ..Default::default() };
    assert_eq!(numbers(h, &f).await, Vec::<i64>::new());

    let f = IssueFilter { label_id: Some(l1.id.clone()), ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![2, 4]);
    let f = IssueFilter { label_id: Some(l2.id.clone()), ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![4, 6]);

    let f = IssueFilter { priority: Some(Priority::new(1).unwrap()), ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![2, 4]);
    let f = IssueFilter { priority: Some(Priority::NONE), ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![1, 5, 6]);

    let f = IssueFilter { parent_id: Some(one.id.clone()), ..Default::default() };
    assert_eq!(numbers(h, &f).await, vec![3, 5]);

    let combined = IssueFilter {
        statuses: ok(IssueFilter::parse_statuses("open")),
        label_id: Some(l1.id.clone()),
        ..Default::default()
    };
    assert_eq!(numbers(h, &combined).await, vec![2]);
    let combined = IssueFilter {
        types: vec![IssueType::Task, IssueType::Hypothesis],
        parent_id: Some(one.id.clone()),
        statuses: vec![IssueStatus::InProgress],
        ..Default::default()
    };
    assert_eq!(numbers(h, &combined).await, vec![5]);

    // Pagination.
    for (offset, expected) in [(0, vec![1, 2]), (2, vec![3, 4]), (4, vec![5, 6]), (6, vec![]), (5, vec![6])] {
        let p = list(h, &any, page(2, offset)).await;
        assert_eq!(p.total, 6, "total ignores the page (offset {offset})");
        assert_eq!(p.data.iter().map(|i| i.number).collect::<Vec<_>>(), expected, "offset {offset}");
    }
    let p = list(h, &open, page(1, 1)).await;
    assert_eq!((p.total, p.data.iter().map(|i| i.number).collect::<Vec<_>>()), (4, vec![2]));
    let p = list(h, &open, page(3, 2)).await;
    assert_eq!((p.total, p.data.iter().map(|i| i.number).collect::<Vec<_>>()), (4, vec![5, 6]));

    // The list holds the same issues the store reads back one by one.
    for i in list(h, &any, all()).await.data {
        assert_eq!(ok(h.store.get_issue(&i.id).await), i);
    }
}

/// A deleted issue vanishes: reads, lists, its parent's children, its relations, its
/// comments; deleting it twice is NotFound; its number is never reused.
pub async fn issue_soft_delete_hides_everywhere(h: &Harness) {
    let parent = task(h, "parent").await;
    let child = create_issue(h, json!({ "title": "child", "type": "task", "parentId": parent.id })).await;
    let other = task(h, "other").await;
    ok(h.store
        .create_relation(&other.id, input(json!({ "type": "blocks", "relatedIssueId": child.id })), &bot())
        .await);
    ok(h.store
        .create_relation(&child.id, input(json!({ "type": "related", "relatedIssueId": parent.id })), &bot())
        .await);
    ok(h.store.create_comment(&child.id, input(json!({ "body": "note" })), &bot()).await);
    assert_eq!(ok(h.store.issue_detail(&other.id).await).relations.len(), 1);

    h.clock.advance_millis(1_000);
    ok(h.store.delete_issue(&child.id, &human()).await);

    expect_not_found(h.store.get_issue(&child.id).await);
    expect_not_found(h.store.get_issue(&child.number.to_string()).await);
    expect_not_found(h.store.issue_detail(&child.id).await);
    expect_not_found(h.store.issue_events(&child.id, all()).await);
    assert_eq!(numbers(h, &IssueFilter::default()).await, vec![1, 3]);
    let under_parent = IssueFilter { parent_id: Some(parent.id.clone()), ..Default::default() };
    assert_eq!(list(h, &under_parent, all()).await.total, 0);

    let parent_detail = ok(h.store.issue_detail(&parent.id).await);
    assert!(parent_detail.children.is_empty(), "deleted children are not listed");
    assert!(parent_detail.relations.is_empty(), "relations to a deleted issue vanish");
    assert!(ok(h.store.issue_detail(&other.id).await).relations.is_empty());

    expect_not_found(h.store.list_comments(&child.id).await);
    expect_not_found(h.store.create_comment(&child.id, input(json!({ "body": "late" })), &bot()).await);
    expect_not_found(h.store.update_issue(&child.id, input(json!({ "title": "zombie" })), &bot()).await);
    expect_not_found(
        h.store
            .create_relation(&child.id, input(json!({ "type": "blocks", "relatedIssueId": other.id })), &bot())
            .await,
    );
    expect_invalid(
        h.store
            .create_relation(&other.id, input(json!({ "type": "related", "relatedIssueId": child.id })), &bot())
            .await,
        "relatedIssueId",
        "related_issue_not_found",
    );
    expect_not_found(h.store.delete_issue(&child.id, &human()).await);
    expect_not_found(h.store.delete_issue("no-such-issue", &human()).await);

    let next = task(h, "next").await;
    assert_eq!(next.number, 4, "a deleted issue's number is not reused");
}

/// Deleting a parent detaches its children: they become root issues (and may be parents
/// themselves), and their history says why.
pub async fn issue_delete_detaches_children(h: &Harness) {
    let parent = task(h, "parent").await;
    let child = create_issue(h, json!({ "title": "child", "type": "task", "parentId": parent.id })).await;
    ok(h.store.delete_issue(&parent.id, &human()).await);

    let detached = ok(h.store.get_issue(&child.id).await);
    assert_eq!(detached.parent_id, None);
    let grandchild = create_issue(h, json!({ "title": "now allowed", "type": "task", "parentId": child.id })).await;
    assert_eq!(grandchild.parent_id.as_deref(), Some(child.id.as_str()));
    let events = ok(h.store.issue_events(&child.id, all()).await).data;
    let last = events.iter().find(|e| e.data["field"] == "parentId").expect("a parentId event");
    assert_eq!(last.data["to"], serde_json::Value::Null);
}

/// Every sort key both ways (ties broken by number, so pages never overlap), "no priority"
/// sorting after urgent, and title search: all words, any case, wildcards taken literally,
/// `#n` for one number.
pub async fn issue_list_sort_and_search(h: &Harness) {
    use loop_core::issue::IssueSort;

    let a = create_issue(h, json!({ "title": "Login times out", "type": "task", "priority": 3 })).await;
    h.clock.advance_millis(10);
    let b = create_issue(h, json!({ "title": "add 100% coverage", "type": "task", "priority": 0 })).await;
    h.clock.advance_millis(10);
    let c = create_issue(h, json!({ "title": "login button", "type": "task", "priority": 1 })).await;
    h.clock.advance_millis(10);
    ok(h.store.update_issue(&a.id, input(json!({ "status": "todo" })), &human()).await);
    let sorted = |sort: &str| IssueFilter { sort: IssueSort::parse(sort).unwrap(), ..Default::default() };
    let n = |issues: &[&loop_core::issue::Issue]| issues.iter().map(|i| i.number).collect::<Vec<_>>();

    assert_eq!(numbers(h, &sorted("created")).await, n(&[&a, &b, &c]));
    assert_eq!(numbers(h, &sorted("-created")).await, n(&[&c, &b, &a]));
    assert_eq!(numbers(h, &sorted("-number")).await, n(&[&c, &b, &a]));
    assert_eq!(numbers(h, &sorted("-updated")).await, n(&[&a, &c, &b]));
    assert_eq!(numbers(h, &sorted("priority")).await, n(&[&c, &a, &b]), "urgent first, none last");
    assert_eq!(numbers(h, &sorted("-priority")).await, n(&[&b, &a, &c]));
    assert_eq!(numbers(h, &sorted("title")).await, n(&[&b, &c, &a]), "case-insensitive");
    let second_page = list(h, &sorted("-created"), page(1, 1)).await;
    assert_eq!((second_page.data[0].number, second_page.total), (b.number, 3));
    expect_invalid(IssueSort::parse("-colour"), "sort", "unknown_value");

    let search = |q: &str| IssueFilter { search: Some(q.into()), ..Default::default() };
    assert_eq!(numbers(h, &search("LOGIN")).await, n(&[&a, &c]));
    assert_eq!(numbers(h, &search("login out")).await, n(&[&a]));
    assert_eq!(numbers(h, &search("100%")).await, n(&[&b]));
    assert_eq!(numbers(h, &search("%")).await, n(&[&b]), "% is a literal character");
    assert_eq!(numbers(h, &search("_")).await, Vec::<i64>::new(), "_ is a literal character");
    assert_eq!(numbers(h, &search(&format!("#{}", c.number))).await, n(&[&c]));
    let both = IssueFilter { search: Some("login".into()), statuses: vec![IssueStatus::Todo], ..Default::default() };
    assert_eq!(numbers(h, &both).await, n(&[&a]));
}

/// A signal issue counts the occurrences of its signals and knows when it was last seen; other
/// issues have neither.
pub async fn issue_detail_counts_signal_occurrences(h: &Harness) {
    use loop_core::signal::{Ingested, SignalInput};

    let signal = || -> SignalInput { input(json!({ "source": "sentry", "title": "TypeError in checkout" })) };
    let Ingested::Created { issue, .. } = ok(h.store.ingest_signal(signal().into_new(), None, None, &bot()).await)
    else {
        panic!("the first occurrence opens an issue")
    };
    h.clock.advance_millis(5000);
    ok(h.store.ingest_signal(signal().into_new(), None, None, &bot()).await);

    let detail = ok(h.store.issue_detail(&issue.id).await);
    assert_eq!(detail.occurrences, Some(2));
    assert_eq!(detail.last_seen_at, Some(crate::START.plus_millis(5000)));
    let plain = create_issue(h, json!({ "title": "plain", "type": "task" })).await;
    let detail = ok(h.store.issue_detail(&plain.id).await);
    assert_eq!((detail.occurrences, detail.last_seen_at), (None, None));
}

/// A signal with a follow-up opens its task under the signal's issue in the same transaction;
/// a repeat of the open signal opens no second one; the open signal is found by fingerprint
/// until it is closed.
pub async fn a_signals_follow_up_task_is_made_once_with_it(h: &Harness) {
    use loop_core::signal::{FollowUp, Ingested, SignalInput};

    let signal = || {
        let mut s =
            input::<SignalInput>(json!({ "source": "github", "title": "CI failed on main", "severity": "high" }))
                .into_new();
        s.follow_up = Some(FollowUp { title: "Fix CI on main".into(), description: "Make it green.".into() });
        s
    };
    let fingerprint = signal().fingerprint;
    assert_eq!(ok(h.store.open_signal_issue(&fingerprint).await), None);
    let Ingested::Created { issue, .. } = ok(h.store.ingest_signal(signal(), None, None, &bot()).await) else {
        panic!("the first occurrence opens an issue")
    };
    ok(h.store.ingest_signal(signal(), None, None, &bot()).await);
    let detail = ok(h.store.issue_detail(&issue.id).await);
    assert_eq!(detail.children.len(), 1, "one task, not one per occurrence");
    let task = &detail.children[0];
    assert_eq!(
        (task.title.as_str(), task.status, task.priority),
        ("Fix CI on main", IssueStatus::Todo, issue.priority)
    );
    assert_eq!(task.signal_source.as_deref(), Some("github"));
    assert_eq!(ok(h.store.open_signal_issue(&fingerprint).await).map(|i| i.id), Some(issue.id.clone()));
    ok(h.store.update_issue(&issue.id, input(json!({ "status": "done" })), &bot()).await);
    assert_eq!(ok(h.store.open_signal_issue(&fingerprint).await), None);
}
