//! The dashboard's reads: stats, activity chains and prompt health.

use std::collections::BTreeSet;
use std::sync::Arc;

use loop_core::issue::Issue;
use loop_core::template::NewReview;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::Harness;
use crate::support::*;

const DAY: i64 = 86_400_000;

async fn patch(h: &Harness, issue: &Issue, body: Value) -> Issue {
    ok(h.store.update_issue(&issue.id, input(body), &human()).await)
}

/// Counts exclude deleted rows and list only statuses and types that occur; the queue depth
/// is what dispatch could hand out (not backlog, not blocked), and "completed in 24 h" follows
/// `completedAt`.
pub async fn dashboard_stats(h: &Harness) {
    let empty = ok(h.store.stats().await);
    assert_eq!((empty.issues.total, empty.goals.total, empty.dispatch.queue_depth), (0, 0, 0));
    assert!(empty.issues.by_status.is_empty() && empty.issues.by_type.is_empty());

    let ready = create_issue(h, json!({ "title": "ready", "type": "task", "status": "todo" })).await;
    let blocked = create_issue(h, json!({ "title": "blocked", "type": "task", "status": "todo" })).await;
    ok(h.store
        .create_relation(&blocked.id, input(json!({ "type": "blocked_by", "relatedIssueId": ready.id })), &bot())
        .await);
    create_issue(h, json!({ "title": "later", "type": "plan", "status": "backlog" })).await;
    let working = create_issue(h, json!({ "title": "working", "type": "task", "status": "in_progress" })).await;
    let old_done = create_issue(h, json!({ "title": "old", "type": "signal" })).await;
    patch(h, &old_done, json!({ "status": "done" })).await;
    h.clock.advance_millis(DAY + 1);
    patch(h, &working, json!({ "status": "done" })).await;
    let gone = task(h, "deleted").await;
    ok(h.store.delete_issue(&gone.id, &human()).await);
    ok(h.store.create_goal(input(json!({ "title": "a" }))).await);
    let achieved = ok(h.store.create_goal(input(json!({ "title": "b" }))).await);
    ok(h.store.update_goal(&achieved.id, input(json!({ "status": "achieved" }))).await);
    let deleted_goal = ok(h.store.create_goal(input(json!({ "title": "c" }))).await);
    ok(h.store.delete_goal(&deleted_goal.id).await);

    let s = ok(h.store.stats().await);
    assert_eq!(s.issues.total, 5);
    let pairs =
        |m: &std::collections::BTreeMap<String, u64>| m.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>();
    assert_eq!(pairs(&s.issues.by_status), vec![("backlog".into(), 1), ("done".into(), 2), ("todo".into(), 2)]);
    assert_eq!(pairs(&s.issues.by_type), vec![("plan".into(), 1), ("signal".into(), 1), ("task".into(), 3)]);
    assert_eq!((s.goals.total, s.goals.active, s.goals.achieved), (2, 1, 1));
    assert_eq!(
        (s.dispatch.queue_depth, s.dispatch.active_count, s.dispatch.completed_last24h),
        (1, 0, 1),
        "one eligible issue (the other is blocked); one done within 24 h"
    );
}

/// A chain is a live root with its live children (oldest first, each with its relations),
/// ordered by the latest change anywhere in it; `total` counts every chain, and the offset
/// pages through them.
pub async fn dashboard_activity_chains(h: &Harness) {
    let signal = create_issue(h, json!({ "title": "checkout slow", "type": "signal" })).await;
    h.clock.advance_millis(1_000);
    let hypothesis = create_issue(h, json!({ "title": "pool too small", "type": "hypothesis" })).await;
    h.clock.advance_millis(1_000);
    let fix = create_issue(h, json!({ "title": "raise pool", "type": "task", "parentId": hypothesis.id })).await;
    h.clock.advance_millis(1_000);
    let watch = create_issue(h, json!({ "title": "watch p95", "type": "monitor", "parentId": hypothesis.id })).await;
    ok(h.store
        .create_relation(&watch.id, input(json!({ "type": "blocked_by", "relatedIssueId": fix.id })), &bot())
        .await);
    h.clock.advance_millis(1_000);
    let stale = task(h, "stale root").await;
    let removed = create_issue(h, json!({ "title": "removed", "type": "task", "parentId": stale.id })).await;
    ok(h.store.delete_issue(&removed.id, &human()).await);

    // The signal changes last, so its chain comes first; the hypothesis chain's latest
    // change is its newest child.
    h.clock.advance_millis(1_000);
    let signal = patch(h, &signal, json!({ "priority": 1 })).await;

    let p = ok(h.store.activity(all()).await);
    assert_eq!(p.total, 3);
    let roots: Vec<&str> = p.data.iter().map(|c| c.root.title.as_str()).collect();
    assert_eq!(roots, ["checkout slow", "stale root", "pool too small"]);
    assert_eq!(p.data[0].latest_activity, signal.updated_at);
    assert!(p.data[0].children.is_empty());
    assert!(p.data[1].children.is_empty(), "deleted children are not part of a chain");
    let chain = &p.data[2];
    assert_eq!(chain.latest_activity, watch.updated_at.max(fix.updated_at));
    let steps: Vec<&str> = chain.children.iter().map(|s| s.issue.title.as_str()).collect();
    assert_eq!(steps, ["raise pool", "watch p95"]);
    assert!(chain.children[0].relations.is_empty());
    assert_eq!(chain.children[1].relations.len(), 1);
    assert_eq!(chain.children[1].relations[0].related_issue_id, fix.id);

    let second = ok(h.store.activity(page(1, 1)).await);
    assert_eq!((second.total, second.data.len()), (3, 1));
    assert_eq!(second.data[0].root.id, stale.id, "the offset is honoured");
    assert!(ok(h.store.activity(page(10, 3)).await).data.is_empty());
}

