//! Dispatch: claims in score order, eligibility (status, blockers, deletion), the goal and age
//! parts of the score, the queue, explanations, idempotent retries, leases and sessions.
//!
//! The expected orders are computed here, from the data each case creates, with the formula of
//! the contract: priority weight {1: 100, 2: 75, 3: 50, 4: 25, else 10} + 20 when the issue's
//! live project has a live `active` goal (linked either way) + days (fractional) since the
//! issue last entered `todo` + type bonus {signal 50, hypothesis 40, plan 30, task 20,
//! monitor 10}; ties go to the older `todo` entry, then the lower number.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use loop_core::dispatch::{Claim, ClaimRequest, QueueEntry};
use loop_core::event::{EventKind, IssueEvent};
use loop_core::issue::{Issue, IssueStatus};
use loop_core::session::{AgentSession, NewSessionRecord, SessionFilter, SessionOutcome, SessionReport};
use loop_core::template::NoTemplates;
use loop_core::{Actor, Error, Result};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::Harness;
use crate::support::*;

const DAY: i64 = 86_400_000;
const TTL: i64 = 60_000;

// ---------------------------------------------------------------------------------------------
// Shorthands

static KEYS: AtomicU64 = AtomicU64::new(0);

/// A claim request from `agent` under a key never used before, so nothing is replayed.
fn fresh(agent: &str) -> ClaimRequest {
    ClaimRequest {
        agent: agent.to_string(),
        project_id: None,
        idempotency_key: Some(format!("key-{}", KEYS.fetch_add(1, Ordering::Relaxed))),
        lease_ttl_ms: TTL,
        limit: None,
    }
}

/// A request without an idempotency key.
fn keyless(agent: &str) -> ClaimRequest {
    ClaimRequest { agent: agent.to_string(), project_id: None, idempotency_key: None, lease_ttl_ms: TTL, limit: None }
}

async fn claim(h: &Harness, req: &ClaimRequest) -> Option<Claim> {
    ok(h.store.claim_next(req, Arc::new(NoTemplates)).await)
}

/// Claims the next issue as `agent` (fresh key) and returns its number; checks it is a new claim.
async fn next_number(h: &Harness, agent: &str) -> Option<i64> {
    let c = claim(h, &fresh(agent)).await?;
    assert!(!c.replayed, "a request with a new key is never a replay: {c:?}");
    Some(c.issue.number)
}

async fn queue_of(h: &Harness, project: Option<&str>) -> Vec<QueueEntry> {
    let p = ok(h.store.dispatch_queue(project, all()).await);
    assert_eq!(p.total as usize, p.data.len(), "total must count every eligible issue when all fit in one page");
    p.data
}

async fn queue(h: &Harness) -> Vec<QueueEntry> {
    queue_of(h, None).await
}

async fn queue_numbers(h: &Harness) -> Vec<i64> {
    queue(h).await.iter().map(|e| e.issue.number).collect()
}

fn nums(issues: &[&Issue]) -> Vec<i64> {
    issues.iter().map(|i| i.number).collect()
}

async fn make(h: &Harness, title: &str, status: &str, priority: i64, ty: &str, project: Option<&str>) -> Issue {
    create_issue(h, json!({ "title": title, "type": ty, "status": status, "priority": priority, "projectId": project }))
        .await
}

/// A `todo` task of this priority, in no project.
async fn todo(h: &Harness, title: &str, priority: i64) -> Issue {
    make(h, title, "todo", priority, "task", None).await
}

async fn patch(h: &Harness, key: &str, body: Value) -> Issue {
    match h.store.update_issue(key, input(body.clone()), &human()).await {
        Ok(i) => i,
        Err(e) => panic!("update_issue({key}, {body}) failed: {e:?}"),
    }
}

async fn set_status(h: &Harness, key: &str, status: &str) -> Issue {
    patch(h, key, json!({ "status": status })).await
}

async fn relate(h: &Harness, subject: &Issue, kind: &str, related: &Issue) -> String {
    let body = input(json!({ "type": kind, "relatedIssueId": related.id }));
    ok(h.store.create_relation(&subject.id, body, &bot()).await).id
}

async fn status_of(h: &Harness, key: &str) -> IssueStatus {
    ok(h.store.get_issue(key).await).status
}

async fn events_of(h: &Harness, key: &str) -> Vec<IssueEvent> {
    ok(h.store.issue_events(key, all()).await).data
}

fn entry<'a>(q: &'a [QueueEntry], issue: &Issue) -> &'a QueueEntry {
    q.iter().find(|e| e.issue.id == issue.id).unwrap_or_else(|| panic!("#{} is not in the queue", issue.number))
}

fn goal_bonuses(q: &[QueueEntry]) -> Vec<(i64, i64)> {
    q.iter().map(|e| (e.issue.number, e.breakdown.goal_bonus)).collect()
}

/// The queue holds exactly `order`, with the goal bonus on the issues of `with_bonus` only
/// (and scores 90 with it, 70 without: priority 3 tasks that entered todo just now).
async fn check_goal(h: &Harness, label: &str, order: [i64; 4], with_bonus: &[i64]) {
    let qe = queue(h).await;
    let got: Vec<i64> = qe.iter().map(|e| e.issue.number).collect();
    assert_eq!(got, order, "{label}: queue order");
    let want: Vec<(i64, i64)> = order.iter().map(|n| (*n, if with_bonus.contains(n) { 20 } else { 0 })).collect();
    assert_eq!(goal_bonuses(&qe), want, "{label}: goal bonuses");
    for e in &qe {
        assert_eq!(e.score, if with_bonus.contains(&e.issue.number) { 90 } else { 70 }, "{label}");
    }
}

#[track_caller]
fn conflict_message<T: std::fmt::Debug>(r: Result<T>, code: &str) -> String {
    match r {
        Err(Error::Conflict { code: c, message }) => {
            assert_eq!(c, code, "wrong Conflict code (message: {message})");
            message
        }
        other => panic!("expected Conflict {{ code: {code:?} }}, got {other:?}"),
    }
}

#[track_caller]
fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: expected {b}, got {a}");
}

fn report(v: Value) -> SessionReport {
    input(v)
}

async fn sessions(h: &Harness, filter: SessionFilter) -> BTreeSet<String> {
    let p = ok(h.store.list_sessions(&filter, all()).await);
    assert_eq!(p.total as usize, p.data.len(), "{filter:?}");
    p.data.into_iter().map(|s| s.id).collect()
}

fn ids(sessions: &[&AgentSession]) -> BTreeSet<String> {
    sessions.iter().map(|s| s.id.clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// An independent model of the score, for the cases that build larger backlogs.

fn weight(priority: i64) -> i64 {
    match priority {
        1 => 100,
        2 => 75,
        3 => 50,
        4 => 25,
        _ => 10,
    }
}

fn type_points(ty: &str) -> i64 {
    match ty {
        "signal" => 50,
        "hypothesis" => 40,
        "plan" => 30,
        "task" => 20,
        "monitor" => 10,
        other => panic!("unknown type {other}"),
    }
}

const TYPES: [&str; 5] = ["signal", "hypothesis", "plan", "task", "monitor"];

/// What the test believes about one issue.
#[derive(Debug, Clone)]
struct Model {
    id: String,
    number: i64,
    priority: i64,
    ty: &'static str,
    status: IssueStatus,
    project: Option<usize>,
    /// When it last entered `todo`, in ms (meaningful only while in `todo`).
    todo_since: i64,
    deleted: bool,
    /// Indexes of the issues that block this one.
    blockers: Vec<usize>,
}

/// Whether `blocker` blocks `issue` in the model, directly or through other issues.
fn blocks(issues: &[Model], blocker: usize, issue: usize) -> bool {
    let mut pending = vec![issue];
    let mut seen = std::collections::HashSet::new();
    while let Some(i) = pending.pop() {
        for &up in &issues[i].blockers {
            if up == blocker {
                return true;
            }
            if seen.insert(up) {
                pending.push(up);
            }
        }
    }
    false
}

impl Model {
    fn open(&self) -> bool {
        !self.deleted && !self.status.is_terminal()
    }
}

/// The eligible issues in dispatch order, with their scores at `now`.
fn expected_order(issues: &[Model], goal: &[bool], now: i64) -> Vec<(i64, f64)> {
    let mut ready: Vec<(&Model, i64)> = issues
        .iter()
        .filter(|m| !m.deleted && m.status == IssueStatus::Todo && m.blockers.iter().all(|&b| !issues[b].open()))
        .map(|m| {
            let bonus = if m.project.is_some_and(|p| goal[p]) { 20 } else { 0 };
            // The score in milliseconds: exact, so ties are ties.
            let base = weight(m.priority) + type_points(m.ty) + bonus;
            (m, base * DAY + (now - m.todo_since))
        })
        .collect();
    ready.sort_by(|(a, ka), (b, kb)| kb.cmp(ka).then(a.todo_since.cmp(&b.todo_since)).then(a.number.cmp(&b.number)));
    // Scores are shown in whole points (whole days of age), floored.
    ready.into_iter().map(|(m, k)| (m.number, (k / DAY) as f64)).collect()
}

#[track_caller]
fn check_queue(q: &[QueueEntry], expected: &[(i64, f64)], context: &str) {
    let got: Vec<i64> = q.iter().map(|e| e.issue.number).collect();
    let want: Vec<i64> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(got, want, "{context}: queue order");
    for (e, (n, score)) in q.iter().zip(expected) {
        close(e.score as f64, *score, &format!("{context}: score of #{n}"));
        assert_eq!(e.breakdown.total(), e.score, "{context}: breakdown total of #{n}");
    }
}

/// xorshift64*: small, deterministic, good enough to shuffle a backlog.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.below(i as u64 + 1) as usize);
        }
    }

    /// A step of whole days (often none, often five): every entry time is then a whole number
    /// of days apart, and scores whose base points differ by that many days tie.
    fn coarse_step(&mut self) -> i64 {
        DAY * self.pick(&[0, 0, 0, 1, 5, 5, 10])
    }

    /// A step of the clock: often none (same-instant ties), sometimes whole days (so different
    /// base scores meet), sometimes an arbitrary amount.
    fn step(&mut self) -> i64 {
        match self.below(6) {
            0 | 1 => 0,
            2 => DAY,
            3 => DAY * (1 + self.below(10) as i64),
            4 => self.below(DAY as u64) as i64,
            _ => 1 + self.below(60_000) as i64,
        }
    }
}

