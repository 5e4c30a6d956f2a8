//! Hypotheses validated by data: testing starts when a task of the chain gets underway, the
//! chain's monitors wait for the observation window, readings of the metric are kept, and the
//! window's end lets the data decide; loop metrics and the changelog read the outcome.

use std::sync::Arc;

use loop_core::dispatch::ClaimRequest;
use loop_core::hypothesis::HypothesisStatus;
use loop_core::issue::Issue;
use loop_core::store::Swept;
use loop_core::template::NoTemplates;
use serde_json::json;

use crate::Harness;
use crate::support::*;

const HOUR: i64 = 3_600_000;

fn request(agent: &str) -> ClaimRequest {
    ClaimRequest { agent: agent.into(), project_id: None, idempotency_key: None, lease_ttl_ms: 60_000, limit: None }
}

/// A signal with a hypothesis (criteria on `metric`, `window` hours), a task and a monitor the
/// task blocks, flat under the signal as seed 000 has it: `(signal, hypothesis, task, monitor)`.
async fn chain(h: &Harness, metric: &str, window: f64) -> (Issue, Issue, Issue, Issue) {
    let signal =
        create_issue(h, json!({"title": "conversion fell", "type": "signal", "signalSource": "posthog"})).await;
    let hypothesis = create_issue(
        h,
        json!({"title": "h", "type": "hypothesis", "parentId": signal.id, "hypothesis": {
            "statement": "the redirect is slow", "confidence": 0.7,
            "criteria": {"metric": metric, "comparison": "gte", "threshold": 3.3, "windowHours": window}}}),
    )
    .await;
    let task =
        create_issue(h, json!({"title": "fix it", "type": "task", "status": "todo", "parentId": signal.id})).await;
    let monitor =
        create_issue(h, json!({"title": "watch it", "type": "monitor", "status": "todo", "parentId": signal.id})).await;
    ok(h.store.create_relation(&task.id, input(json!({"type": "blocks", "relatedIssueId": monitor.id})), &bot()).await);
    (signal, hypothesis, task, monitor)
}

async fn status_of(h: &Harness, issue: &Issue) -> HypothesisStatus {
    ok(h.store.get_issue(&issue.id).await).hypothesis.expect("a hypothesis").status
}

