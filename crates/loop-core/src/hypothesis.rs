//! Hypotheses: what a `hypothesis` issue believes, what would show it right, and where it is in
//! its lifecycle `proposed → testing → validated | invalidated | inconclusive`.
//!
//! Loop keeps the lifecycle: a hypothesis is `testing` once its tasks are underway, and its
//! observation window runs from then. A reading of its metric once the window has passed
//! resolves it at once; when the window passes, the last reading taken while testing decides
//! (no reading: `inconclusive`). A person or the monitor's agent may also resolve it, with a
//! reason.

use serde::{Deserialize, Serialize};

use crate::issue::string_enum;
use crate::text::{Body, Short};
use crate::{Error, Result, Timestamp};

string_enum!(
    /// Where a hypothesis is. The last three are resolutions, and final.
    HypothesisStatus {
        Proposed = "proposed",
        Testing = "testing",
        Validated = "validated",
        Invalidated = "invalidated",
        Inconclusive = "inconclusive",
    }
);

impl HypothesisStatus {
    pub fn is_resolved(self) -> bool {
        matches!(self, Self::Validated | Self::Invalidated | Self::Inconclusive)
    }
}

string_enum!(
    /// How a reading is compared with the threshold.
    Comparison { Gte = "gte", Gt = "gt", Lte = "lte", Lt = "lt" }
);

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gte => value >= threshold,
            Comparison::Gt => value > threshold,
            Comparison::Lte => value <= threshold,
            Comparison::Lt => value < threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Gte => "≥",
            Comparison::Gt => ">",
            Comparison::Lte => "≤",
            Comparison::Lt => "<",
        }
    }
}

/// Hours a hypothesis is observed for, from 0 to a year.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct WindowHours(f64);
bounded_schema!(WindowHours, number, 0, 8760, "Hours the hypothesis is observed for once testing (0 to 8760).");

impl TryFrom<f64> for WindowHours {
    type Error = String;
    fn try_from(h: f64) -> std::result::Result<Self, String> {
        if (0.0..=8760.0).contains(&h) { Ok(Self(h)) } else { Err(format!("must be from 0 to 8760 hours, got {h}")) }
    }
}

impl From<WindowHours> for f64 {
    fn from(h: WindowHours) -> f64 {
        h.0
    }
}

impl WindowHours {
    pub fn millis(self) -> i64 {
        (self.0 * 3_600_000.0).round() as i64
    }
}

/// What would show a hypothesis right, in a form Loop evaluates: the metric (as PostHog, a
/// metric signal or a goal tracking it reports it), compared with a threshold, after a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Criteria {
    /// The metric's name, as goals (`goal.metric`) and signals (`payload.metric`) name it.
    #[cfg_attr(feature = "openapi", schema(value_type = Short))]
    pub metric: Short,
    pub comparison: Comparison,
    pub threshold: f64,
    pub window_hours: WindowHours,
}

impl Criteria {
    pub fn met_by(&self, value: f64) -> bool {
        self.comparison.holds(value, self.threshold)
    }

    /// "signup_rate ≥ 3.2 within 48 h".
    pub fn describe(&self) -> String {
        format!(
            "{} {} {} within {} h",
            self.metric,
            self.comparison.symbol(),
            self.threshold,
            f64::from(self.window_hours)
        )
    }
}

/// A hypothesis attached to a `hypothesis` issue. `status`, `outcome`, `testingSince`,
/// `observeUntil` and `resolvedAt` are kept by Loop: sent values are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hypothesis {
    #[cfg_attr(feature = "openapi", schema(value_type = Body))]
    pub statement: Body,
    pub confidence: Confidence,
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Free text, as the reference stores it; `criteria` is what Loop evaluates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_criteria: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<Criteria>,
    #[serde(default = "proposed")]
    pub status: HypothesisStatus,
    /// Why it was resolved: the reading that decided, or the resolver's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub testing_since: Option<Timestamp>,
    /// When the observation window ends (set when testing begins, if there are criteria).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub observe_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub resolved_at: Option<Timestamp>,
}