/// Prints the seed if the property fails while it is alive.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("dispatch property failed with seed {}", self.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

/// `claim_next` hands out the highest-scoring `todo` issue, moves it to `in_progress` and opens
/// a session (agent, claimedAt = now, leaseExpiresAt = now + ttl, open); triage, backlog,
/// in_progress, done and canceled issues are never dispatched; `None` when nothing is eligible.
pub async fn dispatch_claims_by_score(h: &Harness) {
    assert!(claim(h, &fresh("a")).await.is_none(), "an empty store has nothing to dispatch");
    assert!(queue(h).await.is_empty());

    // Never dispatched, however high their score.
    for status in ["triage", "backlog", "in_progress", "done", "canceled"] {
        make(h, status, status, 1, "signal", None).await;
    }
    assert!(claim(h, &fresh("a")).await.is_none(), "only todo issues are dispatched");

    let x = make(h, "x", "todo", 2, "task", None).await; // 95
    let y = make(h, "y", "todo", 1, "monitor", None).await; // 110
    let z = make(h, "z", "todo", 0, "signal", None).await; // 60
    let w = make(h, "w", "todo", 4, "hypothesis", None).await; // 65
    let v = make(h, "v", "todo", 3, "plan", None).await; // 80
    let expected = [&y, &x, &v, &w, &z];

    h.clock.advance_millis(DAY / 4);
    let q = queue(h).await;
    check_queue(
        &q,
        &[(y.number, 110.0), (x.number, 95.0), (v.number, 80.0), (w.number, 65.0), (z.number, 60.0)],
        "five todo issues",
    );
    let yb = entry(&q, &y).breakdown;
    assert_eq!((yb.priority_weight, yb.goal_bonus, yb.type_bonus), (100, 0, 10));
    assert_eq!(yb.age_bonus, 0, "a quarter day is no whole day yet");
    assert_eq!(entry(&q, &y).todo_since, y.created_at, "created in todo: it entered todo when created");
    let zb = entry(&q, &z).breakdown;
    assert_eq!((zb.priority_weight, zb.type_bonus), (10, 50), "priority 0 weighs 10");

    h.clock.advance_millis(1_000);
    let t = now(h);
    let first = claim(h, &fresh("agent-7")).await.expect("a todo issue is eligible");
    assert!(!first.replayed);
    assert_eq!(first.issue.id, y.id, "the highest score wins");
    assert_eq!(first.issue.status, IssueStatus::InProgress, "the claimed issue is returned in progress");
    let s = &first.session;
    assert_eq!(s.issue_id, y.id);
    assert_eq!(s.agent, "agent-7");
    assert_eq!(s.claimed_at, t, "claimedAt is now");
    assert_eq!(s.lease_expires_at, t.plus_millis(TTL), "the lease runs ttl from now");
    assert_eq!((s.ended_at, s.outcome), (None, None));
    assert!(s.is_open());
    assert_eq!((&s.summary, s.tokens, s.cost_usd, s.duration_ms), (&None, None, None, None));
    assert_eq!(status_of(h, &y.id).await, IssueStatus::InProgress);
    assert_eq!(&ok(h.store.get_session(&s.id).await), s, "the session reads back as returned");
    assert_eq!(ok(h.store.issue_sessions(&y.id).await), vec![s.clone()]);
    let evs = events_of(h, &y.id).await;
    let claimed = evs.iter().find(|e| e.kind == EventKind::Claimed).expect("a claimed event");
    assert_eq!(claimed.actor, "agent-7", "the claim is recorded as the claiming agent's");
    assert_eq!(claimed.data["sessionId"], json!(s.id));
    assert!(
        evs.iter().any(|e| e.kind == EventKind::StatusChanged
            && e.data == json!({ "from": "todo", "to": "in_progress" })
            && e.actor == "agent-7"),
        "the status change is recorded: {evs:#?}"
    );
    assert_eq!(queue_numbers(h).await, nums(&expected[1..]), "a claimed issue leaves the queue");

    let mut got = vec![first.issue.number];
    while let Some(n) = next_number(h, "agent-7").await {
        got.push(n);
        assert!(got.len() <= expected.len(), "claimed more issues than there are: {got:?}");
    }
    assert_eq!(got, nums(&expected), "claims come in score order");
    assert!(claim(h, &fresh("other")).await.is_none(), "everything is claimed");
    assert!(queue(h).await.is_empty());
    for i in expected {
        assert_eq!(status_of(h, &i.id).await, IssueStatus::InProgress);
    }
}

/// `A blocks B` and `B blocked_by A` both keep B from dispatch while A is live and not done or
/// canceled (whatever else its status, in_progress included); B is eligible again when A is
/// done, canceled or deleted, or the relation is deleted, and blocked again when A reopens.
pub async fn dispatch_blockers(h: &Harness) {
    let a = todo(h, "a", 4).await; // 45
    let b = todo(h, "b", 1).await; // 120, but blocked
    ok(h.store.create_relation(&a.id, input(json!({ "type": "blocks", "relatedIssueId": b.id })), &bot()).await);
    assert_eq!(queue_numbers(h).await, vec![a.number], "A blocks B keeps B out of the queue");
    let ex = ok(h.store.explain(&b.id).await);
    assert!(!ex.eligible);
    assert_eq!(ex.blockers.iter().map(|i| &i.id).collect::<Vec<_>>(), vec![&a.id]);

    assert_eq!(next_number(h, "x").await, Some(a.number), "the blocker is claimed, not the higher-scoring blocked B");
    assert_eq!(next_number(h, "x").await, None, "an in-progress blocker still blocks");

    set_status(h, &a.id, "done").await;
    assert_eq!(queue_numbers(h).await, vec![b.number], "a done blocker no longer blocks");
    assert!(ok(h.store.explain(&b.id).await).eligible);
    set_status(h, &a.id, "todo").await;
    assert_eq!(queue_numbers(h).await, vec![a.number], "a reopened blocker blocks again");
    set_status(h, &a.id, "canceled").await;
    assert_eq!(queue_numbers(h).await, vec![b.number], "a canceled blocker no longer blocks");
    set_status(h, &a.id, "todo").await;
    assert_eq!(queue_numbers(h).await, vec![a.number]);

    // The same edge from the other end.
    let c = todo(h, "c", 4).await;
    let d = todo(h, "d", 1).await;
    let rel = relate(h, &d, "blocked_by", &c).await;
    assert_eq!(queue_numbers(h).await, vec![a.number, c.number], "B blocked_by A keeps B out too");
    ok(h.store.delete_relation(&rel, &human()).await);
    assert_eq!(queue_numbers(h).await, vec![d.number, a.number, c.number], "deleting the relation unblocks");

    // A blocker's every open status blocks.
    let e = make(h, "e", "backlog", 4, "task", None).await;
    relate(h, &e, "blocks", &d).await;
    for status in ["backlog", "triage", "in_progress", "todo"] {
        set_status(h, &e.id, status).await;
        let q = queue_numbers(h).await;
        assert!(!q.contains(&d.number), "a blocker in {status} blocks: {q:?}");
        let ex = ok(h.store.explain(&d.id).await);
        assert!(!ex.eligible && ex.blockers.iter().any(|i| i.id == e.id), "{status}: {ex:?}");
    }
    ok(h.store.delete_issue(&e.id, &human()).await);
    assert!(queue_numbers(h).await.contains(&d.number), "a deleted blocker no longer blocks");

    // Several blockers: eligible only once the last is closed.
    let f = todo(h, "f", 4).await;
    let g = make(h, "g", "backlog", 4, "task", None).await;
    relate(h, &f, "blocks", &d).await;
    relate(h, &d, "blocked_by", &g).await;
    assert!(!queue_numbers(h).await.contains(&d.number));
    set_status(h, &f.id, "done").await;
    assert!(!queue_numbers(h).await.contains(&d.number), "one blocker left");
    assert_eq!(ok(h.store.explain(&d.id).await).blockers.iter().map(|i| &i.id).collect::<Vec<_>>(), vec![&g.id]);
    set_status(h, &g.id, "canceled").await;
    assert!(queue_numbers(h).await.contains(&d.number));

    // B blocked while it was not in todo is still blocked when it enters todo.
    let blocker = todo(h, "blocker", 4).await;
    let later = make(h, "later", "backlog", 1, "signal", None).await;
    relate(h, &blocker, "blocks", &later).await;
    set_status(h, &later.id, "todo").await;
    assert!(!queue_numbers(h).await.contains(&later.number), "blocked on entering todo");
    set_status(h, &blocker.id, "done").await;
    assert!(queue_numbers(h).await.contains(&later.number));

    // A related or duplicate relation blocks nothing.
    let r1 = todo(h, "r1", 4).await;
    let r2 = todo(h, "r2", 4).await;
    relate(h, &r1, "related", &r2).await;
    relate(h, &r1, "duplicate", &r2).await;
    let q = queue_numbers(h).await;
    assert!(q.contains(&r1.number) && q.contains(&r2.number), "{q:?}");

    // Claims agree with the queue.
    let expected = queue_numbers(h).await;
    let mut got = Vec::new();
    while let Some(n) = next_number(h, "x").await {
        got.push(n);
    }
    assert_eq!(got, expected);
}