pub async fn hypotheses_are_validated_by_data_after_their_window(h: &Harness) {
    let goal = ok(h.store.create_goal(input(json!({"title": "conversion", "metric": "conversion_rate"}))).await);
    let (_, hypothesis, task, monitor) = chain(h, "conversion_rate", 48.0).await;
    assert_eq!(status_of(h, &hypothesis).await, HypothesisStatus::Proposed);

    // Claiming the task starts the test; the monitor waits for the window.
    let claim = ok(h.store.claim_next(&request("executor"), Arc::new(NoTemplates)).await).expect("the task is ready");
    assert_eq!(claim.issue.id, task.id);
    let testing = ok(h.store.get_issue(&hypothesis.id).await).hypothesis.unwrap();
    assert_eq!((testing.status, testing.testing_since), (HypothesisStatus::Testing, Some(now(h))));
    let until = now(h).plus_millis(48 * HOUR);
    assert_eq!(testing.observe_until, Some(until));
    assert_eq!(ok(h.store.get_issue(&monitor.id).await).not_before, Some(until));
    ok(h.store.update_issue(&task.id, input(json!({"status": "done", "commits": [{"sha": "abc1234"}]})), &bot()).await);
    assert!(ok(h.store.claim_next(&request("m"), Arc::new(NoTemplates)).await).is_none(), "the monitor waits");
    let why = ok(h.store.explain(&monitor.id).await);
    assert!(format!("{why:?}").contains("waits until"), "{why:?}");

    // A reading inside the window is kept but decides nothing.
    h.clock.advance_millis(47 * HOUR);
    ok(h.store.update_goal(&goal.id, input(json!({"currentValue": 3.5}))).await);
    assert_eq!(ok(h.store.sweep_due().await), Swept::default());
    assert_eq!(status_of(h, &hypothesis).await, HypothesisStatus::Testing);

    // The window passes: the monitor may go, and the last reading decides.
    h.clock.advance_millis(HOUR);
    assert_eq!(ok(h.store.sweep_due().await), Swept { released: 1, resolved: 1 });
    let done = ok(h.store.get_issue(&hypothesis.id).await).hypothesis.unwrap();
    assert_eq!((done.status, done.resolved_at), (HypothesisStatus::Validated, Some(now(h))));
    assert!(done.outcome.unwrap().contains("conversion_rate is 3.5"));
    assert_eq!(ok(h.store.get_issue(&monitor.id).await).not_before, None);
    let next = ok(h.store.claim_next(&request("m"), Arc::new(NoTemplates)).await).expect("the monitor is ready");
    assert_eq!(next.issue.id, monitor.id);
    assert_eq!(ok(h.store.sweep_due().await), Swept::default(), "a sweep with nothing due does nothing");

    let metrics = ok(h.store.loop_metrics(None, None).await);
    assert_eq!((metrics.hit_rate.overall.validated, metrics.hit_rate.overall.rate), (1, Some(1.0)));
    assert_eq!(metrics.hit_rate.by_signal_source[0].key, "posthog");
    assert_eq!(metrics.velocity.signal_to_validated.median_ms, Some(48 * HOUR));
    let log = ok(h.store.changelog(None).await);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].hypothesis.as_ref().unwrap().number, hypothesis.number);
    assert_eq!(log[0].changes[0].number, task.number);
    assert!(log[0].summary.ends_with("validated"), "{}", log[0].summary);
}

pub async fn a_window_without_readings_is_inconclusive_and_resolutions_are_final(h: &Harness) {
    let (_, hypothesis, task, monitor) = chain(h, "signup_rate", 1.0).await;
    // A task patched into progress starts the test as a claim does.
    ok(h.store.update_issue(&task.id, input(json!({"status": "in_progress"})), &bot()).await);
    assert_eq!(status_of(h, &hypothesis).await, HypothesisStatus::Testing);
    // A monitor made while the hypothesis is tested waits from the start.
    let late = create_issue(
        h,
        json!({"title": "watch again", "type": "monitor", "status": "todo", "parentId": monitor.parent_id}),
    )
    .await;
    assert_eq!(late.not_before, Some(now(h).plus_millis(HOUR)));
    h.clock.advance_millis(HOUR);
    ok(h.store.sweep_due().await);
    let h1 = ok(h.store.get_issue(&hypothesis.id).await).hypothesis.unwrap();
    assert_eq!(h1.status, HypothesisStatus::Inconclusive);
    assert_eq!(h1.outcome.as_deref(), Some("no reading of signup_rate while it was tested"));
    let again = h
        .store
        .resolve_hypothesis(&hypothesis.id, input(json!({"status": "validated", "reason": "r"})), &human())
        .await;
    expect_conflict(again, "already_resolved");
    let metrics = ok(h.store.loop_metrics(None, None).await);
    assert_eq!((metrics.hit_rate.overall.inconclusive, metrics.hit_rate.overall.rate), (1, Some(0.0)));

    // A person resolves another with a reason; the event says so.
    let other = create_issue(
        h,
        json!({"title": "o", "type": "hypothesis", "hypothesis": {"statement": "s", "confidence": 0.2}}),
    )
    .await;
    let resolved = ok(h
        .store
        .resolve_hypothesis(
            &other.id,
            input(json!({"status": "invalidated", "reason": "the A/B test said no"})),
            &human(),
        )
        .await);
    assert_eq!(resolved.hypothesis.unwrap().outcome.as_deref(), Some("the A/B test said no"));
    let events = ok(h.store.issue_events(&other.id, all()).await).data;
    let last = events.last().unwrap();
    assert_eq!(last.kind.as_str(), "hypothesis_status_changed");
    assert_eq!((last.actor.as_str(), &last.data["to"]), ("human", &json!("invalidated")));
    assert_eq!(last.data["evidence"]["reason"], "the A/B test said no");
    let plain = crate::support::task(h, "plain").await;
    expect_invalid(
        h.store.resolve_hypothesis(&plain.id, input(json!({"status": "validated", "reason": "r"})), &human()).await,
        "id",
        "hypothesis_not_found",
    );
}

