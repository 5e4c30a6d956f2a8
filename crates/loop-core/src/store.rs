//! What a storage backend must do. Each operation is one transaction: it either happens
//! entirely (with its history events) or not at all. Backends enforce the domain rules by
//! calling the pure checks in this crate (`issue::check_parent`, `relation::check_new_relation`,
//! …) inside their transactions; the conformance suite in `loop-store-tests` holds every
//! backend to the same results.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::changelog::ChangeGroup;
use crate::comment::{Comment, NewComment, ThreadedComment};
use crate::dashboard::{Chain, PromptHealth, Stats};
use crate::dispatch::{Claim, ClaimRequest, Explanation, QueueEntry};
use crate::event::IssueEvent;
use crate::goal::{Goal, GoalPatch, GoalReading, GoalStatus, NewGoal};
use crate::hydration::PromptInputs;
use crate::hypothesis::Resolution;
use crate::issue::{Issue, IssueDetail, IssueFilter, IssuePatch, NewIssue, PullRequest};
use crate::label::{Label, LabelPatch, LabelRef, NewLabel};
use crate::metrics::LoopMetrics;
use crate::project::{NewProject, Project, ProjectDetail, ProjectPatch};
use crate::question::{NewAnswer, NewQuestion, Question};
use crate::relation::{NewRelation, Relation};
use crate::rework::{FeedbackOutcome, Merge, MergeSlot, NewRework, PullRequestFeedback, Rework, SlotRequest};
use crate::session::{AgentSession, NewSessionRecord, SessionFilter, SessionOutcome, SessionRecord, SessionReport};
use crate::settings::{Settings, SettingsPatch};
use crate::signal::{Delivery, Ingested, MetricReading, NewSignal, Signal};
use crate::skill::{Skill, SkillSync, SkillSyncResult};
use crate::template::{
    ActiveTemplate, NewReview, NewTemplate, NewVersion, PromptReview, PromptTemplate, PromptVersion, Seeded,
    SelectionContext, TemplateChooser, TemplateDetail, TemplatePatch, TemplateSeed,
};
use crate::token::{ApiToken, NewToken};
use crate::{Actor, Page, Paged, Result, Timestamp};

#[async_trait]
pub trait IssueStore {
    /// Creates an issue (and its labels) with the next global `number`.
    async fn create_issue(&self, input: NewIssue, actor: &Actor) -> Result<Issue>;
    /// A live issue by id, or by number when `key` is all digits.
    async fn get_issue(&self, key: &str) -> Result<Issue>;
    async fn issue_detail(&self, key: &str) -> Result<IssueDetail>;
    /// Live issues matching the filter, oldest first.
    async fn list_issues(&self, filter: &IssueFilter, page: Page) -> Result<Paged<Issue>>;
    /// Applies a non-empty patch; records one event per changed field.
    async fn update_issue(&self, key: &str, patch: IssuePatch, actor: &Actor) -> Result<Issue>;
    /// Soft-deletes: the issue disappears from every read.
    async fn delete_issue(&self, key: &str, actor: &Actor) -> Result<()>;
    /// The issue's history, oldest first.
    async fn issue_events(&self, key: &str, page: Page) -> Result<Paged<IssueEvent>>;
}

#[async_trait]
pub trait RelationStore {
    async fn create_relation(&self, issue_key: &str, input: NewRelation, actor: &Actor) -> Result<Relation>;
    async fn delete_relation(&self, id: &str, actor: &Actor) -> Result<()>;
}

#[async_trait]
pub trait CommentStore {
    async fn list_comments(&self, issue_key: &str) -> Result<Vec<ThreadedComment>>;
    async fn create_comment(&self, issue_key: &str, input: NewComment, actor: &Actor) -> Result<Comment>;
}

#[async_trait]
pub trait ProjectStore {
    async fn create_project(&self, input: NewProject) -> Result<Project>;
    async fn project_detail(&self, id: &str) -> Result<ProjectDetail>;
    async fn list_projects(&self, page: Page) -> Result<Paged<Project>>;
    async fn update_project(&self, id: &str, patch: ProjectPatch) -> Result<Project>;
    async fn delete_project(&self, id: &str) -> Result<()>;
    /// Makes the project's skills the given files: new ones and changed ones get a new version,
    /// missing ones are retired. All in one transaction.
    async fn sync_skills(&self, project_id: &str, sync: SkillSync) -> Result<SkillSyncResult>;
    /// The project's current skills, by name.
    async fn project_skills(&self, project_id: &str) -> Result<Vec<Skill>>;
}