/// An issue whose live project has a live active goal (goal.projectId = project, or
/// project.goalId = goal) gets +20; the bonus goes with the goal's achievement or deletion,
/// the project's deletion or unlinking, and comes with a move into such a project.
pub async fn dispatch_goal_bonus(h: &Harness) {
    let p = ok(h.store.create_project(input(json!({ "name": "p" }))).await);
    let gp = ok(h.store.create_goal(input(json!({ "title": "gp", "projectId": p.id }))).await);
    let gq = ok(h.store.create_goal(input(json!({ "title": "gq" }))).await);
    let q = ok(h.store.create_project(input(json!({ "name": "q", "goalId": gq.id }))).await);
    let r = ok(h.store.create_project(input(json!({ "name": "r" }))).await);

    // Same priority, type and todo entry; the loose issues have the lower numbers.
    let c = make(h, "c", "todo", 3, "task", None).await;
    let d = make(h, "d", "todo", 3, "task", Some(&r.id)).await;
    let a = make(h, "a", "todo", 3, "task", Some(&p.id)).await;
    let b = make(h, "b", "todo", 3, "task", Some(&q.id)).await;
    let (na, nb, nc, nd) = (a.number, b.number, c.number, d.number);

    check_goal(h, "goal.projectId and project.goalId both count", [na, nb, nc, nd], &[na, nb]).await;
    let ex = ok(h.store.explain(&a.id).await);
    assert_eq!(ex.breakdown.map(|b| b.goal_bonus), Some(20), "explain shows the bonus too");

    ok(h.store.update_goal(&gp.id, input(json!({ "status": "achieved" }))).await);
    check_goal(h, "an achieved goal gives nothing", [nb, nc, nd, na], &[nb]).await;
    ok(h.store.update_goal(&gp.id, input(json!({ "status": "active" }))).await);
    check_goal(h, "active again", [na, nb, nc, nd], &[na, nb]).await;
    ok(h.store.update_goal(&gq.id, input(json!({ "status": "abandoned" }))).await);
    check_goal(h, "an abandoned goal gives nothing", [na, nc, nd, nb], &[na]).await;
    ok(h.store.update_goal(&gq.id, input(json!({ "status": "active" }))).await);
    check_goal(h, "active again (project.goalId)", [na, nb, nc, nd], &[na, nb]).await;

    ok(h.store.delete_goal(&gq.id).await);
    check_goal(h, "a deleted goal (project.goalId) gives nothing", [na, nc, nd, nb], &[na]).await;
    ok(h.store.delete_goal(&gp.id).await);
    check_goal(h, "a deleted goal (goal.projectId) gives nothing", [nc, nd, na, nb], &[]).await;
    ok(h.store.create_goal(input(json!({ "title": "gp2", "projectId": p.id }))).await);
    check_goal(h, "a new active goal for the project", [na, nc, nd, nb], &[na]).await;

    let gr = ok(h.store.create_goal(input(json!({ "title": "gr" }))).await);
    ok(h.store.update_project(&r.id, input(json!({ "goalId": gr.id }))).await);
    check_goal(h, "a project linked to an active goal", [nd, na, nc, nb], &[na, nd]).await;
    ok(h.store.update_project(&r.id, input(json!({ "goalId": null }))).await);
    check_goal(h, "a project unlinked from its goal", [na, nc, nd, nb], &[na]).await;

    ok(h.store.delete_project(&p.id).await);
    check_goal(h, "a deleted project's goal gives nothing", [nc, nd, na, nb], &[]).await;

    let s = ok(h.store.create_project(input(json!({ "name": "s" }))).await);
    let gs = ok(h.store.create_goal(input(json!({ "title": "gs", "projectId": s.id }))).await);
    patch(h, &b.id, json!({ "projectId": s.id })).await;
    check_goal(h, "moved into a project with an active goal", [nb, nc, nd, na], &[nb]).await;
    ok(h.store.update_goal(&gs.id, input(json!({ "projectId": r.id }))).await);
    check_goal(h, "the goal moved to another project (goal.projectId)", [nd, nc, na, nb], &[nd]).await;
    patch(h, &c.id, json!({ "projectId": r.id })).await;
    check_goal(h, "moved in", [nc, nd, na, nb], &[nc, nd]).await;
    patch(h, &c.id, json!({ "projectId": null })).await;
    check_goal(h, "moved out", [nd, nc, na, nb], &[nd]).await;

    let mut got = Vec::new();
    while let Some(n) = next_number(h, "x").await {
        got.push(n);
    }
    assert_eq!(got, vec![nd, nc, na, nb], "claims follow the goal bonus");
}

/// The age bonus counts (continuously, in days) from when the issue last entered `todo`, not
/// from its creation; ties go to the older todo entry, then to the lower number.
pub async fn dispatch_age_counts_from_todo_entry(h: &Harness) {
    let old = make(h, "old", "backlog", 3, "task", None).await;
    h.clock.advance_millis(30 * DAY);
    set_status(h, &old.id, "todo").await;
    let t = now(h);
    let q = queue(h).await;
    let e = entry(&q, &old);
    assert_eq!(e.todo_since, t, "todoSince is when it entered todo");
    assert_eq!(e.breakdown.age_bonus, 0, "age bonus right after entering todo (created 30 days ago)");
    assert_eq!(e.score, 70, "score right after entering todo");

    h.clock.advance_millis(2 * DAY);
    let q = queue(h).await;
    let e = entry(&q, &old);
    assert_eq!(e.breakdown.age_bonus, 2, "two days in todo");
    assert_eq!(e.score, 72, "score after two days");
    h.clock.advance_millis(DAY / 2);
    assert_eq!(entry(&queue(h).await, &old).breakdown.age_bonus, 2, "shown in whole days, floored");

    // Edits that keep it in todo keep its age; leaving todo and coming back resets it.
    patch(h, &old.id, json!({ "title": "old, renamed", "priority": 3 })).await;
    let e = queue(h).await.into_iter().find(|e| e.issue.id == old.id).unwrap();
    assert_eq!(e.todo_since, t, "staying in todo keeps todoSince");
    set_status(h, &old.id, "backlog").await;
    assert!(queue(h).await.is_empty());
    h.clock.advance_millis(DAY);
    set_status(h, &old.id, "todo").await;
    let e = queue(h).await.into_iter().find(|e| e.issue.id == old.id).unwrap();
    assert_eq!((e.todo_since, e.breakdown.age_bonus), (now(h), 0), "re-entering todo restarts the age");
    set_status(h, &old.id, "done").await;

    // Equal scores: the older todo entry first, even with a higher number.
    let first = make(h, "plan, lower number", "backlog", 3, "plan", None).await; // base 80
    let second = make(h, "task, higher number", "backlog", 3, "task", None).await; // base 70
    set_status(h, &second.id, "todo").await;
    h.clock.advance_millis(10 * DAY);
    set_status(h, &first.id, "todo").await;
    h.clock.advance_millis(DAY / 3);
    let q = queue(h).await;
    assert_eq!(q.iter().map(|e| e.issue.number).collect::<Vec<_>>(), vec![second.number, first.number]);
    assert_eq!(q[0].score, q[1].score, "10 days of age make up for 10 points of type");

    // Equal scores and todo entries: the lower number first.
    let x = make(h, "x", "todo", 2, "signal", None).await;
    let y = make(h, "y", "todo", 2, "signal", None).await;
    let z = make(h, "z", "todo", 2, "signal", None).await;
    assert_eq!(queue_numbers(h).await, vec![x.number, y.number, z.number, second.number, first.number]);
    let mut got = Vec::new();
    while let Some(n) = next_number(h, "x").await {
        got.push(n);
    }
    assert_eq!(got, vec![x.number, y.number, z.number, second.number, first.number]);

    // Released issues re-enter todo now, and age from there.
    h.clock.advance_millis(DAY);
    let back =
        ok(h.store.list_sessions(&SessionFilter { issue_id: Some(x.id.clone()), ..Default::default() }, all()).await);
    let s = &back.data[0];
    ok(h.store.end_session(&s.id, SessionOutcome::Released, SessionReport::default(), &bot()).await);
    let e = queue(h).await.into_iter().find(|e| e.issue.id == x.id).expect("a released issue is back in the queue");
    assert_eq!((e.todo_since, e.breakdown.age_bonus), (now(h), 0));
}

