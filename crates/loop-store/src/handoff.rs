//! [`HandoffStore`] for both backends: each operation one transaction over the functions of
//! `questions`, `rework` and `merge_slots`.

use async_trait::async_trait;
use loop_core::issue::Issue;
use loop_core::question::{NewAnswer, NewQuestion, Question};
use loop_core::rework::{FeedbackOutcome, Merge, MergeSlot, NewRework, PullRequestFeedback, Rework, SlotRequest};
use loop_core::signal::Delivery;
use loop_core::store::HandoffStore;
use loop_core::{Actor, Page, Paged, Result};

use crate::common::require_issue;
use crate::{Backend, SqlStore, merge_slots, pull_requests, questions, rework};

#[async_trait]
impl<B: Backend> HandoffStore for SqlStore<B> {
    async fn ask_question(&self, session_id: &str, input: NewQuestion, actor: &Actor) -> Result<Question> {
        let (id, now, actor) = (session_id.to_owned(), self.now(), actor.clone());
        self.write((id, input, actor), move |db, (id, input, actor)| {
            Box::pin(questions::ask(db, id, input, actor, now))
        })
        .await
    }

    async fn answer_question(&self, question_id: &str, input: NewAnswer, actor: &Actor) -> Result<Question> {
        let (id, now, actor) = (question_id.to_owned(), self.now(), actor.clone());
        self.write((id, input, actor), move |db, (id, input, actor)| {
            Box::pin(questions::answer(db, id, input, actor, now))
        })
        .await
    }

    async fn list_questions(&self, open_only: bool, issue: Option<&str>, page: Page) -> Result<Paged<Question>> {
        self.read(issue.map(str::to_owned), move |db, issue| {
            Box::pin(async move {
                let issue_id = match issue {
                    Some(key) => Some(require_issue(db, &key).await?.id),
                    None => None,
                };
                questions::list(db, open_only, issue_id, page).await
            })
        })
        .await
    }

    async fn add_rework(&self, issue_key: &str, input: NewRework, actor: &Actor) -> Result<(Rework, Issue)> {
        let (key, now, actor) = (issue_key.to_owned(), self.now(), actor.clone());
        self.write((key, input, actor), move |db, (key, input, actor)| {
            Box::pin(rework::add(db, key, input, actor, now))
        })
        .await
    }

    async fn pending_rework(&self, issue_key: &str) -> Result<Vec<Rework>> {
        self.read(issue_key.to_owned(), move |db, key| Box::pin(rework::pending(db, key))).await
    }

    async fn set_approval(&self, issue_key: &str, approved: bool, actor: &Actor) -> Result<Issue> {
        let (key, now, actor) = (issue_key.to_owned(), self.now(), actor.clone());
        self.write((key, actor), move |db, (key, actor)| Box::pin(rework::approval(db, key, approved, actor, now)))
            .await
    }

    async fn record_merge(&self, issue_key: &str, merge: Merge, actor: &Actor) -> Result<Issue> {
        let (key, now, actor) = (issue_key.to_owned(), self.now(), actor.clone());
        self.write((key, merge, actor), move |db, (key, merge, actor)| {
            Box::pin(rework::merge(db, key, merge, actor, now))
        })
        .await
    }

    async fn merge_queue(&self, project_id: Option<&str>) -> Result<Vec<Issue>> {
        self.read(project_id.map(str::to_owned), move |db, project| Box::pin(rework::queue(db, project))).await
    }

    async fn pull_request_feedback(
        &self,
        feedback: PullRequestFeedback,
        delivery: Delivery,
        actor: &Actor,
    ) -> Result<FeedbackOutcome> {
        let (now, actor) = (self.now(), actor.clone());
        self.write((feedback, delivery, actor), move |db, (feedback, delivery, actor)| {
            Box::pin(pull_requests::apply(db, feedback, delivery, actor, now))
        })
        .await
    }

    async fn take_merge_slot(&self, scope: &str, req: SlotRequest) -> Result<MergeSlot> {
        let (scope, now) = (scope.to_owned(), self.now());
        self.write((scope, req), move |db, (scope, req)| Box::pin(merge_slots::take(db, scope, req, now))).await
    }

    async fn free_merge_slot(&self, scope: &str, holder: &str) -> Result<()> {
        let args = (scope.to_owned(), holder.to_owned());
        self.write(args, move |db, (scope, holder)| Box::pin(merge_slots::free(db, scope, holder))).await
    }
}
