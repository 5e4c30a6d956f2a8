//! Keeping the backlog clean: duplicates folded into what they repeat, snoozed issues out of
//! triage until their time, stale issues closed with a comment.

use loop_core::issue::{IssueFilter, IssueStatus};
use loop_core::relation::RelationType;
use loop_core::signal::SignalInput;
use serde_json::json;

use crate::Harness;
use crate::support::*;

const DAY: i64 = 86_400_000;

async fn signal(h: &Harness, title: &str) -> loop_core::issue::Issue {
    let input: SignalInput = input(json!({ "source": "sentry", "title": title }));
    match ok(h.store.ingest_signal(input.into_new(), None, None, &bot()).await) {
        loop_core::signal::Ingested::Created { issue, .. } => issue,
        other => panic!("expected a new signal, got {other:?}"),
    }
}

pub async fn triage_folds_duplicates_and_snoozes(h: &Harness) {
    let original = signal(h, "Checkout times out").await;
    let dup = signal(h, "Payment page hangs").await;
    // The duplicate was itself seen twice.
    let again: SignalInput = input(json!({ "source": "sentry", "title": "Payment page hangs" }));
    ok(h.store.ingest_signal(again.into_new(), None, None, &bot()).await);

    let closed = ok(h.store.mark_duplicate(&dup.id, &original.number.to_string(), &human()).await);
    assert_eq!(closed.status, IssueStatus::Canceled);
    let detail = ok(h.store.issue_detail(&original.id).await);
    assert_eq!(detail.occurrences, Some(3), "its two occurrences are counted on the original");
    assert!(detail.relations.iter().any(|r| r.relation_type == RelationType::Duplicate && r.issue_id == dup.id));
    let said = ok(h.store.list_comments(&original.id).await);
    assert!(said[0].comment.body.contains(&format!("#{} was folded into this issue", dup.number)), "{said:?}");
    let said = ok(h.store.list_comments(&dup.id).await);
    assert_eq!(said.last().unwrap().comment.body, format!("Duplicate of #{}: closed.", original.number));
    expect_conflict(h.store.mark_duplicate(&dup.id, &original.id, &human()).await, "already_closed");
    expect_invalid(h.store.mark_duplicate(&original.id, &original.id, &human()).await, "of", "self_duplicate");
    expect_invalid(h.store.mark_duplicate(&original.id, "999", &human()).await, "of", "issue_not_found");

    // Snoozed: out of the triage queue until its time, then back.
    let later = signal(h, "Avatar upload flaky").await;
    ok(h.store.update_issue(&later.id, input(json!({ "notBefore": at(DAY).to_string() })), &human()).await);
    let queue = IssueFilter { statuses: vec![IssueStatus::Triage], waiting: Some(false), ..IssueFilter::default() };
    assert_eq!(numbers(h, &queue).await, vec![original.number]);
    let snoozed = IssueFilter { waiting: Some(true), ..IssueFilter::default() };
    assert_eq!(numbers(h, &snoozed).await, vec![later.number]);
    h.clock.advance_millis(DAY);
    assert_eq!(ok(h.store.sweep_due().await).released, 1);
    assert_eq!(numbers(h, &queue).await, vec![original.number, later.number]);
}

pub async fn the_stale_policy_closes_only_what_nobody_touched(h: &Harness) {
    let old = task(h, "old idea").await;
    let snoozed = task(h, "later").await;
    ok(h.store.update_issue(&snoozed.id, input(json!({ "notBefore": at(90 * DAY).to_string() })), &human()).await);
    let working = create_issue(h, json!({ "title": "in flight", "type": "task", "status": "todo" })).await;
    h.clock.advance_millis(29 * DAY);
    let touched = task(h, "recent").await;
    h.clock.advance_millis(2 * DAY);
    assert!(ok(h.store.close_stale(30).await).iter().map(|i| i.number).eq([old.number]));
    let closed = ok(h.store.get_issue(&old.id).await);
    assert_eq!(closed.status, IssueStatus::Canceled);
    let said = ok(h.store.list_comments(&old.id).await);
    assert!(said[0].comment.body.starts_with("Closed as stale: untouched for 30 days"), "{said:?}");
    for kept in [&snoozed, &working, &touched] {
        assert_ne!(ok(h.store.get_issue(&kept.id).await).status, IssueStatus::Canceled, "#{}", kept.number);
    }
    assert!(ok(h.store.close_stale(30).await).is_empty(), "closing is done once");
}

/// The team's settings: the seed's defaults until changed; the `auto-generated` label on what
/// agents and integrations create (not on what people create), under the name the settings
/// give, or not at all.
pub async fn settings_name_the_system_labels_and_thresholds(h: &Harness) {
    let seed = ok(h.store.settings().await);
    assert_eq!((seed.score_threshold(), seed.review_count()), (3.5, 15));
    let by_agent = create_issue_as(h, json!({ "title": "from an agent", "type": "task" }), &bot()).await;
    let by_person = create_issue_as(h, json!({ "title": "from a person", "type": "task" }), &human()).await;
    let labels = |i: &loop_core::issue::Issue| {
        let id = i.id.clone();
        async move { ok(h.store.issue_detail(&id).await).labels.into_iter().map(|l| l.name).collect::<Vec<_>>() }
    };
    assert_eq!(labels(&by_agent).await, ["auto-generated"]);
    assert!(labels(&by_person).await.is_empty());

    let changed = ok(h
        .store
        .update_settings(input(json!({ "improvementReviewCount": 5,
        "labels": { "autoGenerated": "by-loop", "needsHumanReview": null } })))
        .await);
    assert_eq!((changed.review_count(), changed.score_threshold()), (5, 3.5), "what was not sent stays");
    assert_eq!(changed.labels.needs_human_review, None);
    assert_eq!(changed.labels.auto_merged.as_deref(), Some("auto-merged"));
    assert_eq!(ok(h.store.settings().await), changed, "kept");
    let renamed = create_issue_as(h, json!({ "title": "again", "type": "task" }), &bot()).await;
    assert_eq!(labels(&renamed).await, ["by-loop"]);
    ok(h.store.update_settings(input(json!({ "labels": { "autoGenerated": null } }))).await);
    let plain = create_issue_as(h, json!({ "title": "plain", "type": "task" }), &bot()).await;
    assert!(labels(&plain).await.is_empty(), "turned off");
}