/// `ClaimRequest.project_id` only claims issues of that project (and so does the queue's filter).
pub async fn dispatch_project_filter(h: &Harness) {
    let p1 = ok(h.store.create_project(input(json!({ "name": "p1" }))).await);
    let p2 = ok(h.store.create_project(input(json!({ "name": "p2" }))).await);
    let loose = make(h, "loose", "todo", 1, "signal", None).await;
    let a1 = make(h, "a1", "todo", 4, "task", Some(&p1.id)).await;
    let a2 = make(h, "a2", "todo", 3, "task", Some(&p1.id)).await;
    let b1 = make(h, "b1", "todo", 1, "task", Some(&p2.id)).await;
    make(h, "p1 backlog", "backlog", 1, "signal", Some(&p1.id)).await;

    let in_p1 = queue_of(h, Some(&p1.id)).await;
    assert_eq!(in_p1.iter().map(|e| e.issue.number).collect::<Vec<_>>(), vec![a2.number, a1.number]);
    assert_eq!(queue_numbers(h).await, vec![loose.number, b1.number, a2.number, a1.number]);

    let mut req = fresh("x");
    req.project_id = Some(p1.id.clone());
    let c = claim(h, &req).await.expect("p1 has eligible issues");
    assert_eq!(c.issue.id, a2.id, "the best issue of the project, not of the whole queue");
    for expected in [Some(a1.number), None] {
        let mut req = fresh("x");
        req.project_id = Some(p1.id.clone());
        assert_eq!(claim(h, &req).await.map(|c| c.issue.number), expected, "claims stay inside p1");
    }
    let mut req = fresh("y");
    req.project_id = Some(p2.id.clone());
    assert_eq!(claim(h, &req).await.map(|c| c.issue.number), Some(b1.number));
    let mut req = fresh("y");
    req.project_id = Some(p2.id.clone());
    assert!(claim(h, &req).await.is_none());
    assert_eq!(next_number(h, "z").await, Some(loose.number), "without a project, anything");
    assert_eq!(next_number(h, "z").await, None);
}

/// The queue pages through one global order: pages concatenated equal the whole list, `total`
/// is the number of eligible issues on every page, and scores never increase.
pub async fn dispatch_queue_is_global_order(h: &Harness) {
    let mut issues: Vec<Model> = Vec::new();
    let statuses = [IssueStatus::Todo, IssueStatus::Todo, IssueStatus::Todo, IssueStatus::Backlog, IssueStatus::Done];
    for i in 0..30usize {
        h.clock.advance_millis([0, DAY, 3 * DAY / 2, 7_000][i % 4]);
        let priority = (i * 7 % 5) as i64;
        let ty = TYPES[i * 3 % 5];
        let status = statuses[i * 11 % 5];
        let issue = make(h, &format!("i{i}"), status.as_str(), priority, ty, None).await;
        issues.push(Model {
            id: issue.id,
            number: issue.number,
            priority,
            ty,
            status,
            project: None,
            todo_since: now(h).millis(),
            deleted: false,
            blockers: vec![],
        });
    }
    // A few blocked ones.
    for (blocker, blocked) in [(3usize, 0usize), (10, 1), (4, 2), (7, 5), (13, 11)] {
        let (a, b) = (issues[blocker].id.clone(), issues[blocked].id.clone());
        ok(h.store.create_relation(&b, input(json!({ "type": "blocked_by", "relatedIssueId": a })), &bot()).await);
        issues[blocked].blockers.push(blocker);
    }
    h.clock.advance_millis(DAY / 5);
    let expected = expected_order(&issues, &[], now(h).millis());
    assert!(expected.len() >= 10, "the fixture should leave plenty eligible: {expected:?}");

    let full = queue(h).await;
    check_queue(&full, &expected, "the whole queue");
    for w in full.windows(2) {
        assert!(w[0].score >= w[1].score, "scores must not increase: {} then {}", w[0].score, w[1].score);
    }
    let mut paged = Vec::new();
    for offset in (0..).step_by(5) {
        let p = ok(h.store.dispatch_queue(None, page(5, offset)).await);
        assert_eq!(p.total as usize, expected.len(), "total is the eligible count on every page (offset {offset})");
        if p.data.is_empty() {
            break;
        }
        assert!(p.data.len() <= 5);
        paged.extend(p.data);
    }
    assert_eq!(paged, full, "pages concatenated equal the whole queue");

    // Positions in explain agree with the queue.
    for (i, e) in full.iter().enumerate() {
        let ex = ok(h.store.explain(&e.issue.id).await);
        assert_eq!(ex.position, Some(i as u64 + 1), "position of #{}", e.issue.number);
    }
}

/// Property: for random backlogs, successive claims return exactly the eligible issues in the
/// order the score formula gives, then `None`.
pub async fn dispatch_property_claim_order_equals_score_sort(h: &Harness) {
    for seed in 1..=25u64 {
        let _guard = SeedGuard(seed);
        property_round(h, seed).await;
    }
}

async fn property_round(h: &Harness, seed: u64) {
    let mut rng = Rng::new(seed);
    assert!(claim(h, &fresh("probe")).await.is_none(), "seed {seed}: the previous round left eligible issues");

    // Three projects; one or two with an active goal, linked either way.
    let mut order = [0usize, 1, 2];
    rng.shuffle(&mut order);
    let n_active = 1 + rng.below(2) as usize;
    let mut goal = [false; 3];
    let mut projects = vec![String::new(); 3];
    for (rank, &i) in order.iter().enumerate() {
        let name = format!("s{seed}-p{i}");
        let active = rank < n_active;
        goal[i] = active;
        let kind = rng.below(3);
        projects[i] = if active && rng.chance(50) {
            let p = ok(h.store.create_project(input(json!({ "name": name }))).await);
            ok(h.store.create_goal(input(json!({ "title": "g", "projectId": p.id }))).await);
            p.id
        } else if active {
            let g = ok(h.store.create_goal(input(json!({ "title": "g" }))).await);
            ok(h.store.create_project(input(json!({ "name": name, "goalId": g.id }))).await).id
        } else if kind == 0 {
            ok(h.store.create_project(input(json!({ "name": name }))).await).id
        } else if kind == 1 {
            let p = ok(h.store.create_project(input(json!({ "name": name }))).await);
            ok(h.store.create_goal(input(json!({ "title": "g", "projectId": p.id, "status": "achieved" }))).await);
            p.id
        } else {
            let g = ok(h.store.create_goal(input(json!({ "title": "g", "status": "abandoned" }))).await);
            ok(h.store.create_project(input(json!({ "name": name, "goalId": g.id }))).await).id
        };
    }

    // The backlog. Even seeds draw from few priorities and types, so that scores tie often.
    let narrow = seed.is_multiple_of(2);
    let n = 20 + rng.below(21) as usize;
    let mut issues: Vec<Model> = Vec::with_capacity(n);
    let mut late = Vec::new();
    for i in 0..n {
        h.clock.advance_millis(if narrow { rng.coarse_step() } else { rng.step() });
        let (priority, ty) = if narrow {
            (rng.pick(&[2, 3]), rng.pick(&["task", "plan"]))
        } else {
            (rng.below(5) as i64, rng.pick(&TYPES))
        };
        let project = if rng.chance(75) { Some(rng.below(3) as usize) } else { None };
        let roll = rng.below(100);
        let status = match roll {
            0..55 => IssueStatus::Todo,
            55..85 => IssueStatus::Backlog,
            _ => IssueStatus::Done,
        };
        if (55..72).contains(&roll) {
            late.push(i);
        }
        let issue =
            make(h, &format!("s{seed}-{i}"), status.as_str(), priority, ty, project.map(|p| projects[p].as_str()))
                .await;
        issues.push(Model {
            id: issue.id,
            number: issue.number,
            priority,
            ty,
            status,
            project,
            todo_since: now(h).millis(),
            deleted: false,
            blockers: vec![],
        });
    }

    // Blockers, named from either end.
    for b in 0..n {
        if !rng.chance(30) {
            continue;
        }
        for _ in 0..1 + rng.below(2) {
            let a = rng.below(n as u64) as usize;
            // No loops: the store refuses a block when `b` already blocks `a`.
            if a == b || issues[b].blockers.contains(&a) || blocks(&issues, b, a) {
                continue;
            }
            let (subject, kind, related) = if rng.chance(50) {
                (&issues[a].id, "blocks", &issues[b].id)
            } else {
                (&issues[b].id, "blocked_by", &issues[a].id)
            };
            let body = input(json!({ "type": kind, "relatedIssueId": related }));
            ok(h.store.create_relation(subject, body, &bot()).await);
            issues[b].blockers.push(a);
        }
    }

    // Some backlog issues enter todo later, with their own entry times.
    rng.shuffle(&mut late);
    for i in late {
        h.clock.advance_millis(if narrow { rng.coarse_step() } else { rng.step() });
        set_status(h, &issues[i].id, "todo").await;
        issues[i].status = IssueStatus::Todo;
        issues[i].todo_since = now(h).millis();
    }

    // Edits after the fact: priority, type, project, reopening, deletion.
    for issue in issues.iter_mut().take(n) {
        if rng.chance(15) {
            h.clock.advance_millis(if narrow { rng.coarse_step() } else { rng.step() });
            let p = rng.below(5) as i64;
            patch(h, &issue.id, json!({ "priority": p })).await;
            issue.priority = p;
        }
        if rng.chance(10) {
            let ty = rng.pick(&TYPES);
            patch(h, &issue.id, json!({ "type": ty })).await;
            issue.ty = ty;
        }
        if rng.chance(10) {
            let project = if rng.chance(25) { None } else { Some(rng.below(3) as usize) };
            patch(h, &issue.id, json!({ "projectId": project.map(|p| projects[p].clone()) })).await;
            issue.project = project;
        }
        if issue.status == IssueStatus::Done && rng.chance(30) {
            h.clock.advance_millis(if narrow { rng.coarse_step() } else { rng.step() });
            set_status(h, &issue.id, "todo").await;
            issue.status = IssueStatus::Todo;
            issue.todo_since = now(h).millis();
        }
        if rng.chance(5) {
            ok(h.store.delete_issue(&issue.id, &human()).await);
            issue.deleted = true;
        }
    }

    // The clock stands still from here on.
    h.clock.advance_millis(rng.below(5 * DAY as u64) as i64);
    let expected = expected_order(&issues, &goal, now(h).millis());
    check_queue(&queue(h).await, &expected, &format!("seed {seed}"));

    let mut got = Vec::new();
    for k in 0..=n {
        match claim(h, &fresh(&format!("s{seed}-agent-{k}"))).await {
            Some(c) => {
                assert!(!c.replayed, "seed {seed}");
                assert_eq!(c.issue.status, IssueStatus::InProgress, "seed {seed}");
                got.push(c.issue.number);
            }
            None => break,
        }
    }
    let want: Vec<i64> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(got, want, "seed {seed}: claim order (expected scores {expected:?})");
    assert!(claim(h, &fresh("probe")).await.is_none(), "seed {seed}: nothing left after the expected claims");

    // Clear the store for the next round: deleted issues take no further part.
    for m in issues.iter().filter(|m| !m.deleted) {
        ok(h.store.delete_issue(&m.id, &human()).await);
    }
}

