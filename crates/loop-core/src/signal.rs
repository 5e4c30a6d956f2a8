//! Signals: raw events from the outside world (PostHog, Sentry, GitHub, manual reports). Each
//! becomes a `signal` issue, unless an open signal issue already has the same fingerprint, in
//! which case it counts as another occurrence of that one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Timestamp;
use crate::issue::{NewIssue, Priority, string_enum};
use crate::text::{Short, Title};

string_enum!(Severity { Low = "low", Medium = "medium", High = "high", Critical = "critical" });

impl Severity {
    /// critical 1 (urgent) … low 4 (low).
    pub fn priority(self) -> Priority {
        let n = match self {
            Severity::Critical => 1,
            Severity::High => 2,
            Severity::Medium => 3,
            Severity::Low => 4,
        };
        Priority::new(n).expect("1–4 are priorities")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    pub id: String,
    pub source: String,
    pub source_id: Option<String>,
    #[serde(rename = "type")]
    pub signal_type: String,
    pub severity: Severity,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Value,
    pub issue_id: String,
    /// What makes two signals "the same": source, type and a stable key.
    pub fingerprint: String,
    /// How many deliveries this signal stands for (1 + the duplicates folded into it).
    pub occurrences: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_seen_at: Timestamp,
}

/// The body of `POST /api/signals`: the contract's shape (`source`, `sourceId`, `type`,
/// `severity`, `payload`, `projectId`) or the agent skill's (`source`, `title`, `data`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignalInput {
    #[cfg_attr(feature = "openapi", schema(value_type = Short))]
    pub source: Short,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub source_id: Option<Short>,
    #[serde(default, rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Short>))]
    pub signal_type: Option<Short>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default, alias = "data")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub payload: Option<Map<String, Value>>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Title>))]
    pub title: Option<Title>,
    #[serde(default, deserialize_with = "crate::input::reference")]
    pub project_id: Option<String>,
}

/// A signal ready to store: what every source (the API, each webhook) reduces to.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSignal {
    /// The kind of issue it opens: `signal` usually; a GitHub issue marked ready opens a `task`.
    pub issue_type: crate::issue::IssueType,
    /// The new issue's status: `triage` usually (or `todo` with auto-triage, or for ready work).
    pub status: crate::issue::IssueStatus,
    pub source: String,
    pub source_id: Option<String>,
    pub signal_type: String,
    pub severity: Severity,
    pub payload: Value,
    pub title: String,
    pub description: Option<String>,
    pub project_id: Option<String>,
    pub fingerprint: String,
    /// Work the signal asks for at once: a task under the signal's issue, made with it (a red
    /// CI run on a watched branch is one). Only a first occurrence makes it.
    pub follow_up: Option<FollowUp>,
}

/// A task a new signal opens under its own issue.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub title: String,
    pub description: String,
}

impl SignalInput {
    pub fn into_new(self) -> NewSignal {
        let source = self.source.to_string();
        let signal_type = self.signal_type.map(|t| t.to_string()).unwrap_or_else(|| "signal".into());
        let payload = Value::Object(self.payload.unwrap_or_default());
        let title = match self.title {
            Some(t) => t.to_string(),
            None => default_title(&source, &signal_type, &payload),
        };
        let source_id = self.source_id.map(|s| s.to_string());
        // A signal about a metric is that metric's signal, whatever route or type it came by
        // (the PostHog webhook fingerprints metrics the same way).
        let fingerprint = match (&source_id, payload.get("metric").and_then(Value::as_str)) {
            (None, Some(metric)) => fingerprint(&source, "metric", Some(metric), &title),
            (id, _) => fingerprint(&source, &signal_type, id.as_deref(), &title),
        };
        NewSignal {
            issue_type: crate::issue::IssueType::Signal,
            status: crate::issue::IssueStatus::Triage,
            fingerprint,
            source,
            source_id,
            signal_type,
            severity: self.severity.unwrap_or(Severity::Medium),
            payload,
            title,
            description: None,
            project_id: self.project_id,
            follow_up: None,
        }
    }
}