#[async_trait]
pub trait GoalStore {
    async fn create_goal(&self, input: NewGoal) -> Result<Goal>;
    async fn get_goal(&self, id: &str) -> Result<Goal>;
    /// Live goals (of one status, if given), oldest first.
    async fn list_goals(&self, status: Option<GoalStatus>, page: Page) -> Result<Paged<Goal>>;
    async fn update_goal(&self, id: &str, patch: GoalPatch) -> Result<Goal>;
    async fn delete_goal(&self, id: &str) -> Result<()>;
    /// The goal's last `limit` current values, oldest first (every change of its current
    /// value, by PATCH or by a metric reading, is one reading).
    async fn goal_readings(&self, id: &str, limit: u32) -> Result<Vec<GoalReading>>;
}

#[async_trait]
pub trait LabelStore {
    async fn create_label(&self, input: NewLabel) -> Result<Label>;
    async fn get_label(&self, id: &str) -> Result<Label>;
    async fn list_labels(&self, page: Page) -> Result<Paged<Label>>;
    async fn update_label(&self, id: &str, patch: LabelPatch) -> Result<Label>;
    async fn delete_label(&self, id: &str) -> Result<()>;
}

#[async_trait]
pub trait TemplateStore {
    async fn create_template(&self, input: NewTemplate) -> Result<PromptTemplate>;
    async fn template_detail(&self, id: &str) -> Result<TemplateDetail>;
    async fn list_templates(&self, page: Page) -> Result<Paged<PromptTemplate>>;
    async fn update_template(&self, id: &str, patch: TemplatePatch) -> Result<PromptTemplate>;
    async fn delete_template(&self, id: &str) -> Result<()>;
    /// Versions of a template, newest first.
    async fn list_versions(&self, template_id: &str, page: Page) -> Result<Paged<PromptVersion>>;
    async fn create_version(&self, template_id: &str, input: NewVersion, actor: &Actor) -> Result<PromptVersion>;
    /// Makes a version the active one; the previously active version is retired.
    async fn promote_version(&self, template_id: &str, version_id: &str) -> Result<PromptVersion>;
    /// Retires a draft (the active version cannot be retired: promote another one instead).
    async fn retire_version(&self, template_id: &str, version_id: &str) -> Result<PromptVersion>;
    async fn create_review(&self, input: NewReview, actor: &Actor) -> Result<PromptReview>;
    /// Reviews across all of a template's versions, newest first.
    async fn list_reviews(&self, template_id: &str, page: Page) -> Result<Paged<PromptReview>>;
    /// Every live template that has an active version, with that version.
    async fn active_templates(&self) -> Result<Vec<ActiveTemplate>>;
    /// Creates a shipped template with its first version, unless that id ever existed (so a
    /// user's deletion sticks) or a live template already uses the slug. A template whose
    /// active version is an earlier shipped text gets this text as its next, active, version;
    /// one running a version someone else wrote is left alone.
    async fn seed_template(&self, seed: TemplateSeed) -> Result<Seeded>;
}

#[async_trait]
pub trait DispatchStore {
    /// Claims the highest-scoring eligible issue and opens a session for it, or hands a
    /// retried request its earlier claim. `None` when nothing is eligible.
    /// `chooser` picks the prompt version inside the claim's transaction; its `usageCount` is
    /// incremented there.
    async fn claim_next(&self, req: &ClaimRequest, chooser: Arc<dyn TemplateChooser>) -> Result<Option<Claim>>;
    /// Claims one given issue; `Conflict` (code `not_eligible`) with the reasons if it cannot be.
    async fn claim_issue(&self, key: &str, req: &ClaimRequest, chooser: Arc<dyn TemplateChooser>) -> Result<Claim>;
    /// Everything a prompt for this issue is hydrated from.
    async fn prompt_inputs(&self, key: &str) -> Result<PromptInputs>;
    /// What selection would see for this issue now (for previews).
    async fn selection_context(&self, key: &str) -> Result<SelectionContext>;
    /// Notes on the session that its prompt could not be rendered.
    async fn record_prompt_error(&self, session_id: &str, error: &str) -> Result<()>;
    /// Eligible issues in true score order.
    async fn dispatch_queue(&self, project_id: Option<&str>, page: Page) -> Result<Paged<QueueEntry>>;
    /// Whether an issue is eligible, why not, and its score.
    async fn explain(&self, key: &str) -> Result<Explanation>;
    /// Renews an open session's lease; `Conflict` (code `session_ended`) once it has ended.
    async fn heartbeat(&self, session_id: &str, lease_ttl_ms: i64) -> Result<AgentSession>;
    /// Ends an open session (`failed` or `released`): the issue goes back to `todo`.
    async fn end_session(
        &self,
        session_id: &str,
        outcome: SessionOutcome,
        report: SessionReport,
        actor: &Actor,
    ) -> Result<AgentSession>;
    async fn get_session(&self, session_id: &str) -> Result<AgentSession>;
    /// Keeps what ran in a session (open or ended), replacing an earlier record of it; its
    /// tokens, cost and duration also go on the session.
    async fn record_session(&self, session_id: &str, record: NewSessionRecord) -> Result<SessionRecord>;
    /// What ran in a session, if its runner recorded it.
    async fn session_record(&self, session_id: &str) -> Result<Option<SessionRecord>>;
    async fn list_sessions(&self, filter: &SessionFilter, page: Page) -> Result<Paged<AgentSession>>;
    /// An issue's sessions, oldest first.
    async fn issue_sessions(&self, key: &str) -> Result<Vec<AgentSession>>;
    /// Ends every session whose lease has run out (once, even with several servers) and puts
    /// its issue back in `todo`. Returns the sessions it expired.
    async fn expire_leases(&self) -> Result<Vec<AgentSession>>;
}