/// Only an idempotency key replays a claim: the same key gets the same claim back (nothing else
/// claimed). Without a key every request is a new claim, even from the same agent at once
/// (agents sharing a name must never be sent to one issue); another key, another agent, or a
/// finished claim get new issues.
pub async fn dispatch_idempotent_retry(h: &Harness) {
    // Scores 120, 95, 70, 45, 40, 30, 20: creation order is score order.
    let mut issues = Vec::new();
    for p in [1, 2, 3, 4] {
        issues.push(todo(h, &format!("p{p}"), p).await);
    }
    issues.push(make(h, "plan", "todo", 0, "plan", None).await);
    issues.push(todo(h, "p0", 0).await);
    issues.push(make(h, "monitor", "todo", 0, "monitor", None).await);
    let order: Vec<i64> = issues.iter().map(|i| i.number).collect();
    assert_eq!(queue_numbers(h).await, order, "fixture: creation order is score order");

    let mut with_key = keyless("a1");
    with_key.idempotency_key = Some("abc".into());
    let first = claim(h, &with_key).await.unwrap();
    assert!(!first.replayed);
    assert_eq!(first.issue.number, order[0]);
    h.clock.advance_millis(30_000);
    let again = claim(h, &with_key).await.unwrap();
    assert!(again.replayed, "the same key is a retry");
    assert_eq!(again.issue.id, first.issue.id);
    assert_eq!(again.session, first.session, "the same session");
    assert_eq!(queue_numbers(h).await, order[1..], "a replay claims nothing more");
    assert_eq!(sessions(h, SessionFilter { agent: Some("a1".into()), ..Default::default() }).await.len(), 1);

    let mut other_key = with_key.clone();
    other_key.idempotency_key = Some("def".into());
    let second = claim(h, &other_key).await.unwrap();
    assert!(!second.replayed, "another key is another request");
    assert_eq!(second.issue.number, order[1]);

    // Without a key: the same agent asking again at once gets another issue.
    let req = keyless("a2");
    let c = claim(h, &req).await.unwrap();
    assert!(!c.replayed);
    assert_eq!(c.issue.number, order[2]);
    let r = claim(h, &req).await.unwrap();
    assert!(!r.replayed, "without a key, no request is a retry");
    assert_eq!(r.issue.number, order[3]);
    assert!(ok(h.store.get_session(&c.session.id).await).is_open(), "the earlier claim is untouched by the new one");

    let other_agent = claim(h, &keyless("a3")).await.unwrap();
    assert!(!other_agent.replayed, "another agent's request is its own");
    assert_eq!(other_agent.issue.number, order[4]);

    h.clock.advance_millis(1_000);
    ok(h.store.update_issue(&c.issue.id, input(json!({ "status": "done" })), &Actor::agent("a2")).await);
    let after_done = claim(h, &req).await.unwrap();
    assert!(!after_done.replayed, "a finished claim is not handed back");
    assert_eq!(after_done.issue.number, order[5]);

    // The keyed retry still answers with its claim, and still claims nothing more.
    let again = claim(h, &with_key).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.session.id, first.session.id);
    assert_eq!(queue_numbers(h).await, order[6..]);
    let all_sessions = sessions(h, SessionFilter::default()).await;
    assert_eq!(all_sessions.len(), 6, "six claims, six sessions");
}

/// A lease runs out `ttl` after the claim or the last heartbeat; `expire_leases` then ends the
/// session as `expired` exactly once and puts the issue back in `todo`, recorded as "loop";
/// the expired session can be neither renewed nor ended.
pub async fn dispatch_lease_expiry(h: &Harness) {
    let x = todo(h, "x", 1).await;
    let y = todo(h, "y", 2).await;
    h.clock.advance_millis(1_000);
    let t0 = now(h);
    let cx = claim(h, &fresh("a1")).await.unwrap();
    assert_eq!(cx.issue.id, x.id);
    let mut long = fresh("a2");
    long.lease_ttl_ms = 600_000;
    let cy = claim(h, &long).await.unwrap();
    assert_eq!(cy.issue.id, y.id);
    assert_eq!(cy.session.lease_expires_at, t0.plus_millis(600_000));

    h.clock.advance_millis(59_000);
    assert_eq!(ok(h.store.expire_leases().await), vec![], "no lease has run out yet");
    let hb = ok(h.store.heartbeat(&cx.session.id, 60_000).await);
    assert_eq!(hb.lease_expires_at, now(h).plus_millis(60_000), "a heartbeat renews the lease from now");
    assert_eq!((hb.claimed_at, hb.ended_at, hb.outcome), (t0, None, None));
    assert_eq!(hb.id, cx.session.id);
    assert_eq!(ok(h.store.get_session(&cx.session.id).await), hb);

    h.clock.advance_millis(2_000); // past the original lease
    assert_eq!(ok(h.store.expire_leases().await), vec![], "the heartbeat extended the lease");
    assert_eq!(status_of(h, &x.id).await, IssueStatus::InProgress);

    h.clock.advance_millis(59_000); // past the renewed lease
    let t1 = now(h);
    let expired = ok(h.store.expire_leases().await);
    assert_eq!(expired.len(), 1, "only the run-out lease expires: {expired:#?}");
    let e = &expired[0];
    assert_eq!(e.id, cx.session.id);
    assert_eq!((e.outcome, e.ended_at), (Some(SessionOutcome::Expired), Some(t1)));
    assert!(!e.is_open());
    assert_eq!(&ok(h.store.get_session(&e.id).await), e);
    assert_eq!(status_of(h, &x.id).await, IssueStatus::Todo, "the issue goes back to todo");
    assert_eq!(status_of(h, &y.id).await, IssueStatus::InProgress);
    assert!(ok(h.store.get_session(&cy.session.id).await).is_open());
    let q = queue(h).await;
    assert_eq!(q.iter().map(|e| e.issue.number).collect::<Vec<_>>(), vec![x.number]);
    assert_eq!((q[0].todo_since, q[0].breakdown.age_bonus), (t1, 0), "it re-entered todo at expiry");

    assert_eq!(ok(h.store.expire_leases().await), vec![], "a session expires once");
    expect_conflict(h.store.heartbeat(&e.id, 60_000).await, "session_ended");
    expect_conflict(
        h.store.end_session(&e.id, SessionOutcome::Released, SessionReport::default(), &bot()).await,
        "session_ended",
    );
    expect_not_found(h.store.heartbeat("no-such-session", 60_000).await);

    let evs = events_of(h, &x.id).await;
    let pos = |kind: EventKind, pred: &dyn Fn(&IssueEvent) -> bool| {
        evs.iter().position(|e| e.kind == kind && pred(e)).unwrap_or_else(|| panic!("no {kind} event in {evs:#?}"))
    };
    let claimed = pos(EventKind::Claimed, &|e| e.data["sessionId"] == json!(cx.session.id));
    assert_eq!(evs[claimed].actor, "a1");
    let ended = pos(EventKind::SessionEnded, &|_| true);
    assert_eq!(evs[ended].actor, "loop", "lease expiry is Loop's doing");
    assert_eq!(evs[ended].data, json!({ "sessionId": cx.session.id, "outcome": "expired" }));
    assert_eq!(evs[ended].created_at, t1);
    let back = pos(EventKind::StatusChanged, &|e| e.data == json!({ "from": "in_progress", "to": "todo" }));
    assert_eq!(evs[back].actor, "loop");
    assert!(claimed < ended && claimed < back, "{evs:#?}");

    // The issue can be claimed again, under a new session.
    let again = claim(h, &fresh("a3")).await.unwrap();
    assert_eq!(again.issue.id, x.id);
    assert_ne!(again.session.id, cx.session.id);
    let history = ok(h.store.issue_sessions(&x.id).await);
    assert_eq!(history.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec![e.id.as_str(), &again.session.id]);
}

