//! After the pull request: questions that hold an issue until a person answers, rework that
//! sends done work back, blockers that wait for a merge, merges, approval, the merge queue,
//! the merge slot, and webhook feedback applied once.

use std::sync::Arc;

use loop_core::dispatch::ClaimRequest;
use loop_core::issue::{IssuePatch, IssueStatus};
use loop_core::rework::{FeedbackOutcome, PullRequestEvent, PullRequestFeedback, ReworkKind};
use loop_core::signal::Delivery;
use loop_core::template::NoTemplates;
use serde_json::json;

use crate::Harness;
use crate::support::*;

fn request(agent: &str, key: &str) -> ClaimRequest {
    ClaimRequest {
        agent: agent.into(),
        project_id: None,
        idempotency_key: Some(key.into()),
        lease_ttl_ms: 60_000,
        limit: None,
    }
}

/// The number of the issue the next claim takes, and its session, if any.
async fn next(h: &Harness, key: &str) -> Option<(i64, String)> {
    let c = ok(h.store.claim_next(&request("bot-1", key), Arc::new(NoTemplates)).await)?;
    Some((c.issue.number, c.session.id))
}

async fn done(h: &Harness, number: i64) {
    let patch = IssuePatch { status: Some(IssueStatus::Done), ..IssuePatch::default() };
    ok(h.store.update_issue(&number.to_string(), patch, &bot()).await);
}

/// An open question holds its issue out of dispatch (it stays `todo`, `awaitingInput`); the
/// answer frees it, and the next prompt carries both.
pub async fn a_question_holds_the_issue_until_it_is_answered(h: &Harness) {
    let t = create_issue(h, json!({"title": "Cache rates", "type": "task", "status": "todo"})).await;
    let (number, session) = next(h, "q-1").await.expect("the task is claimed");
    assert_eq!(number, t.number);
    let q = ok(h.store.ask_question(&session, input(json!({"question": "Stale or fail?"})), &bot()).await);
    assert_eq!((q.issue_number, q.question.as_str(), q.asked_by.as_str()), (t.number, "Stale or fail?", "bot-1"));
    let s = ok(h.store.get_session(&session).await);
    assert!(s.ended_at.is_some(), "asking ends the claim: {s:?}");
    let waiting = ok(h.store.get_issue(&t.id).await);
    assert_eq!((waiting.status, waiting.awaiting_input), (IssueStatus::Todo, true));
    assert_eq!(next(h, "q-2").await, None, "an issue awaiting input is not dispatched");
    let why = ok(h.store.explain(&t.id).await);
    assert!(why.reasons.iter().any(|r| r.contains("answer")), "{why:?}");
    // A second question from an ended claim is refused; the inbox lists the open one.
    expect_conflict(h.store.ask_question(&session, input(json!({"question": "again"})), &bot()).await, "session_ended");
    let inbox = ok(h.store.list_questions(true, None, all()).await);
    assert_eq!(inbox.data.iter().map(|q| q.id.clone()).collect::<Vec<_>>(), vec![q.id.clone()]);

    let answered =
        ok(h.store.answer_question(&q.id, input(json!({"answer": "Serve stale for a day"})), &human()).await);
    assert_eq!(
        (answered.answer.as_deref(), answered.answered_by.as_deref()),
        (Some("Serve stale for a day"), Some("human"))
    );
    expect_conflict(h.store.answer_question(&q.id, input(json!({"answer": "no"})), &human()).await, "already_answered");
    assert!(ok(h.store.list_questions(true, None, all()).await).data.is_empty());
    assert!(!ok(h.store.get_issue(&t.id).await).awaiting_input);
    let (again, _) = next(h, "q-3").await.expect("answered, the issue is dispatched again");
    assert_eq!(again, t.number);
    let inputs = ok(h.store.prompt_inputs(&t.id).await);
    assert_eq!(inputs.questions.len(), 1);
    assert_eq!(inputs.questions[0].answer.as_deref(), Some("Serve stale for a day"));
}

/// Rework sends a done issue back to `todo` with the feedback, picks the rework template's
/// condition, drops the approval, and is addressed when the issue is done again.
pub async fn rework_sends_done_work_back_until_it_is_done_again(h: &Harness) {
    let t = create_issue(h, json!({"title": "Cache rates", "type": "task", "status": "todo"})).await;
    next(h, "r-1").await.expect("claimed");
    done(h, t.number).await;
    ok(h.store.set_approval(&t.id, true, &human()).await);
    let item = input(
        json!({"kind": "comment", "body": "TTL from config", "path": "src/rates.rs", "line": 42, "author": "dana"}),
    );
    let (rework, issue) = ok(h.store.add_rework(&t.id, item, &human()).await);
    assert_eq!((rework.kind, rework.line, issue.status), (ReworkKind::Comment, Some(42), IssueStatus::Todo));
    assert!(issue.approved_at.is_none(), "rework withdraws the approval");
    let ctx = ok(h.store.selection_context(&t.id).await);
    assert!(ctx.has_rework, "the next claim's template sees the rework");
    let invalid = h.store.add_rework(&t.id, input(json!({"kind": "comment", "body": "x", "line": 0})), &human()).await;
    expect_invalid(invalid, "line", "out_of_range");

    let (number, _) = next(h, "r-2").await.expect("the rework is dispatched");
    assert_eq!(number, t.number);
    let inputs = ok(h.store.prompt_inputs(&t.id).await);
    assert_eq!(inputs.rework.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(), ["TTL from config"]);
    done(h, t.number).await;
    assert!(ok(h.store.pending_rework(&t.id).await).is_empty(), "done again, the rework is addressed");
    assert!(!ok(h.store.selection_context(&t.id).await).has_rework);
}

