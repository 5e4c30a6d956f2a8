//! The templates and partials Loop ships. Seeded on first start; a user's edits (new
//! versions, changed conditions, deletions) are never overwritten.

use serde_json::{Value, json};

/// Partials every template may use.
pub const PARTIALS: [(&str, &str); 7] = [
    ("api_reference", include_str!("../templates/partials/api_reference.hbs")),
    ("review_instructions", include_str!("../templates/partials/review_instructions.hbs")),
    ("parent_context", include_str!("../templates/partials/parent_context.hbs")),
    ("sibling_context", include_str!("../templates/partials/sibling_context.hbs")),
    ("project_and_goal_context", include_str!("../templates/partials/project_and_goal_context.hbs")),
    ("project_skills", include_str!("../templates/partials/project_skills.hbs")),
    ("questions_and_answers", include_str!("../templates/partials/questions_and_answers.hbs")),
];

/// A template Loop ships.
pub struct DefaultTemplate {
    /// Stable ids (the reference's `tpl_default_…` scheme) so seeding is idempotent.
    pub id: &'static str,
    pub version_id: &'static str,
    pub slug: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub specificity: i64,
    pub content: &'static str,
    conditions: fn() -> Value,
}

impl DefaultTemplate {
    pub fn conditions(&self) -> Value {
        (self.conditions)()
    }
}

macro_rules! template {
    ($slug:literal, $id:literal, $name:literal, $description:literal, $specificity:literal, $conditions:expr) => {
        DefaultTemplate {
            id: concat!("tpl_default_", $id),
            version_id: concat!("ver_default_", $id, "_v1"),
            slug: $slug,
            name: $name,
            description: $description,
            specificity: $specificity,
            content: include_str!(concat!("../templates/", $slug, ".hbs")),
            conditions: || $conditions,
        }
    };
}

pub const TEMPLATES: [DefaultTemplate; 11] = [
    template!(
        "signal-triage",
        "signal_triage",
        "Signal Triage",
        "Decide whether a signal is actionable and form a hypothesis.",
        10,
        json!({"type": "signal"})
    ),
    template!(
        "posthog-metric-triage",
        "posthog_metric_triage",
        "PostHog Metric Triage",
        "Triage a PostHog metric change.",
        20,
        json!({"type": "signal", "signalSource": "posthog"})
    ),
    template!(
        "sentry-error-triage",
        "sentry_error_triage",
        "Sentry Error Triage",
        "Triage a Sentry error.",
        20,
        json!({"type": "signal", "signalSource": "sentry"})
    ),
    template!(
        "github-event-triage",
        "github_event_triage",
        "GitHub Event Triage",
        "Triage a GitHub event such as a failed CI run.",
        20,
        json!({"type": "signal", "signalSource": "github"})
    ),
    template!(
        "hypothesis-planning",
        "hypothesis_planning",
        "Hypothesis Planning",
        "Turn a hypothesis into sibling tasks and a monitor.",
        10,
        json!({"type": "hypothesis"})
    ),
    template!("task-execution", "task_execution", "Task Execution", "Implement a task.", 10, json!({"type": "task"})),
    template!(
        "task-execute-retry",
        "task_execute_retry",
        "Task Execution (Retry)",
        "Implement a task that failed before, learning from the earlier attempts.",
        20,
        json!({"type": "task", "hasFailedSessions": true})
    ),
    template!(
        "task-rework",
        "task_rework",
        "Task Rework",
        "Change a task's pull request as its review, CI or the merge queue asks.",
        30,
        json!({"type": "task", "hasRework": true})
    ),
    template!(
        "plan-decomposition",
        "plan_decomposition",
        "Plan Decomposition",
        "Break a plan into tasks.",
        10,
        json!({"type": "plan"})
    ),
    template!(
        "monitor-check",
        "monitor_check",
        "Monitor Check",
        "Check whether a hypothesis was validated.",
        10,
        json!({"type": "monitor"})
    ),
    template!(
        "prompt-improvement",
        "prompt_improvement",
        "Prompt Improvement",
        "Draft a better version of a template from its reviews.",
        30,
        json!({"type": "task", "labels": ["prompt-improvement"]})
    ),
];