/// `end_session` (released or failed) records the agent's report, ends the session and returns
/// the issue to `todo`; a second end is a `session_ended` conflict. Sessions list by issue
/// (oldest first) and filter by issue, agent, outcome and openness.
pub async fn dispatch_release_and_fail(h: &Harness) {
    let x = todo(h, "x", 1).await;
    let y = todo(h, "y", 4).await;
    let s1 = claim(h, &fresh("a")).await.unwrap().session;
    assert_eq!(s1.issue_id, x.id);

    h.clock.advance_millis(5_000);
    let t1 = now(h);
    let r = report(json!({ "summary": "gave up", "tokens": 1200, "costUsd": 0.25, "durationMs": 5000 }));
    let ended = ok(h.store.end_session(&s1.id, SessionOutcome::Released, r, &Actor::agent("a")).await);
    assert_eq!(ended.id, s1.id);
    assert_eq!((ended.outcome, ended.ended_at), (Some(SessionOutcome::Released), Some(t1)));
    assert_eq!(ended.summary.as_deref(), Some("gave up"));
    assert_eq!((ended.tokens, ended.cost_usd, ended.duration_ms), (Some(1200), Some(0.25), Some(5000)));
    assert_eq!(
        (ended.claimed_at, ended.lease_expires_at, &ended.agent),
        (s1.claimed_at, s1.lease_expires_at, &s1.agent)
    );
    assert_eq!(ok(h.store.get_session(&s1.id).await), ended);
    assert_eq!(status_of(h, &x.id).await, IssueStatus::Todo, "a released issue goes back to todo");
    let evs = events_of(h, &x.id).await;
    let last_two: Vec<(EventKind, &str, &Value)> =
        evs[evs.len() - 2..].iter().map(|e| (e.kind, e.actor.as_str(), &e.data)).collect();
    assert!(
        last_two.contains(&(EventKind::SessionEnded, "a", &json!({ "sessionId": s1.id, "outcome": "released" })))
            && last_two.contains(&(EventKind::StatusChanged, "a", &json!({ "from": "in_progress", "to": "todo" }))),
        "{evs:#?}"
    );

    for outcome in [SessionOutcome::Released, SessionOutcome::Failed] {
        expect_conflict(h.store.end_session(&s1.id, outcome, SessionReport::default(), &bot()).await, "session_ended");
    }
    expect_not_found(
        h.store.end_session("no-such-session", SessionOutcome::Failed, SessionReport::default(), &bot()).await,
    );

    h.clock.advance_millis(1_000);
    let s2 = claim(h, &fresh("b")).await.unwrap().session;
    assert_eq!(s2.issue_id, x.id, "the released issue is dispatched again");
    h.clock.advance_millis(1_000);
    let failed =
        ok(h.store.end_session(&s2.id, SessionOutcome::Failed, report(json!({ "summary": "boom" })), &bot()).await);
    assert_eq!((failed.outcome, failed.summary.as_deref()), (Some(SessionOutcome::Failed), Some("boom")));
    assert_eq!((failed.tokens, failed.cost_usd, failed.duration_ms), (None, None, None));
    assert_eq!(status_of(h, &x.id).await, IssueStatus::Todo, "a failed issue goes back to todo");
    expect_conflict(h.store.heartbeat(&s2.id, TTL).await, "session_ended");

    h.clock.advance_millis(1_000);
    let s3 = claim(h, &fresh("b")).await.unwrap().session;
    assert_eq!(s3.issue_id, x.id);
    h.clock.advance_millis(1_000);
    let s4 = claim(h, &fresh("a")).await.unwrap().session;
    assert_eq!(s4.issue_id, y.id);

    let history = ok(h.store.issue_sessions(&x.id).await);
    assert_eq!(
        history.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![s1.id.clone(), s2.id.clone(), s3.id.clone()]
    );
    assert_eq!((&history[0], &history[1]), (&ended, &failed));
    assert_eq!(ok(h.store.issue_sessions(&y.id).await), vec![s4.clone()]);
    assert_eq!(ok(h.store.issue_sessions(&x.number.to_string()).await).len(), 3, "issue_sessions takes a number too");
    expect_not_found(h.store.issue_sessions("no-such-issue").await);

    let f = |issue: Option<&Issue>, agent: Option<&str>, outcome: Option<SessionOutcome>, open: Option<bool>| {
        SessionFilter { issue_id: issue.map(|i| i.id.clone()), agent: agent.map(str::to_string), outcome, open }
    };
    assert_eq!(sessions(h, f(None, None, None, None)).await, ids(&[&s1, &s2, &s3, &s4]));
    assert_eq!(sessions(h, f(Some(&x), None, None, None)).await, ids(&[&s1, &s2, &s3]));
    assert_eq!(sessions(h, f(Some(&y), None, None, None)).await, ids(&[&s4]));
    assert_eq!(sessions(h, f(None, Some("a"), None, None)).await, ids(&[&s1, &s4]));
    assert_eq!(sessions(h, f(None, Some("b"), None, None)).await, ids(&[&s2, &s3]));
    assert_eq!(sessions(h, f(None, Some("nobody"), None, None)).await, ids(&[]));
    assert_eq!(sessions(h, f(None, None, Some(SessionOutcome::Released), None)).await, ids(&[&s1]));
    assert_eq!(sessions(h, f(None, None, Some(SessionOutcome::Failed), None)).await, ids(&[&s2]));
    assert_eq!(sessions(h, f(None, None, Some(SessionOutcome::Done), None)).await, ids(&[]));
    assert_eq!(sessions(h, f(None, None, None, Some(true))).await, ids(&[&s3, &s4]));
    assert_eq!(sessions(h, f(None, None, None, Some(false))).await, ids(&[&s1, &s2]));
    assert_eq!(sessions(h, f(Some(&x), Some("b"), None, Some(true))).await, ids(&[&s3]));
    assert_eq!(sessions(h, f(Some(&x), Some("a"), Some(SessionOutcome::Failed), None)).await, ids(&[]));
    let p = ok(h.store.list_sessions(&SessionFilter::default(), page(3, 0)).await);
    assert_eq!((p.data.len(), p.total), (3, 4), "sessions page, and total counts them all");
    let rest = ok(h.store.list_sessions(&SessionFilter::default(), page(3, 3)).await);
    let seen: BTreeSet<String> = p.data.iter().chain(&rest.data).map(|s| s.id.clone()).collect();
    assert_eq!(seen.len(), 4, "pages do not overlap");
}

/// Changing a claimed issue's status by hand closes its session: `done` and `canceled` as such
/// (with the issue's agentSummary as the summary), any other status as `released`; deleting the
/// issue closes it as `canceled`. Other edits leave the session open.
pub async fn dispatch_patch_closes_session(h: &Harness) {
    for i in 0..5 {
        todo(h, &format!("i{i}"), 1).await;
    }
    let c1 = claim(h, &fresh("a")).await.unwrap();
    h.clock.advance_millis(1_000);
    patch(h, &c1.issue.id, json!({ "title": "renamed", "priority": 2 })).await;
    assert!(ok(h.store.get_session(&c1.session.id).await).is_open(), "other edits keep the claim");

    h.clock.advance_millis(1_000);
    let done = ok(h
        .store
        .update_issue(&c1.issue.id, input(json!({ "status": "done", "agentSummary": "x" })), &Actor::agent("a"))
        .await);
    assert_eq!(done.status, IssueStatus::Done);
    let s = ok(h.store.get_session(&c1.session.id).await);
    assert_eq!((s.outcome, s.ended_at), (Some(SessionOutcome::Done), Some(now(h))));
    assert_eq!(s.summary.as_deref(), Some("x"), "the agent's summary goes on the session");
    let evs = events_of(h, &c1.issue.id).await;
    assert!(
        evs.iter()
            .any(|e| e.kind == EventKind::SessionEnded
                && e.data == json!({ "sessionId": c1.session.id, "outcome": "done" })),
        "{evs:#?}"
    );
    expect_conflict(h.store.heartbeat(&c1.session.id, TTL).await, "session_ended");

    let c2 = claim(h, &fresh("b")).await.unwrap();
    h.clock.advance_millis(1_000);
    set_status(h, &c2.issue.id, "todo").await;
    let s = ok(h.store.get_session(&c2.session.id).await);
    assert_eq!((s.outcome, s.ended_at), (Some(SessionOutcome::Released), Some(now(h))));
    assert!(queue_numbers(h).await.contains(&c2.issue.number), "back in todo, back in the queue");

    let c3 = claim(h, &fresh("c")).await.unwrap();
    set_status(h, &c3.issue.id, "canceled").await;
    let s = ok(h.store.get_session(&c3.session.id).await);
    assert_eq!(s.outcome, Some(SessionOutcome::Canceled));
    assert_eq!(s.summary, None, "no agentSummary, no summary");

    let c4 = claim(h, &fresh("d")).await.unwrap();
    set_status(h, &c4.issue.id, "backlog").await;
    assert_eq!(ok(h.store.get_session(&c4.session.id).await).outcome, Some(SessionOutcome::Released));

    let c5 = claim(h, &fresh("e")).await.unwrap();
    ok(h.store.delete_issue(&c5.issue.id, &human()).await);
    assert_eq!(ok(h.store.get_session(&c5.session.id).await).outcome, Some(SessionOutcome::Canceled));

    assert_eq!(sessions(h, SessionFilter { open: Some(true), ..Default::default() }).await, BTreeSet::new());
    assert_eq!(ok(h.store.expire_leases().await), vec![], "closed sessions never expire");
    h.clock.advance_millis(10 * TTL);
    assert_eq!(ok(h.store.expire_leases().await), vec![], "closed sessions never expire");
}