/// A blocker of an `untilMerged` relation finishes at its merge, not at done; a plain blocker
/// at done. Merging is recorded once.
pub async fn until_merged_blockers_wait_for_the_merge(h: &Harness) {
    let blocker = create_issue(h, json!({"title": "API", "type": "task", "status": "todo", "priority": 1})).await;
    let waits = create_issue(h, json!({"title": "UI", "type": "task", "status": "todo"})).await;
    let plain = create_issue(h, json!({"title": "Docs", "type": "task", "status": "todo"})).await;
    let rel = json!({"type": "blocks", "relatedIssueId": waits.id, "untilMerged": true});
    let r = ok(h.store.create_relation(&blocker.id, input(rel), &human()).await);
    assert!(r.until_merged);
    ok(h.store
        .create_relation(&blocker.id, input(json!({"type": "blocks", "relatedIssueId": plain.id})), &human())
        .await);
    let bad = json!({"type": "related", "relatedIssueId": plain.id, "untilMerged": true});
    expect_invalid(h.store.create_relation(&waits.id, input(bad), &human()).await, "untilMerged", "not_a_block");

    assert_eq!(next(h, "m-1").await.map(|n| n.0), Some(blocker.number));
    done(h, blocker.number).await;
    assert_eq!(next(h, "m-2").await.map(|n| n.0), Some(plain.number), "a plain blocker finishes at done");
    assert_eq!(next(h, "m-3").await, None, "done but not merged still blocks an untilMerged dependant");
    let why = ok(h.store.explain(&waits.id).await);
    assert!(why.reasons.iter().any(|r| r.contains("not merged")), "{why:?}");

    let merged = ok(h.store.record_merge(&blocker.id, input(json!({"sha": "abc123"})), &bot()).await);
    let at = merged.merged_at.expect("merged");
    assert_eq!(ok(h.store.record_merge(&blocker.id, input(json!({})), &bot()).await).merged_at, Some(at), "once");
    assert_eq!(next(h, "m-4").await.map(|n| n.0), Some(waits.number), "merged, the dependant is dispatched");
    expect_conflict(
        h.store.add_rework(&blocker.id, input(json!({"kind": "review", "body": "x"})), &human()).await,
        "already_merged",
    );
}

/// A merge marks an open issue done; the queue holds approved, done, unmerged issues in order of
/// approval; the slot has one holder at a time until it frees it or its lease runs out.
pub async fn the_merge_queue_and_its_slot(h: &Harness) {
    let a = create_issue(h, json!({"title": "A", "type": "task", "status": "done"})).await;
    let b = create_issue(h, json!({"title": "B", "type": "task", "status": "done"})).await;
    let c = create_issue(h, json!({"title": "C", "type": "task", "status": "todo"})).await;
    ok(h.store.set_approval(&b.id, true, &human()).await);
    h.clock.advance_millis(1000);
    ok(h.store.set_approval(&a.id, true, &human()).await);
    ok(h.store.set_approval(&c.id, true, &human()).await);
    let queued: Vec<i64> = ok(h.store.merge_queue(None).await).iter().map(|i| i.number).collect();
    assert_eq!(queued, vec![b.number, a.number], "approved and done, oldest approval first");
    let merged = ok(h.store.record_merge(&c.id, input(json!({})), &bot()).await);
    assert_eq!(merged.status, IssueStatus::Done, "a merge finishes an open issue");
    ok(h.store.record_merge(&b.id, input(json!({})), &bot()).await);
    assert_eq!(ok(h.store.merge_queue(None).await).iter().map(|i| i.number).collect::<Vec<_>>(), vec![a.number]);

    let slot = |holder: &str| input(json!({"holder": holder, "seconds": 60}));
    ok(h.store.take_merge_slot("all", slot("lander-1")).await);
    expect_conflict(h.store.take_merge_slot("all", slot("lander-2")).await, "slot_held");
    ok(h.store.take_merge_slot("proj-2", slot("lander-2")).await);
    ok(h.store.take_merge_slot("all", slot("lander-1")).await);
    ok(h.store.free_merge_slot("all", "lander-2").await);
    expect_conflict(h.store.take_merge_slot("all", slot("lander-2")).await, "slot_held");
    h.clock.advance_millis(61_000);
    ok(h.store.take_merge_slot("all", slot("lander-2")).await);
    ok(h.store.free_merge_slot("all", "lander-2").await);
    ok(h.store.take_merge_slot("all", slot("lander-1")).await);
    expect_invalid(
        h.store.take_merge_slot("all", input(json!({"holder": "x", "seconds": 5}))).await,
        "seconds",
        "out_of_range",
    );
}