/// Per live template: its active version (wherever it is in the history), the five newest
/// versions, review averages as numbers, the active version's score, and whether it needs
/// attention (a low score or completion rate).
pub async fn dashboard_prompt_health(h: &Harness) {
    let t = ok(h.store.create_template(input(json!({ "slug": "t", "name": "T" }))).await);
    let v1 = ok(h.store.create_version(&t.id, input(json!({ "content": "one" })), &bot()).await);
    for n in 2..=7 {
        ok(h.store.create_version(&t.id, input(json!({ "content": format!("draft {n}") })), &bot()).await);
    }
    let idle = ok(h.store.create_template(input(json!({ "slug": "idle", "name": "Idle" }))).await);
    let deleted = ok(h.store.create_template(input(json!({ "slug": "gone", "name": "Gone" }))).await);
    ok(h.store.delete_template(&deleted.id).await);
    let issue = task(h, "reviewed").await;
    let review = |c: i64, d: i64, r: i64| -> NewReview {
        input(json!({ "versionId": v1.id, "issueId": issue.id, "clarity": c, "completeness": d, "relevance": r }))
    };
    ok(h.store.create_review(review(2, 1, 2), &bot()).await);
    ok(h.store.create_review(review(3, 2, 1), &bot()).await);

    let health = ok(h.store.prompt_health().await);
    let slugs: Vec<&str> = health.iter().map(|p| p.template.slug.as_str()).collect();
    assert_eq!(slugs, ["t", "idle"]);
    let t_health = &health[0];
    let active = t_health.active_version.as_ref().expect("the active version is found beyond the five newest");
    assert_eq!(active.id, v1.id);
    let versions: Vec<i64> = t_health.recent_versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, [7, 6, 5, 4, 3]);
    let s = &t_health.review_summary;
    assert_eq!(s.total_reviews, 2);
    assert_eq!((s.avg_clarity, s.avg_completeness, s.avg_relevance), (Some(2.5), Some(1.5), Some(1.5)));
    assert!(s.composite_score.is_some_and(|score| score < 3.5), "two poor reviews give a poor score: {s:?}");
    assert!(t_health.needs_attention);

    let idle_health = &health[1];
    assert_eq!(idle_health.template.id, idle.id);
    assert!(idle_health.active_version.is_none() && idle_health.recent_versions.is_empty());
    assert_eq!(idle_health.review_summary.total_reviews, 0);
    assert_eq!(idle_health.review_summary.avg_clarity, None);
    assert!(!idle_health.needs_attention, "nothing to attend to without an active version");
}