/// `claim_issue` claims one named issue if it is eligible, else `not_eligible` naming the
/// reasons (the blocker's number among them); `explain` says whether and why, with the
/// blockers, the lease of a claimed issue, and the score, breakdown and queue position of an
/// eligible one.
pub async fn dispatch_claim_issue(h: &Harness) {
    let a = todo(h, "a", 3).await;
    let b = todo(h, "b", 1).await;
    let c = make(h, "c", "backlog", 1, "task", None).await;
    let d = todo(h, "d", 2).await;
    let e = todo(h, "e", 4).await;
    relate(h, &a, "blocks", &b).await;
    h.clock.advance_millis(DAY);

    // Blocked.
    let msg = conflict_message(h.store.claim_issue(&b.id, &fresh("x"), Arc::new(NoTemplates)).await, "not_eligible");
    assert!(msg.contains(&format!("#{}", a.number)), "the message names the blocker: {msg}");
    let ex = ok(h.store.explain(&b.id).await);
    assert_eq!(ex.issue.id, b.id);
    assert!(!ex.eligible);
    assert!(ex.reasons.iter().any(|r| r.contains(&format!("#{}", a.number))), "{:?}", ex.reasons);
    assert_eq!(ex.blockers.iter().map(|i| &i.id).collect::<Vec<_>>(), vec![&a.id]);
    assert_eq!((ex.lease, ex.position), (None, None));
    assert_eq!(ex.score.expect("a todo issue has a score"), 121, "blocked b's score");

    // Not in todo.
    conflict_message(h.store.claim_issue(&c.id, &fresh("x"), Arc::new(NoTemplates)).await, "not_eligible");
    let ex = ok(h.store.explain(&c.id).await);
    assert!(!ex.eligible && !ex.reasons.is_empty());
    assert_eq!((ex.score, ex.breakdown, ex.position), (None, None, None), "no score outside todo");
    assert!(ex.blockers.is_empty());
    assert_eq!(status_of(h, &b.id).await, IssueStatus::Todo, "a refused claim changes nothing");
    assert_eq!(status_of(h, &c.id).await, IssueStatus::Backlog);
    assert_eq!(sessions(h, SessionFilter::default()).await.len(), 0, "a refused claim opens no session");

    // Eligible: score, breakdown, position.
    assert_eq!(queue_numbers(h).await, vec![d.number, a.number, e.number]);
    for (issue, pos, score) in [(&d, 1, 96.0), (&a, 2, 71.0), (&e, 3, 46.0)] {
        let ex = ok(h.store.explain(&issue.id).await);
        assert!(ex.eligible && ex.reasons.is_empty() && ex.blockers.is_empty(), "{ex:?}");
        assert_eq!((ex.position, &ex.lease), (Some(pos), &None), "#{}", issue.number);
        close(ex.score.unwrap() as f64, score, "explain score");
        let bd = ex.breakdown.unwrap();
        assert_eq!((bd.type_bonus, bd.goal_bonus), (20, 0));
        assert_eq!(bd.age_bonus, 1, "one day in todo");
    }

    // Claim one by key (number), not the head of the queue.
    let t = now(h);
    let claimed = ok(h.store.claim_issue(&a.number.to_string(), &fresh("x"), Arc::new(NoTemplates)).await);
    assert!(!claimed.replayed);
    assert_eq!(claimed.issue.id, a.id);
    assert_eq!(claimed.issue.status, IssueStatus::InProgress);
    assert_eq!((claimed.session.agent.as_str(), claimed.session.claimed_at), ("x", t));
    assert_eq!(claimed.session.lease_expires_at, t.plus_millis(TTL));
    assert!(claimed.session.is_open());
    assert_eq!(queue_numbers(h).await, vec![d.number, e.number]);
    assert_eq!(ok(h.store.explain(&e.id).await).position, Some(2));

    let msg = conflict_message(h.store.claim_issue(&a.id, &fresh("y"), Arc::new(NoTemplates)).await, "not_eligible");
    assert!(!msg.is_empty());
    let ex = ok(h.store.explain(&a.id).await);
    assert!(!ex.eligible);
    assert_eq!(ex.lease.as_ref(), Some(&claimed.session), "explain shows who holds it");
    assert!(ex.reasons.iter().any(|r| r.contains("x")), "{:?}", ex.reasons);
    assert_eq!((ex.score, ex.position), (None, None));
    assert!(!ok(h.store.explain(&b.id).await).eligible, "an in-progress blocker still blocks");

    expect_not_found(h.store.claim_issue("no-such-issue", &fresh("x"), Arc::new(NoTemplates)).await);
    expect_not_found(h.store.explain("no-such-issue").await);
    ok(h.store.delete_issue(&e.id, &human()).await);
    expect_not_found(h.store.claim_issue(&e.id, &fresh("x"), Arc::new(NoTemplates)).await);
    expect_not_found(h.store.explain(&e.id).await);

    // Done blocker: b is claimable by name.
    set_status(h, &a.id, "done").await;
    let cb = ok(h.store.claim_issue(&b.id, &fresh("z"), Arc::new(NoTemplates)).await);
    assert_eq!(cb.issue.id, b.id);
    assert_eq!(queue_numbers(h).await, vec![d.number]);
}

/// Sixteen claimers racing over 200 issues: every issue is claimed exactly once.
pub async fn dispatch_concurrent_claims_are_exclusive(h: &Harness) {
    const ISSUES: usize = 200;
    for i in 0..ISSUES {
        make(h, &format!("i{i}"), "todo", (i % 5) as i64, TYPES[i % 5], None).await;
    }
    let mut tasks = JoinSet::new();
    for t in 0..16 {
        let store = h.store.clone();
        tasks.spawn(async move {
            let mut got: Vec<(String, String)> = Vec::new();
            loop {
                match store.claim_next(&fresh(&format!("racer-{t}")), Arc::new(NoTemplates)).await {
                    Ok(Some(c)) => {
                        assert!(!c.replayed);
                        got.push((c.issue.id, c.session.id));
                    }
                    Ok(None) => break,
                    Err(e) => panic!("racer {t}: claim failed: {e:?}"),
                }
            }
            got
        });
    }
    let mut per_issue: HashMap<String, usize> = HashMap::new();
    let mut session_ids = BTreeSet::new();
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        for (issue, session) in r.expect("a racer panicked") {
            *per_issue.entry(issue).or_default() += 1;
            session_ids.insert(session);
            total += 1;
        }
    }
    assert_eq!(total, ISSUES, "every issue claimed, none twice");
    assert_eq!(per_issue.len(), ISSUES);
    assert!(per_issue.values().all(|&n| n == 1), "an issue was claimed twice");
    assert_eq!(session_ids.len(), ISSUES);
    assert!(claim(h, &fresh("late")).await.is_none());
    let open = ok(h.store.list_sessions(&SessionFilter { open: Some(true), ..Default::default() }, page(1, 0)).await);
    assert_eq!(open.total, ISSUES as u64);
    for id in per_issue.keys().take(20) {
        assert_eq!(status_of(h, id).await, IssueStatus::InProgress);
        assert_eq!(ok(h.store.issue_sessions(id).await).len(), 1);
    }
}

/// `claim_issue` takes the same `ClaimRequest` as `claim_next`, and its idempotency key means
/// the same: a retry (same agent, same key) gets the claim back, replayed, instead of a
/// `not_eligible` conflict against its own claim.
pub async fn dispatch_claim_issue_retry_is_replayed(h: &Harness) {
    let a = todo(h, "a", 1).await;
    let mut req = fresh("x");
    req.idempotency_key = Some("retry-me".into());
    let first = ok(h.store.claim_issue(&a.id, &req, Arc::new(NoTemplates)).await);
    assert!(!first.replayed);
    assert_eq!(first.issue.id, a.id);

    h.clock.advance_millis(2_000);
    let again = ok(h.store.claim_issue(&a.id, &req, Arc::new(NoTemplates)).await);
    assert!(again.replayed, "the same key is a retry");
    assert_eq!((again.issue.id.as_str(), &again.session), (a.id.as_str(), &first.session));
    assert_eq!(sessions(h, SessionFilter::default()).await, ids(&[&first.session]), "one claim, one session");
}