#[async_trait]
pub trait SignalStore {
    /// Records a signal: a new signal issue, or one more occurrence of the open signal issue
    /// with the same fingerprint (a comment with the new data, the priority raised if the
    /// severity is higher). With a delivery, a repeated delivery does nothing. A metric reading
    /// updates the goals tracking that metric. All in one transaction.
    async fn ingest_signal(
        &self,
        signal: NewSignal,
        delivery: Option<Delivery>,
        reading: Option<MetricReading>,
        actor: &Actor,
    ) -> Result<Ingested>;
    /// Signals, newest first, with their occurrence counts.
    async fn list_signals(&self, page: Page) -> Result<Paged<Signal>>;
    /// The open issue of the signal with this fingerprint, if there is one.
    async fn open_signal_issue(&self, fingerprint: &str) -> Result<Option<Issue>>;
    /// Attaches a merged pull request to the issues it names. `None` when the delivery was seen
    /// before; otherwise the issues it was attached to.
    async fn attach_pull_request(
        &self,
        issue_numbers: &[i64],
        pr: PullRequest,
        delivery: Delivery,
        actor: &Actor,
    ) -> Result<Option<Vec<Issue>>>;
}

#[async_trait]
pub trait HypothesisStore {
    /// Resolves the hypothesis of issue `key` (by a person or its monitor's agent), with a reason.
    async fn resolve_hypothesis(&self, key: &str, resolution: Resolution, actor: &Actor) -> Result<Issue>;
    /// Ends the waits whose not-before time came, and lets the data decide the hypotheses whose
    /// observation window passed.
    async fn sweep_due(&self) -> Result<Swept>;
}