/// A goal keeps every value its current value took (by create, PATCH or metric reading),
/// oldest first, limited to the newest `limit`; a PATCH that changes nothing adds none.
pub async fn goal_readings_follow_current_value(h: &Harness) {
    use loop_core::goal::Trend;
    use loop_core::signal::{MetricReading, SignalInput};

    let goal = ok(h
        .store
        .create_goal(input(json!({ "title": "conv", "metric": "conversion", "targetValue": 4.0, "currentValue": 2.0 })))
        .await);
    h.clock.advance_millis(1000);
    ok(h.store.update_goal(&goal.id, input(json!({ "currentValue": 2.0 }))).await);
    ok(h.store.update_goal(&goal.id, input(json!({ "title": "conversion rate" }))).await);
    let patched = ok(h.store.update_goal(&goal.id, input(json!({ "currentValue": 3.0 }))).await);
    h.clock.advance_millis(1000);
    let signal: SignalInput = input(json!({ "source": "posthog", "title": "conversion moved" }));
    let reading = MetricReading { metric: "conversion".into(), value: 2.5 };
    ok(h.store.ingest_signal(signal.into_new(), None, Some(reading), &bot()).await);

    let values = |r: &[loop_core::goal::GoalReading]| r.iter().map(|x| x.value).collect::<Vec<_>>();
    let readings = ok(h.store.goal_readings(&goal.id, 10).await);
    assert_eq!(values(&readings), vec![2.0, 3.0, 2.5]);
    assert_eq!(readings[1].recorded_at, patched.updated_at);
    assert_eq!(values(&ok(h.store.goal_readings(&goal.id, 2).await)), vec![3.0, 2.5]);

    let goal = ok(h.store.get_goal(&goal.id).await);
    assert_eq!(goal.trend(&readings), Some(Trend::Away), "2.5 is further from 4 than 3 was");
    assert_eq!(goal.baseline_value, Some(2.0), "the first value");
    assert_eq!(goal.progress(), Some(0.25));
    expect_not_found(h.store.goal_readings("no-such-goal", 10).await);
}

/// The live feed: events after a cursor in log order, and the labels of a page of issues.
pub async fn dashboard_live_feed_and_labels(h: &Harness) {
    assert_eq!(ok(h.store.last_event_id().await), 0);
    assert!(ok(h.store.events_after(0, 10).await).is_empty());
    let bug = label(h, "bug").await;
    let ui = label(h, "ui").await;
    let a = create_issue(h, json!({ "title": "a", "type": "task", "labelIds": [ui.id, bug.id] })).await;
    let cursor = newest_event(h, &a).await;
    feed_reaches(h, cursor).await;
    let b = task(h, "b").await;
    patch(h, &a, json!({ "status": "todo" })).await;
    feed_reaches(h, newest_event(h, &a).await).await;

    let feed = ok(h.store.events_after(cursor, 10).await);
    let seen: Vec<&str> = feed.iter().map(|e| e.issue_id.as_str()).collect();
    assert_eq!(seen.first(), Some(&b.id.as_str()));
    assert_eq!(seen.last(), Some(&a.id.as_str()));
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(ok(h.store.events_after(cursor, 1).await).len(), 1);

    ok(h.store.delete_label(&ui.id).await);
    let labels = ok(h.store.labels_of_issues(&[a.id.clone(), b.id.clone()]).await);
    let names: Vec<&str> = labels[&a.id].iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["bug"], "deleted labels are not shown");
    assert!(!labels.contains_key(&b.id));
    assert!(ok(h.store.labels_of_issues(&[]).await).is_empty());
}

/// Writers racing: a reader following the feed while they write sees every event exactly once,
/// though on PostgreSQL events commit out of id order.
pub async fn feed_misses_nothing_under_concurrent_writers(h: &Harness) {
    let mut writers = JoinSet::new();
    for w in 0..8 {
        let store = Arc::clone(&h.store);
        writers.spawn(async move {
            for n in 0..10 {
                let new = input(json!({ "title": format!("writer {w} issue {n}"), "type": "task" }));
                let issue = ok(store.create_issue(new, &bot()).await);
                let patch = input(json!({ "status": "todo" }));
                ok(store.update_issue(&issue.id, patch, &bot()).await);
            }
        });
    }
    let mut seen = Vec::new();
    let mut cursor = 0;
    let follow = |seen: &mut Vec<i64>, cursor: &mut i64, batch: Vec<loop_core::event::IssueEvent>| {
        *cursor = batch.last().map_or(*cursor, |e| e.id);
        seen.extend(batch.into_iter().map(|e| e.id));
    };
    while !writers.is_empty() {
        let batch = ok(h.store.events_after(cursor, 7).await);
        follow(&mut seen, &mut cursor, batch);
        if let Some(joined) = writers.try_join_next() {
            joined.expect("writer panicked");
        }
        tokio::task::yield_now().await;
    }
    let everything = ok(h.store.list_issues(&Default::default(), all()).await).data;
    let mut expected = BTreeSet::new();
    for issue in &everything {
        expected.extend(ok(h.store.issue_events(&issue.id, all()).await).data.iter().map(|e| e.id));
    }
    assert_eq!(everything.len(), 80);
    // The last writer's transaction is not necessarily the feed's last; wait until all are in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen.len() < expected.len() && std::time::Instant::now() < deadline {
        let batch = ok(h.store.events_after(cursor, 50).await);
        follow(&mut seen, &mut cursor, batch);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let distinct: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "no event is followed twice");
    assert_eq!(distinct, expected, "every event is followed");
}