/// What a hypothesis stored before the lifecycle existed is: proposed.
fn proposed() -> HypothesisStatus {
    HypothesisStatus::Proposed
}

/// A probability from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Confidence(f64);
bounded_schema!(Confidence, number, 0, 1, "A probability from 0 to 1.");

impl Confidence {
    pub fn value(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Confidence {
    type Error = String;
    fn try_from(n: f64) -> std::result::Result<Self, String> {
        if (0.0..=1.0).contains(&n) { Ok(Self(n)) } else { Err(format!("must be a number from 0 to 1, got {n}")) }
    }
}

impl From<Confidence> for f64 {
    fn from(c: Confidence) -> f64 {
        c.0
    }
}

/// A change of a hypothesis's status and what showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: HypothesisStatus,
    pub to: HypothesisStatus,
    /// The reading, or the person's or agent's reason.
    pub evidence: serde_json::Value,
}

impl Hypothesis {
    /// As sent by a client: the lifecycle starts over (a new hypothesis), or stays as it was
    /// (`kept`, a patch of an existing one). Clients never set it directly.
    pub fn with_lifecycle_of(mut self, kept: Option<&Hypothesis>) -> Self {
        let fresh = Hypothesis { status: HypothesisStatus::Proposed, ..self.clone() };
        let from = kept.unwrap_or(&fresh);
        self.status = from.status;
        self.outcome = from.outcome.clone().filter(|_| kept.is_some());
        self.testing_since = from.testing_since.filter(|_| kept.is_some());
        self.observe_until = match (&self.criteria, self.testing_since) {
            (Some(c), Some(since)) if !self.status.is_resolved() => Some(since.plus_millis(c.window_hours.millis())),
            _ => from.observe_until.filter(|_| kept.is_some()),
        };
        self.resolved_at = from.resolved_at.filter(|_| kept.is_some());
        self
    }

    /// Its tasks are underway: the observation window starts now.
    pub fn start_testing(&mut self, now: Timestamp) -> Option<Transition> {
        if self.status != HypothesisStatus::Proposed {
            return None;
        }
        self.status = HypothesisStatus::Testing;
        self.testing_since = Some(now);
        self.observe_until = self.criteria.as_ref().map(|c| now.plus_millis(c.window_hours.millis()));
        let evidence = serde_json::json!({ "observeUntil": self.observe_until });
        Some(Transition { from: HypothesisStatus::Proposed, to: HypothesisStatus::Testing, evidence })
    }

    /// The verdict of the data at `now`: `None` while the window runs (or without criteria).
    /// `last` is the last reading taken while testing.
    pub fn judge(&self, last: Option<(f64, Timestamp)>, now: Timestamp) -> Option<(HypothesisStatus, String)> {
        let c = self.criteria.as_ref()?;
        if self.status != HypothesisStatus::Testing || self.observe_until.is_none_or(|end| now < end) {
            return None;
        }
        Some(match last {
            Some((v, _)) if c.met_by(v) => {
                (HypothesisStatus::Validated, format!("{} is {v} ({})", c.metric, c.describe()))
            }
            Some((v, _)) => (
                HypothesisStatus::Invalidated,
                format!("{} is {v}, short of {} {}", c.metric, c.comparison.symbol(), c.threshold),
            ),
            None => (HypothesisStatus::Inconclusive, format!("no reading of {} while it was tested", c.metric)),
        })
    }