impl NewSignal {
    /// The issue a first occurrence opens. Its priority follows the severity.
    pub fn new_issue(&self) -> crate::Result<NewIssue> {
        let payload = if self.payload.is_object() { self.payload.clone() } else { json!({ "value": self.payload }) };
        serde_json::from_value(json!({
            "title": self.title,
            "description": self.description,
            "type": self.issue_type,
            "status": self.status,
            "priority": self.severity.priority(),
            "projectId": self.project_id,
            "signalSource": self.source,
            "signalPayload": payload,
        }))
        .map_err(|e| crate::Error::invalid("payload", "invalid_signal", e.to_string()))
    }

    /// The follow-up task, under the signal's issue `parent_id`: ready to dispatch, as urgent as
    /// the signal, from the same source (so its text reaches agents fenced as outside data).
    pub fn follow_up_issue(&self, parent_id: &str) -> crate::Result<Option<NewIssue>> {
        let Some(f) = &self.follow_up else { return Ok(None) };
        serde_json::from_value(json!({
            "title": f.title,
            "description": f.description,
            "type": "task",
            "status": "todo",
            "priority": self.severity.priority(),
            "projectId": self.project_id,
            "parentId": parent_id,
            "signalSource": self.source,
        }))
        .map(Some)
        .map_err(|e| crate::Error::invalid("followUp", "invalid_signal", e.to_string()))
    }

    /// The signal row of a first occurrence, which opened `issue_id`.
    pub fn first_occurrence(&self, issue_id: &str, now: Timestamp) -> Signal {
        Signal {
            id: crate::id::new_id(),
            source: self.source.clone(),
            source_id: self.source_id.clone(),
            signal_type: self.signal_type.clone(),
            severity: self.severity,
            payload: self.payload.clone(),
            issue_id: issue_id.to_owned(),
            fingerprint: self.fingerprint.clone(),
            occurrences: 1,
            created_at: now,
            last_seen_at: now,
        }
    }

    /// The comment a repeat leaves on the issue: the occurrence and its data.
    pub fn repeat_comment(&self, occurrences: i64) -> String {
        let body = format!(
            "Signal received again (occurrence {occurrences}, severity {}):\n\n```json\n{}\n```",
            self.severity,
            serde_json::to_string_pretty(&self.payload).unwrap_or_default()
        );
        truncate(&body, 100_000)
    }
}

impl Signal {
    /// Counts one more occurrence; the signal keeps the higher severity. Returns the priority
    /// its issue should be raised to, if this occurrence is more urgent than `issue_priority`.
    pub fn repeat(&mut self, again: &NewSignal, issue_priority: Priority, now: Timestamp) -> Option<Priority> {
        self.occurrences += 1;
        self.last_seen_at = now;
        let wanted = again.severity.priority();
        if wanted.value() < self.severity.priority().value() {
            self.severity = again.severity;
        }
        // 0 means no priority: anything beats it; otherwise lower numbers are more urgent.
        (issue_priority.value() == 0 || wanted.value() < issue_priority.value()).then_some(wanted)
    }
}

/// `[source] type: <payload.message | payload.title | type>`, as the reference names them.
pub fn default_title(source: &str, signal_type: &str, payload: &Value) -> String {
    let summary =
        ["message", "title"].iter().find_map(|k| payload.get(*k).and_then(Value::as_str)).unwrap_or(signal_type);
    truncate(&format!("[{source}] {signal_type}: {summary}"), 500)
}

/// Source + type + a stable key (an external id, a metric, a workflow and branch), or the
/// normalised title when there is none: lowercase words, digits and hex ids masked, so "Timeout
/// after 31s in job 8812" and "timeout after 30s in job 9120" are the same signal.
pub fn fingerprint(source: &str, signal_type: &str, key: Option<&str>, title: &str) -> String {
    let stable = match key {
        Some(k) if !k.trim().is_empty() => format!("key:{}", k.trim()),
        _ => format!("title:{}", normalise(title)),
    };
    format!("{}|{}|{stable}", source.to_lowercase(), signal_type.to_lowercase())
}