/// An idempotency key already spent on one claim, reused by the same agent to claim another
/// issue by name, is not a retry of that request: it is refused (a conflict) or answered with
/// the earlier claim, never an internal error, and the other issue stays unclaimed.
pub async fn dispatch_spent_idempotency_key_is_not_an_internal_error(h: &Harness) {
    let a = todo(h, "a", 1).await;
    let b = todo(h, "b", 2).await;
    let c = todo(h, "c", 3).await;
    let mut req = fresh("x");
    req.idempotency_key = Some("spent".into());
    let first = claim(h, &req).await.unwrap();
    assert_eq!(first.issue.id, a.id);
    let mut by_name = fresh("x");
    by_name.idempotency_key = Some("spent-by-name".into());
    let second = ok(h.store.claim_issue(&c.id, &by_name, Arc::new(NoTemplates)).await);

    for (spent, earlier) in [(&req, &first), (&by_name, &second)] {
        match h.store.claim_issue(&b.id, spent, Arc::new(NoTemplates)).await {
            Err(Error::Conflict { .. }) => {}
            Ok(c) if c.replayed && c.session == earlier.session => {}
            other => panic!("reusing a spent key must be a conflict (or the earlier claim), got {other:?}"),
        }
    }
    assert_eq!(status_of(h, &b.id).await, IssueStatus::Todo, "b was not claimed");
    assert_eq!(sessions(h, SessionFilter::default()).await, ids(&[&first.session, &second.session]));
}

/// A retried claim whose issue has since been deleted does not hand the deleted issue back:
/// deleted issues are never returned.
pub async fn dispatch_replay_never_returns_a_deleted_issue(h: &Harness) {
    let a = todo(h, "a", 1).await;
    todo(h, "b", 2).await;
    let req = fresh("x");
    let first = claim(h, &req).await.unwrap();
    assert_eq!(first.issue.id, a.id);
    ok(h.store.delete_issue(&a.id, &human()).await);
    assert_eq!(ok(h.store.get_session(&first.session.id).await).outcome, Some(SessionOutcome::Canceled));
    match h.store.claim_next(&req, Arc::new(NoTemplates)).await {
        Ok(Some(c)) => {
            assert_ne!(c.issue.id, a.id, "a deleted issue was returned: {c:?}");
            assert_eq!(c.issue.deleted_at, None);
        }
        Ok(None) | Err(Error::NotFound { .. } | Error::Conflict { .. }) => {}
        Err(e) => panic!("a retry after deletion must not fail internally: {e:?}"),
    }
}

/// What a prompt is hydrated from: the parent and its other live children (or, for a parent,
/// its children), open issues it blocks and that block it, its project and the goal the project
/// names (before any other goal of the project), its live labels by name, and its ended
/// sessions. Deleted and closed neighbours are left out.
pub async fn dispatch_prompt_inputs_are_complete(h: &Harness) {
    let named = ok(h.store.create_goal(input(json!({ "title": "named", "metric": "users" }))).await);
    let p = ok(h.store.create_project(input(json!({ "name": "p", "goalId": named.id }))).await);
    ok(h.store.create_goal(input(json!({ "title": "other", "metric": "users", "projectId": p.id }))).await);
    let zebra = label(h, "zebra").await;
    let apple = label(h, "apple").await;
    let gone = label(h, "gone").await;
    let parent = create_issue(h, json!({ "title": "parent", "type": "plan" })).await;
    let target = create_issue(
        h,
        json!({ "title": "target", "type": "task", "status": "todo", "priority": 1, "parentId": parent.id,
                "projectId": p.id, "labelIds": [zebra.id, apple.id, gone.id] }),
    )
    .await;
    let sibling = create_issue(h, json!({ "title": "sibling", "type": "task", "parentId": parent.id })).await;
    let deleted_sibling = create_issue(h, json!({ "title": "deleted", "type": "task", "parentId": parent.id })).await;
    ok(h.store.delete_issue(&deleted_sibling.id, &human()).await);
    ok(h.store.delete_label(&gone.id).await);

    // An ended session, then the relations (an open blocker would keep the claim away).
    let first = claim(h, &fresh("a")).await.expect("the target is claimable").session;
    assert_eq!(first.issue_id, target.id);
    ok(h.store.end_session(&first.id, SessionOutcome::Failed, report(json!({ "summary": "no" })), &bot()).await);
    let blocked = task(h, "blocked").await;
    let closed = task(h, "closed").await;
    let blocker = task(h, "blocker").await;
    relate(h, &target, "blocks", &blocked).await;
    relate(h, &target, "blocks", &closed).await;
    set_status(h, &closed.id, "done").await;
    relate(h, &target, "blocked_by", &blocker).await;

    let inputs = ok(h.store.prompt_inputs(&target.id).await);
    let numbers = |v: &[Issue]| v.iter().map(|i| i.number).collect::<Vec<_>>();
    assert_eq!(inputs.issue.id, target.id);
    assert_eq!(inputs.parent.as_ref().map(|i| i.number), Some(parent.number));
    assert_eq!(numbers(&inputs.siblings), vec![sibling.number]);
    assert!(inputs.children.is_empty(), "issues nest one level deep");
    assert_eq!(numbers(&inputs.blocking), vec![blocked.number], "closed issues are not blocked any more");
    assert_eq!(numbers(&inputs.blocked_by), vec![blocker.number]);
    assert_eq!(inputs.project.as_ref().map(|p| p.id.as_str()), Some(p.id.as_str()));
    assert_eq!(inputs.goal.as_ref().map(|g| g.title.as_str()), Some("named"));
    let labels: Vec<(&str, &str)> = inputs.labels.iter().map(|l| (l.name.as_str(), l.color.as_str())).collect();
    assert_eq!(labels, vec![("apple", apple.color.as_str()), ("zebra", zebra.color.as_str())]);
    let ended: Vec<(&str, Option<SessionOutcome>, Option<&str>)> =
        inputs.previous_sessions.iter().map(|s| (s.id.as_str(), s.outcome, s.summary.as_deref())).collect();
    assert_eq!(ended, vec![(first.id.as_str(), Some(SessionOutcome::Failed), Some("no"))]);
    assert!(inputs.improvement.is_none());

    let top = ok(h.store.prompt_inputs(&parent.id).await);
    assert_eq!((top.parent.is_none(), top.siblings.is_empty()), (true, true));
    assert_eq!(numbers(&top.children), vec![target.number, sibling.number]);
    assert_eq!((top.project.is_none(), top.goal.is_none(), top.labels.is_empty()), (true, true, true));
}

/// A request retried with its Idempotency-Key after the claim's session ended (here released,
/// so the issue is back in todo and may go to another agent) is a conflict, not the old claim.
pub async fn dispatch_replay_after_the_session_ended_is_a_conflict(h: &Harness) {
    let a = todo(h, "a", 1).await;
    let mut req = fresh("x");
    req.idempotency_key = Some("once".into());
    let first = claim(h, &req).await.unwrap();
    assert_eq!(first.issue.id, a.id);
    ok(h.store.end_session(&first.session.id, SessionOutcome::Released, SessionReport::default(), &bot()).await);
    match h.store.claim_next(&req, Arc::new(NoTemplates)).await {
        Err(Error::Conflict { code: "idempotency_key_reused", message }) => {
            assert!(message.contains(&format!("#{}", a.number)) && message.contains("released"), "{message}");
        }
        other => panic!("a replay of an ended claim must be a conflict, got {other:?}"),
    }
    assert_eq!(status_of(h, &a.id).await, IssueStatus::Todo, "the released issue stays in todo");
}

/// What ran in a session is kept beside it, replaced by a later record, readable after the
/// session ended; its tokens, cost and duration go on the session, where budgets count them.
pub async fn session_records_are_kept_and_replaced(h: &Harness) {
    let issue = todo(h, "worked by a runner", 1).await;
    let c = claim(h, &fresh("runner")).await.expect("a claim");
    assert_eq!(c.issue.id, issue.id);
    let id = c.session.id.clone();
    assert_eq!(ok(h.store.session_record(&id).await), None, "nothing recorded yet");
    let record = |attestation: Value, transcript: Option<&str>, cost: Option<f64>| NewSessionRecord {
        attestation: attestation.as_object().unwrap().clone(),
        transcript: transcript.map(str::to_owned),
        tokens: Some(1200),
        cost_usd: cost,
        duration_ms: Some(4000),
    };
    let first =
        ok(h.store.record_session(&id, record(json!({ "outcome": "failed" }), Some("line one\n"), Some(0.25))).await);
    assert_eq!((first.session_id.as_str(), first.transcript.as_deref()), (id.as_str(), Some("line one\n")));
    ok(h.store.end_session(&id, SessionOutcome::Failed, SessionReport::default(), &bot()).await);
    // After the session ended, a second record replaces the first; an absent cost keeps the old.
    h.clock.advance_millis(1000);
    let again = ok(h
        .store
        .record_session(&id, record(json!({ "outcome": "failed", "verify": [{ "exitCode": 1 }] }), None, None))
        .await);
    let read = ok(h.store.session_record(&id).await).expect("a record");
    assert_eq!(read, again);
    assert_eq!(read.attestation["verify"][0]["exitCode"], 1);
    assert_eq!(read.transcript, None);
    assert!(read.recorded_at > first.recorded_at);
    let session = ok(h.store.get_session(&id).await);
    assert_eq!((session.tokens, session.cost_usd, session.duration_ms), (Some(1200), Some(0.25), Some(4000)));

    let err = h.store.record_session("no-such-session", record(json!({}), None, None)).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let too_long = record(json!({}), Some(&"x".repeat(loop_core::session::MAX_TRANSCRIPT_CHARS + 1)), None);
    let err = h.store.record_session(&id, too_long).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field, .. } if field == "transcript"), "{err:?}");
}