#[async_trait]
pub trait MetricsStore {
    /// Loop velocity, hypothesis hit rate, agent efficiency and throughput over `[since, until)`
    /// (see [`crate::metrics::Period::resolve`] for the defaults).
    async fn loop_metrics(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Result<LoopMetrics>;
    /// The changes completed since `since` (default: 30 days ago), grouped under the hypothesis and signal that
    /// caused them (chains first, by their latest change; then changes without one).
    async fn changelog(&self, since: Option<Timestamp>) -> Result<Vec<ChangeGroup>>;
}

#[async_trait]
pub trait TriageStore {
    /// Folds issue `key` into issue `of`, which it repeats: a `duplicate` relation, a comment on
    /// each, its signal occurrences counted on `of`'s signal, and `key` closed as canceled.
    async fn mark_duplicate(&self, key: &str, of: &str, actor: &Actor) -> Result<Issue>;
    /// Closes (cancels, with a comment) triage and backlog issues untouched for `untouched_days`,
    /// a batch at a time; returns those closed.
    async fn close_stale(&self, untouched_days: u32) -> Result<Vec<Issue>>;
}

#[async_trait]
pub trait SettingsStore {
    async fn settings(&self) -> Result<Settings>;
    async fn update_settings(&self, patch: SettingsPatch) -> Result<Settings>;
}

#[async_trait]
pub trait TokenStore {
    /// Keeps a new named token with the hash of its secret (never the secret); `Conflict`
    /// (`name_taken`) while a token of that name is not revoked.
    async fn create_token(&self, input: NewToken, secret_hash: String) -> Result<ApiToken>;
    /// Every token, revoked and expired ones too.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>>;
    /// Revokes the live token of that name, at once for every node.
    async fn revoke_token(&self, name: &str) -> Result<ApiToken>;
    /// The token whose secret hashes to `hash`, live or not.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>>;
    /// The token with this id, live or not.
    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>>;
    /// Notes that the token was used now (unless a note under a minute old is there).
    async fn touch_token(&self, token: &ApiToken) -> Result<()>;
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Issues whose wait ended (they may now be dispatched).
    pub released: u64,
    /// Hypotheses looked at because their window passed.
    pub resolved: u64,
}

#[async_trait]
pub trait DashboardStore {
    /// Counts across the loop.
    async fn stats(&self) -> Result<Stats>;
    /// The loop's chains (each live root issue with its children), most recently active first.
    async fn activity(&self, page: Page) -> Result<Paged<Chain>>;
    /// Every live template's health, oldest template first.
    async fn prompt_health(&self) -> Result<Vec<PromptHealth>>;
    /// The live labels of each of these issues (issues without labels are absent).
    async fn labels_of_issues(&self, issue_ids: &[String]) -> Result<BTreeMap<String, Vec<LabelRef>>>;
    /// The id of the newest event in the log (0 when it is empty).
    async fn last_event_id(&self) -> Result<i64>;
    /// Up to `limit` events after `after`, in log order: the feed of live updates.
    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<IssueEvent>>;
}

/// A complete backend.
/// What happens after an agent's pull request: questions to a person, rework from reviews and
/// CI, approval, merges, and the merge slot one runner holds while it lands work.
#[async_trait]
pub trait HandoffStore {
    /// Ends the open session with a question: the issue returns to `todo` but waits (an open
    /// question counts as a blocker) until a person answers.
    async fn ask_question(&self, session_id: &str, input: NewQuestion, actor: &Actor) -> Result<Question>;
    /// Answers an open question; the issue is dispatchable again once none is open.
    async fn answer_question(&self, question_id: &str, input: NewAnswer, actor: &Actor) -> Result<Question>;
    /// Questions, oldest first: only the open ones with `open_only`; only one issue's with `issue`.
    async fn list_questions(&self, open_only: bool, issue: Option<&str>, page: Page) -> Result<Paged<Question>>;
    /// Sends finished work back: keeps the feedback and returns a `done` issue to `todo` (an
    /// issue being worked or waiting keeps its status; a canceled one is refused).
    async fn add_rework(&self, issue_key: &str, input: NewRework, actor: &Actor) -> Result<(Rework, Issue)>;
    /// Pending rework of an issue, oldest first.
    async fn pending_rework(&self, issue_key: &str) -> Result<Vec<Rework>>;
    /// Marks the issue's pull request approved (or not): the merge queue lands approved work.
    async fn set_approval(&self, issue_key: &str, approved: bool, actor: &Actor) -> Result<Issue>;
    /// Records the merge of the issue's pull request: done if it was not, `mergedAt` set, and
    /// dependants that wait for the merge freed. Recording it again changes nothing.
    async fn record_merge(&self, issue_key: &str, merge: Merge, actor: &Actor) -> Result<Issue>;
    /// Done issues approved and not merged, oldest approval first.
    async fn merge_queue(&self, project_id: Option<&str>) -> Result<Vec<Issue>>;
    /// Applies a webhook delivery about a Loop pull request, once per delivery: only when the
    /// issue it names has that pull request (by number or branch).
    async fn pull_request_feedback(
        &self,
        feedback: PullRequestFeedback,
        delivery: Delivery,
        actor: &Actor,
    ) -> Result<FeedbackOutcome>;
    /// Takes (or renews, for its holder) the merge slot of `scope`; `Conflict` while another
    /// holder's lease runs.
    async fn take_merge_slot(&self, scope: &str, req: SlotRequest) -> Result<MergeSlot>;
    /// Frees the slot if `holder` holds it.
    async fn free_merge_slot(&self, scope: &str, holder: &str) -> Result<()>;
}

#[async_trait]
pub trait Store:
    IssueStore
    + RelationStore
    + CommentStore
    + ProjectStore
    + GoalStore
    + LabelStore
    + TemplateStore
    + DispatchStore
    + SignalStore
    + DashboardStore
    + HypothesisStore
    + MetricsStore
    + TriageStore
    + SettingsStore
    + TokenStore
    + HandoffStore
    + Send
    + Sync
    + 'static
{
    /// Answers only if the database does.
    async fn ping(&self) -> Result<()>;

    /// A real write that changes nothing (a row of 64 KiB added and removed, committed): while
    /// writes fail, it tells when they succeed again.
    async fn probe_write(&self) -> Result<()>;

    /// True once the store has been closed for shutdown: background work then stops quietly
    /// instead of reporting the closed database as a failure.
    fn is_closed(&self) -> bool {
        false
    }

    /// Tells the other server nodes on this database that something changed, so their
    /// long-polls and live pages look again. Nothing to do for a single-node store.
    async fn announce_change(&self) {}

    /// Calls `on_change` whenever another node announces a change, until the store is closed.
    /// Returns at once for a single-node store.
    async fn follow_changes(&self, on_change: Arc<dyn Fn() + Send + Sync>) {
        let _ = on_change;
    }
}