fn normalise(title: &str) -> String {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| if w.chars().any(|c| c.is_ascii_digit()) { "#".to_string() } else { w.to_lowercase() })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max_chars - 1).collect();
        t.push('…');
        t
    }
}

/// A webhook delivery: processed once per provider and id.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub provider: String,
    pub id: String,
}

/// A metric value a signal reports; goals tracking the metric take it as their current value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricReading {
    pub metric: String,
    pub value: f64,
}

impl MetricReading {
    /// The reading a signal's payload reports: a `metric` name with a numeric `value` (or
    /// `current`).
    pub fn in_payload(payload: &Value) -> Option<Self> {
        let metric = payload.get("metric").and_then(Value::as_str).filter(|m| !m.trim().is_empty())?;
        let value = ["value", "current"].iter().find_map(|k| payload.get(*k).and_then(Value::as_f64))?;
        Some(Self { metric: metric.to_owned(), value })
    }
}

/// What ingesting a signal did.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    /// A new signal and its issue.
    Created { signal: Signal, issue: crate::issue::Issue },
    /// Folded into the open signal issue with the same fingerprint (one more occurrence).
    Repeated { signal: Signal, issue: crate::issue::Issue },
    /// This webhook delivery was processed before; nothing was done.
    DuplicateDelivery,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_counts_keeps_the_higher_severity_and_raises_only_a_less_urgent_issue() {
        let input = |severity: &str| -> NewSignal {
            serde_json::from_value::<SignalInput>(json!({ "source": "sentry", "severity": severity }))
                .unwrap()
                .into_new()
        };
        let (t0, t1) = (Timestamp::from_millis(1), Timestamp::from_millis(2));
        let mut signal = input("high").first_occurrence("i1", t0);
        let p = |n| Priority::new(n).unwrap();

        assert_eq!(signal.repeat(&input("low"), p(2), t1), None, "low (4) does not beat priority 2");
        assert_eq!((signal.occurrences, signal.severity, signal.last_seen_at), (2, Severity::High, t1));
        assert_eq!(signal.repeat(&input("critical"), p(2), t1), Some(p(1)));
        assert_eq!(signal.severity, Severity::Critical);
        assert_eq!(signal.repeat(&input("low"), p(0), t1), Some(p(4)), "0 is no priority: anything beats it");
        assert_eq!((signal.occurrences, signal.severity), (4, Severity::Critical));
    }

    #[test]
    fn fingerprints_ignore_numbers_and_case_in_titles() {
        let a = fingerprint("sentry", "error", None, "Timeout after 31s in job 8812");
        let b = fingerprint("Sentry", "error", None, "timeout after 30s in job 9120");
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("sentry", "error", None, "Connection refused"));
        assert_eq!(fingerprint("posthog", "metric", Some("signup_rate"), "x"), "posthog|metric|key:signup_rate");
    }

    #[test]
    fn both_input_shapes_are_accepted() {
        let contract: SignalInput = serde_json::from_value(serde_json::json!({
            "source": "posthog", "type": "metric-change", "severity": "high",
            "payload": {"metric": "signup_rate", "message": "Sign-ups fell 12%"}
        }))
        .unwrap();
        let s = contract.into_new();
        assert_eq!(s.title, "[posthog] metric-change: Sign-ups fell 12%");
        assert_eq!(s.severity.priority().value(), 2);
        assert_eq!(s.fingerprint, "posthog|metric|key:signup_rate", "as the PostHog webhook fingerprints it");
        let skill: SignalInput = serde_json::from_value(
            serde_json::json!({"source": "manual", "title": "Checkout is slow", "data": {"n": 1}}),
        )
        .unwrap();
        let s = skill.into_new();
        assert_eq!(
            (s.title.as_str(), s.signal_type.as_str(), s.severity),
            ("Checkout is slow", "signal", Severity::Medium)
        );
        assert_eq!(s.payload["n"], 1);
    }
}
