//! The storage conformance suite: every backend runs these cases.
//!
//! A backend crate provides one factory, an `async fn() -> Harness` that opens a fresh, empty
//! store on a [`ManualClock`] set to [`START`], and expands [`conformance_suite!`] with it in an
//! integration test:
//!
//! ```ignore
//! async fn sqlite() -> loop_store_tests::Harness { /* open a store in a temp dir */ }
//!
//! loop_store_tests::conformance_suite!(sqlite);
//! ```
//!
//! That yields one `#[tokio::test]` per case, so every case passes or fails on its own. The
//! cases live in [`cases`]; each takes the harness by reference and knows nothing about the
//! backend behind it. The calling crate must depend on this crate under its own name
//! (`loop-store-tests`).

use std::any::Any;
use std::sync::Arc;

use loop_core::{ManualClock, Store, Timestamp};

pub mod cases;
mod support;

/// Where every harness clock starts: 2026-01-01T00:00:00.000Z.
pub const START: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// A fresh clock at [`START`], for factories.
pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(START))
}

/// One empty store under test, the clock it reads, and whatever must outlive it.
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    _guard: Box<dyn Any + Send + Sync>,
}

impl Harness {
    /// `store` must be empty and read `clock`, which must be at [`START`]. `guard` is kept
    /// alive as long as the harness (a temporary directory, a throwaway database…).
    pub fn new(store: Arc<dyn Store>, clock: Arc<ManualClock>, guard: impl Any + Send + Sync) -> Self {
        Self { store, clock, _guard: Box::new(guard) }
    }
}

#[doc(hidden)]
pub mod __private {
    pub use tokio;
}

/// Expands to one `#[tokio::test]` per conformance case. The argument is the path of an
/// `async fn() -> Harness` that returns a fresh, empty store for each case.
///
/// This is the one list of case names: a case added to [`cases`] must be added here too. A case
/// may carry attributes, e.g. `` while a known backend bug is open.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory;
            issue_create_numbers_defaults_and_lookup,
            issue_concurrent_creates_get_distinct_numbers,
            issue_create_label_ids_are_deduplicated_and_checked,
            issue_create_hierarchy_rules,
            issue_update_hierarchy_rules,
            issue_completed_at_follows_done,
            empty_patch_and_unknown_ids,
            issue_list_filters_and_pagination,
            issue_list_sort_and_search,
            issue_soft_delete_hides_everywhere,
            issue_delete_detaches_children,
            relation_rules,
            blocking_loops_are_refused,
            concurrent_blocks_never_close_a_loop,
            concurrent_blocks_joining_chains_never_close_a_loop,
            comment_threads,
            issue_history,
            project_crud_and_detail,
            project_skills_are_versioned_and_reach_prompts,
            goal_crud,
            label_crud,
            template_and_version_lifecycle,
            template_concurrent_versions,
            review_rules,
            dispatch_claims_by_score,
            dispatch_blockers,
            dispatch_goal_bonus,
            dispatch_age_counts_from_todo_entry,
            dispatch_project_filter,
            dispatch_queue_is_global_order,
            dispatch_property_claim_order_equals_score_sort,
            dispatch_idempotent_retry,
            session_records_are_kept_and_replaced,
            dispatch_lease_expiry,
            dispatch_release_and_fail,
            dispatch_patch_closes_session,
            dispatch_claim_issue,
            dispatch_concurrent_claims_are_exclusive,

            dispatch_claim_issue_retry_is_replayed,

            dispatch_spent_idempotency_key_is_not_an_internal_error,

            dispatch_replay_never_returns_a_deleted_issue,
            dispatch_replay_after_the_session_ended_is_a_conflict,
            dispatch_prompt_inputs_are_complete,
            dashboard_stats,
            dashboard_activity_chains,
            dashboard_prompt_health,
            dashboard_live_feed_and_labels,
            goal_readings_follow_current_value,
            issue_detail_counts_signal_occurrences,
            a_signals_follow_up_task_is_made_once_with_it,
            feed_misses_nothing_under_concurrent_writers,
            shipped_templates_are_seeded_and_upgraded,
            hypotheses_are_validated_by_data_after_their_window,
            a_window_without_readings_is_inconclusive_and_resolutions_are_final,
            agent_efficiency_is_tallied_as_sessions_end,
            triage_folds_duplicates_and_snoozes,
            the_stale_policy_closes_only_what_nobody_touched,
            settings_name_the_system_labels_and_thresholds,
            a_question_holds_the_issue_until_it_is_answered,
            rework_sends_done_work_back_until_it_is_done_again,
            until_merged_blockers_wait_for_the_merge,
            the_merge_queue_and_its_slot,
            pull_request_feedback_applies_once_to_its_issue,
            a_project_can_make_its_blocks_wait_for_merges,
        );
    };
    (@cases $factory:path; $($(#[$attr:meta])* $case:ident),+ $(,)?) => {
        $(
            #[$crate::__private::tokio::test(
                flavor = "multi_thread",
                worker_threads = 2,
                crate = "::loop_store_tests::__private::tokio"
            )]
            $(#[$attr])*
            async fn $case() {
                let harness: $crate::Harness = $factory().await;
                $crate::cases::$case(&harness).await;
            }
        )+
    };
}