    /// Resolves it (`to` must be a resolution) with `outcome` as the reason.
    pub fn resolve(
        &mut self,
        to: HypothesisStatus,
        outcome: String,
        evidence: serde_json::Value,
        now: Timestamp,
    ) -> Result<Transition> {
        if !to.is_resolved() {
            return Err(Error::invalid(
                "status",
                "not_a_resolution",
                format!("a hypothesis is resolved as validated, invalidated or inconclusive, not {to}"),
            ));
        }
        if self.status.is_resolved() {
            return Err(Error::conflict(
                "already_resolved",
                format!(
                    "this hypothesis was already resolved as {}: {}",
                    self.status,
                    self.outcome.as_deref().unwrap_or("")
                ),
            ));
        }
        let from = self.status;
        self.status = to;
        self.outcome = Some(outcome);
        self.resolved_at = Some(now);
        Ok(Transition { from, to, evidence })
    }
}

/// The body of `POST /api/issues/{id}/hypothesis/resolve`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resolution {
    /// `validated`, `invalidated` or `inconclusive`.
    pub status: HypothesisStatus,
    /// Why: what was observed.
    #[cfg_attr(feature = "openapi", schema(value_type = Body))]
    pub reason: Body,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hypothesis(criteria: serde_json::Value) -> Hypothesis {
        serde_json::from_value(json!({ "statement": "s", "confidence": 0.7, "criteria": criteria })).unwrap()
    }

    #[test]
    fn the_window_decides_once_it_has_passed() {
        let t = Timestamp::from_millis;
        let mut h = hypothesis(json!({ "metric": "rate", "comparison": "gte", "threshold": 3.2, "windowHours": 1 }));
        assert_eq!(h.judge(Some((4.0, t(0))), t(0)), None, "not testing yet");
        h.start_testing(t(1000)).unwrap();
        assert_eq!(h.observe_until, Some(t(3_601_000)));
        assert!(h.start_testing(t(2000)).is_none(), "testing starts once");
        assert_eq!(h.judge(Some((4.0, t(2000))), t(3_600_999)), None, "the window still runs");
        assert_eq!(h.judge(Some((3.2, t(2000))), t(3_601_000)).unwrap().0, HypothesisStatus::Validated);
        assert_eq!(h.judge(Some((3.1, t(2000))), t(3_601_000)).unwrap().0, HypothesisStatus::Invalidated);
        assert_eq!(h.judge(None, t(3_601_000)).unwrap().0, HypothesisStatus::Inconclusive);
    }

    #[test]
    fn clients_cannot_set_the_lifecycle_and_patches_keep_it() {
        let sent: Hypothesis =
            serde_json::from_value(json!({ "statement": "s", "confidence": 0.5, "status": "validated" })).unwrap();
        let new = sent.clone().with_lifecycle_of(None);
        assert_eq!((new.status, new.resolved_at), (HypothesisStatus::Proposed, None));
        let mut testing = new.clone();
        testing.start_testing(Timestamp::from_millis(5)).unwrap();
        let patched = sent.with_lifecycle_of(Some(&testing));
        assert_eq!(
            (patched.status, patched.testing_since),
            (HypothesisStatus::Testing, Some(Timestamp::from_millis(5)))
        );
    }

    #[test]
    fn a_resolution_is_final() {
        let mut h = hypothesis(json!({ "metric": "m", "comparison": "lt", "threshold": 1, "windowHours": 0 }));
        let e = h.resolve(HypothesisStatus::Testing, "x".into(), json!({}), Timestamp::from_millis(1)).unwrap_err();
        assert!(e.to_string().contains("not testing"), "{e}");
        h.resolve(HypothesisStatus::Invalidated, "no".into(), json!({}), Timestamp::from_millis(1)).unwrap();
        let e = h.resolve(HypothesisStatus::Validated, "yes".into(), json!({}), Timestamp::from_millis(2)).unwrap_err();
        assert!(e.to_string().contains("already resolved as invalidated"), "{e}");
        let bad = serde_json::from_value::<Criteria>(
            json!({ "metric": "m", "comparison": "gte", "threshold": 1, "windowHours": 9000 }),
        );
        assert!(bad.unwrap_err().to_string().contains("from 0 to 8760"));
    }
}
