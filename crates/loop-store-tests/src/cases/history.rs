//! The issue history: one event per change, with who and when, in order; nothing for a
//! change that failed.

use loop_core::event::{EventKind, IssueEvent};
use loop_core::issue::IssuePatch;
use serde_json::{Value, json};

use crate::Harness;
use crate::support::*;

async fn events(h: &Harness, key: &str) -> Vec<IssueEvent> {
    let p = ok(h.store.issue_events(key, all()).await);
    assert_eq!(p.total as usize, p.data.len());
    p.data
}

#[track_caller]
fn check(e: &IssueEvent, issue_id: &str, kind: EventKind, actor: &str, at_ms: i64, data: Value) {
    assert_eq!(e.issue_id, issue_id, "event {e:?}");
    assert_eq!(e.kind, kind, "event {e:?}");
    assert_eq!(e.actor, actor, "event {e:?}");
    assert_eq!(e.created_at, at(at_ms), "event {e:?}");
    assert_eq!(e.data, data, "event {e:?}");
}

/// Create, field changes (with from and to), status changes, labels added and removed,
/// relations (on both issues) and comments are each recorded with the actor's name and the
/// clock's time, oldest first.
pub async fn issue_history(h: &Harness) {
    let l1 = label(h, "l1").await;
    let l2 = label(h, "l2").await;
    // Made by a person: an agent's issue would also get the `auto-generated` label (and its event).
    let x = create_issue_as(h, json!({ "title": "old", "type": "task" }), &human()).await;
    let mut expected = 1;
    let evs = events(h, &x.id).await;
    assert_eq!(evs.len(), expected);
    check(&evs[0], &x.id, EventKind::Created, "human", 0, json!({ "number": 1, "title": "old" }));

    h.clock.advance_millis(1_000);
    ok(h.store.update_issue(&x.id, input(json!({ "title": "new" })), &human()).await);
    h.clock.advance_millis(1_000);
    ok(h.store.update_issue(&x.id, input(json!({ "status": "todo" })), &bot()).await);
    h.clock.advance_millis(1_000);
    ok(h.store.update_issue(&x.id, input(json!({ "priority": 3, "description": "d" })), &human()).await);
    h.clock.advance_millis(1_000);
    ok(h.store.update_issue(&x.id, input(json!({ "labelIds": [l1.id] })), &bot()).await);
    h.clock.advance_millis(1_000);
    ok(h.store.update_issue(&x.id, input(json!({ "labelIds": [l1.id, l2.id] })), &human()).await);
    h.clock.advance_millis(1_000);
    ok(h.store.update_issue(&x.id, input(json!({ "labelIds": [l2.id] })), &bot()).await);
    expected += 7;

    let evs = events(h, &x.id).await;
    assert_eq!(evs.len(), expected, "{evs:#?}");
    check(
        &evs[1],
        &x.id,
        EventKind::FieldChanged,
        "human",
        1_000,
        json!({ "field": "title", "from": "old", "to": "new" }),
    );
    check(&evs[2], &x.id, EventKind::StatusChanged, "bot-1", 2_000, json!({ "from": "triage", "to": "todo" }));
    // Two fields in one patch: two events, in either order.
    let mut pair: Vec<&Value> = vec![&evs[3].data, &evs[4].data];
    pair.sort_by_key(|d| d["field"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        pair,
        vec![
            &json!({ "field": "description", "from": null, "to": "d" }),
            &json!({ "field": "priority", "from": 0, "to": 3 }),
        ]
    );
    for e in &evs[3..5] {
        assert_eq!((e.kind, e.actor.as_str(), e.created_at), (EventKind::FieldChanged, "human", at(3_000)));
    }
    check(&evs[5], &x.id, EventKind::LabelAdded, "bot-1", 4_000, json!({ "labelId": l1.id, "name": "l1" }));
    check(&evs[6], &x.id, EventKind::LabelAdded, "human", 5_000, json!({ "labelId": l2.id, "name": "l2" }));
    check(&evs[7], &x.id, EventKind::LabelRemoved, "bot-1", 6_000, json!({ "labelId": l1.id, "name": "l1" }));

    // Relations are recorded on both issues.
    h.clock.advance_millis(1_000);
    let y = create_issue_as(h, json!({ "title": "y", "type": "task" }), &human()).await;
    let r =
        ok(h.store.create_relation(&x.id, input(json!({ "type": "blocks", "relatedIssueId": y.id })), &bot()).await);
    let relation_data = json!({ "relationId": r.id, "type": "blocks", "issueId": x.id, "relatedIssueId": y.id });
    h.clock.advance_millis(1_000);
    let c = ok(h.store.create_comment(&x.id, input(json!({ "body": "hello" })), &bot()).await);
    h.clock.advance_millis(1_000);
    ok(h.store.delete_relation(&r.id, &human()).await);
    expected += 3;

    let evs = events(h, &x.id).await;
    assert_eq!(evs.len(), expected, "{evs:#?}");
    check(&evs[8], &x.id, EventKind::RelationAdded, "bot-1", 7_000, relation_data.clone());
    check(&evs[9], &x.id, EventKind::CommentAdded, "bot-1", 8_000, json!({ "commentId": c.id, "author": "bot-1" }));
    check(&evs[10], &x.id, EventKind::RelationRemoved, "human", 9_000, relation_data.clone());

    let y_evs = events(h, &y.id).await;
    assert_eq!(y_evs.len(), 3, "{y_evs:#?}");
    check(&y_evs[0], &y.id, EventKind::Created, "human", 7_000, json!({ "number": 2, "title": "y" }));
    check(&y_evs[1], &y.id, EventKind::RelationAdded, "bot-1", 7_000, relation_data.clone());
    check(&y_evs[2], &y.id, EventKind::RelationRemoved, "human", 9_000, relation_data);

    // Event ids order the whole log.
    assert!(evs.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    assert!(y_evs[0].id > evs[7].id && y_evs[1].id < evs[9].id);

    // Labels given at creation are recorded too.
    let z = create_issue(h, json!({ "title": "z", "type": "task", "labelIds": [l1.id] })).await;
    let z_evs = events(h, &z.id).await;
    assert_eq!(z_evs.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![EventKind::Created, EventKind::LabelAdded]);
    assert_eq!(z_evs[1].data, json!({ "labelId": l1.id, "name": "l1" }));

    // A patch that changes nothing records nothing; a failed update records nothing and
    // changes nothing, even the parts of it that were valid.
    h.clock.advance_millis(1_000);
    let before = ok(h.store.get_issue(&x.id).await);
    ok(h.store.update_issue(&x.id, input(json!({ "title": "new", "status": "todo" })), &bot()).await);
    assert_eq!(events(h, &x.id).await.len(), expected, "a no-op patch records no event");
    let failed: IssuePatch = input(json!({ "title": "newer", "parentId": "no-such-issue" }));
    expect_invalid(h.store.update_issue(&x.id, failed, &bot()).await, "parentId", "parent_not_found");
    let failed: IssuePatch = input(json!({ "title": "newer", "status": "done", "labelIds": [l1.id, "no-such-label"] }));
    expect_invalid(h.store.update_issue(&x.id, failed, &bot()).await, "labelIds", "label_not_found");
    let failed: IssuePatch = input(json!({ "title": "newer", "projectId": "no-such-project" }));
    expect_invalid(h.store.update_issue(&x.id, failed, &bot()).await, "projectId", "project_not_found");
    assert_eq!(events(h, &x.id).await.len(), expected, "failed updates record nothing");
    let after = ok(h.store.get_issue(&x.id).await);
    assert_eq!((after.title.as_str(), after.status), (before.title.as_str(), before.status));
    assert_eq!(after.completed_at, None);
    let labels: Vec<String> = ok(h.store.issue_detail(&x.id).await).labels.into_iter().map(|l| l.id).collect();
    assert_eq!(labels, vec![l2.id.clone()], "labels untouched by the failed update");

    // Paging through the history.
    let p = ok(h.store.issue_events(&x.id, page(2, 1)).await);
    assert_eq!(p.total as usize, expected);
    assert_eq!(p.data.iter().map(|e| e.id).collect::<Vec<_>>(), vec![evs[1].id, evs[2].id]);
}