/// Agent efficiency is tallied by claim day as sessions end: first attempts, open sessions, and
/// a record arriving after the end moving its session's tokens, cost and duration.
pub async fn agent_efficiency_is_tallied_as_sessions_end(h: &Harness) {
    use loop_core::session::{NewSessionRecord, SessionOutcome, SessionReport};
    const MINUTE: i64 = 60_000;
    let todo = |title: &str| json!({"title": title, "type": "task", "status": "todo"});
    let (t1, t2) = (create_issue(h, todo("first")).await, create_issue(h, todo("second")).await);
    let tried = ok(h.store.claim_issue(&t1.id, &request("a"), Arc::new(NoTemplates)).await);
    h.clock.advance_millis(MINUTE);
    let report = SessionReport { tokens: Some(100), cost_usd: Some(0.5), ..SessionReport::default() };
    ok(h.store
        .end_session(&tried.session.id, SessionOutcome::Failed, report, &loop_core::actor::Actor::agent("a"))
        .await);
    let finished = ok(h.store.claim_issue(&t1.id, &request("b"), Arc::new(NoTemplates)).await);
    h.clock.advance_millis(10 * MINUTE);
    ok(h.store.update_issue(&t1.id, input(json!({"status": "done"})), &loop_core::actor::Actor::agent("b")).await);
    ok(h.store.claim_issue(&t2.id, &request("a"), Arc::new(NoTemplates)).await);
    let by = |m: &loop_core::metrics::LoopMetrics, name: &str| m.agents.iter().find(|a| a.agent == name).cloned();

    let m = ok(h.store.loop_metrics(None, None).await);
    let a = by(&m, "a").expect("a worked");
    assert_eq!((a.sessions, a.success_rate, a.first_attempt_success), (2, Some(0.0), Some(0.0)), "{a:?}");
    assert_eq!((a.completed_issues, a.tokens_per_completed_issue), (0, None), "nothing completed");
    assert_eq!(a.median_duration_ms, Some(65_000), "one minute, within 60–70 s");
    let b = by(&m, "b").expect("b worked");
    assert_eq!((b.sessions, b.success_rate, b.first_attempt_success), (1, Some(1.0), None), "b went second");
    assert_eq!(b.median_duration_ms, Some(650_000));
    assert_eq!(b.tokens_per_completed_issue, None, "b reported nothing yet");

    // The runner's record arrives after the end: the session moves to its new duration.
    let record = NewSessionRecord {
        attestation: serde_json::Map::new(),
        transcript: None,
        tokens: Some(1_000),
        cost_usd: Some(1.0),
        duration_ms: Some(20 * MINUTE as u64),
    };
    ok(h.store.record_session(&finished.session.id, record.clone()).await);
    ok(h.store.record_session(&finished.session.id, record).await);
    let b = by(&ok(h.store.loop_metrics(None, None).await), "b").unwrap();
    assert_eq!((b.sessions, b.completed_issues), (1, 1), "recording twice counts once");
    assert_eq!(b.median_duration_ms, Some(1_300_000), "20 min, within 1.2–1.4 M ms");
    assert_eq!((b.tokens_per_completed_issue, b.cost_usd_per_completed_issue), (Some(1_000.0), Some(1.0)));

    // The next day is not in a period that starts then.
    let tomorrow = crate::START.plus_millis(loop_core::dispatch::DAY_MS);
    assert!(ok(h.store.loop_metrics(Some(tomorrow), None).await).agents.is_empty());
}