/// A delivery about a Loop pull request applies once, and only to the issue that has it.
pub async fn pull_request_feedback_applies_once_to_its_issue(h: &Harness) {
    let t = create_issue(h, json!({"title": "Cache rates", "type": "task", "status": "todo"})).await;
    let prs = json!([{"number": 12, "url": "https://example.test/pull/12", "branch": "loop/1-cache-rates"}]);
    let patch: IssuePatch = input(json!({"status": "done", "pullRequests": prs}));
    ok(h.store.update_issue(&t.id, patch, &bot()).await);
    let feedback = |pr: u64, event: PullRequestEvent| PullRequestFeedback {
        issue_number: t.number,
        pr_number: pr,
        branch: None,
        event,
    };
    let delivery = |id: &str| Delivery { provider: "github".into(), id: id.into() };
    let comment = || PullRequestEvent::Rework(input(json!({"kind": "comment", "body": "Rename it"})));

    let other = ok(h.store.pull_request_feedback(feedback(99, comment()), delivery("d0"), &bot()).await);
    assert!(matches!(other, FeedbackOutcome::NotLoops(_)), "another pull request: {other:?}");
    let applied = ok(h.store.pull_request_feedback(feedback(12, comment()), delivery("d1"), &bot()).await);
    let FeedbackOutcome::Applied(issue) = applied else { panic!("not applied: {applied:?}") };
    assert_eq!(issue.status, IssueStatus::Todo);
    let again = ok(h.store.pull_request_feedback(feedback(12, comment()), delivery("d1"), &bot()).await);
    assert!(matches!(again, FeedbackOutcome::Duplicate), "{again:?}");
    assert_eq!(ok(h.store.pending_rework(&t.id).await).len(), 1, "a redelivery adds nothing");
    // By branch alone (a check run names only its branch).
    let by_branch = PullRequestFeedback {
        issue_number: t.number,
        pr_number: 0,
        branch: Some("loop/1-cache-rates".into()),
        event: PullRequestEvent::Approved,
    };
    assert!(matches!(
        ok(h.store.pull_request_feedback(by_branch, delivery("d2"), &bot()).await),
        FeedbackOutcome::Applied(_)
    ));
    let closed = feedback(12, PullRequestEvent::Closed { url: None });
    let FeedbackOutcome::Applied(issue) = ok(h.store.pull_request_feedback(closed, delivery("d3"), &bot()).await)
    else {
        panic!("closed not applied")
    };
    assert_eq!(issue.status, IssueStatus::Triage, "closed unmerged: back to a person");
    let reply = feedback(12, PullRequestEvent::Reply { author: "dana".into(), body: "yes".into() });
    let none = ok(h.store.pull_request_feedback(reply, delivery("d4"), &bot()).await);
    assert!(matches!(none, FeedbackOutcome::Ignored(_)), "no open question to answer: {none:?}");
}

/// A project that waits for merges makes its new blocks `untilMerged` unless the relation says
/// otherwise; other projects' blocks finish at done.
pub async fn a_project_can_make_its_blocks_wait_for_merges(h: &Harness) {
    let waits = ok(h.store.create_project(input(json!({"name": "Web", "waitForMerge": true}))).await);
    assert!(waits.wait_for_merge);
    let plain = ok(h.store.create_project(input(json!({"name": "Docs"}))).await);
    let issue = |title: &str, project: &str| {
        create_issue(h, json!({"title": title, "type": "task", "status": "todo", "projectId": project}))
    };
    let (a, b, c) = (issue("a", &waits.id).await, issue("b", &waits.id).await, issue("c", &waits.id).await);
    let d = issue("d", &plain.id).await;
    let block = |to: &str, until: Option<bool>| {
        let mut body = json!({"type": "blocks", "relatedIssueId": to});
        if let Some(u) = until {
            body["untilMerged"] = json!(u);
        }
        input::<loop_core::relation::NewRelation>(body)
    };
    assert!(
        ok(h.store.create_relation(&a.id, block(&b.id, None), &human()).await).until_merged,
        "the project's default"
    );
    assert!(
        !ok(h.store.create_relation(&a.id, block(&c.id, Some(false)), &human()).await).until_merged,
        "said otherwise"
    );
    assert!(!ok(h.store.create_relation(&a.id, block(&d.id, None), &human()).await).until_merged, "another project");
    let patched = ok(h.store.update_project(&plain.id, input(json!({"waitForMerge": true}))).await);
    assert!(patched.wait_for_merge);
    let e = issue("e", &plain.id).await;
    assert!(ok(h.store.create_relation(&a.id, block(&e.id, None), &human()).await).until_merged);
}
