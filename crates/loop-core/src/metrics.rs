//! Loop metrics: how fast signals become validated outcomes (loop velocity, per stage), how
//! often hypotheses hold (hit rate), how well each agent works, and how much gets done per day.
//!
//! Computed here from what the store reads for a period: one outcome row per resolved
//! hypothesis (written when it is resolved, so the event log is never scanned), per-agent
//! tallies kept by claim day as sessions end, and done issues counted per day.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Timestamp;
use crate::duration_histogram::DurationHistogram;
use crate::hypothesis::HypothesisStatus;

/// A resolved hypothesis and the times of the chain that led to it (milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    pub status: HypothesisStatus,
    pub resolved_at: i64,
    pub signal_source: Option<String>,
    /// "template name v3", when the hypothesis was worked under a prompt.
    pub template_version: Option<String>,
    pub signal_at: Option<i64>,
    pub triaged_at: Option<i64>,
    pub hypothesis_at: i64,
    pub testing_at: Option<i64>,
    pub shipped_at: Option<i64>,
}

/// Median and 90th percentile of a set of durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    pub count: u64,
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

/// A duration as the metrics show it: "3.5 h", or "12 min" under an hour.
pub fn duration_text(ms: i64) -> String {
    if ms >= 3_600_000 { format!("{:.1} h", ms as f64 / 3_600_000.0) } else { format!("{} min", ms / 60_000) }
}

impl Spread {
    pub fn of(mut values: Vec<i64>) -> Self {
        values.sort_unstable();
        let at = |q: f64| values.get(((values.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
        Self { count: values.len() as u64, median_ms: at(0.5), p90_ms: at(0.9) }
    }
}

/// Time spent in each stage of the loop.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stages {
    /// Signal received → it left triage.
    pub triage: Spread,
    /// Triaged → hypothesis made.
    pub hypothesis: Spread,
    /// Hypothesis made → its tasks underway.
    pub plan: Spread,
    /// Tasks underway → the last one done.
    pub execution: Spread,
    /// Tasks done → the hypothesis resolved.
    pub validation: Spread,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Velocity {
    /// Signal received → hypothesis validated.
    pub signal_to_validated: Spread,
    pub stages: Stages,
}

/// Validated out of resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HitRate {
    /// What is counted: all, a signal source, or a template version.
    pub key: String,
    pub validated: u64,
    pub invalidated: u64,
    pub inconclusive: u64,
    /// validated / resolved; null when none was resolved.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HitRates {
    pub overall: HitRate,
    pub by_signal_source: Vec<HitRate>,
    pub by_template_version: Vec<HitRate>,
}

/// How one agent (by name) worked in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AgentEfficiency {
    pub agent: String,
    pub sessions: u64,
    /// Sessions ended `done` / sessions ended.
    pub success_rate: Option<f64>,
    /// Of the issues this agent claimed first, the share its first session finished.
    pub first_attempt_success: Option<f64>,
    pub median_duration_ms: Option<i64>,
    pub completed_issues: u64,
    pub tokens_per_completed_issue: Option<f64>,
    pub cost_usd_per_completed_issue: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub done: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LoopMetrics {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub since: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub until: Timestamp,
    pub velocity: Velocity,
    pub hit_rate: HitRates,
    /// Sessions by the UTC day they were claimed, over every day the period touches.
    pub agents: Vec<AgentEfficiency>,
    pub throughput: Vec<DayCount>,
}

/// The period metrics cover: `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    pub since: Timestamp,
    pub until: Timestamp,
}

impl Period {
    /// How far back a period reaches when only its end is given.
    pub const DEFAULT_DAYS: i64 = 30;

    /// `since` defaults to 30 days before `until`, which defaults to now (included). A `since`
    /// at or after `until` is an empty period: nothing is in it.
    pub fn resolve(since: Option<Timestamp>, until: Option<Timestamp>, now: Timestamp) -> Self {
        let until = until.unwrap_or(now.plus_millis(1));
        let since = since.unwrap_or(until.plus_millis(-Self::DEFAULT_DAYS * crate::dispatch::DAY_MS));
        Self { since, until }
    }

    /// The UTC days (as days since 1970) the period touches: `[first, last)`.
    pub fn days(&self) -> (i64, i64) {
        let day = crate::dispatch::DAY_MS;
        (self.since.millis().div_euclid(day), (self.until.millis() + day - 1).div_euclid(day))
    }

    /// A day (`2026-11-01`, midnight UTC) or an instant (RFC 3339).
    pub fn parse_time(field: &str, raw: &str) -> crate::Result<Timestamp> {
        let raw = raw.trim();
        Timestamp::parse(raw).or_else(|| Timestamp::parse(&format!("{raw}T00:00:00Z"))).ok_or_else(|| {
            crate::Error::invalid(field, "invalid_time", "must be a day (2026-11-01) or an RFC 3339 time")
        })
    }
}

impl LoopMetrics {
    pub fn compute(
        period: Period,
        outcomes: &[OutcomeRow],
        agents: Vec<AgentTally>,
        done_per_day: &[(i64, u64)],
    ) -> Self {
        LoopMetrics {
            since: period.since,
            until: period.until,
            velocity: velocity(outcomes),
            hit_rate: hit_rates(outcomes),
            agents: agents.into_iter().map(AgentEfficiency::of).collect(),
            throughput: done_per_day
                .iter()
                .map(|(day, n)| DayCount {
                    day: Timestamp::from_millis(day * crate::dispatch::DAY_MS).to_string()[..10].to_owned(),
                    done: *n,
                })
                .collect(),
        }
    }
}

fn velocity(outcomes: &[OutcomeRow]) -> Velocity {
    // A stage that ends before it starts (a hypothesis made while its signal was still in
    // triage) took no time.
    let span = |from: Option<i64>, to: Option<i64>| Some((to? - from?).max(0));
    let stage = |f: &dyn Fn(&OutcomeRow) -> Option<i64>| Spread::of(outcomes.iter().filter_map(f).collect());
    Velocity {
        signal_to_validated: stage(&|o| {
            span(o.signal_at, Some(o.resolved_at)).filter(|_| o.status == HypothesisStatus::Validated)
        }),
        stages: Stages {
            triage: stage(&|o| span(o.signal_at, o.triaged_at)),
            hypothesis: stage(&|o| span(o.triaged_at.or(o.signal_at), Some(o.hypothesis_at))),
            plan: stage(&|o| span(Some(o.hypothesis_at), o.testing_at)),
            execution: stage(&|o| span(o.testing_at, o.shipped_at)),
            validation: stage(&|o| span(o.shipped_at.or(o.testing_at), Some(o.resolved_at))),
        },
    }
}

fn hit_rates(outcomes: &[OutcomeRow]) -> HitRates {
    let rate = |key: String, rows: &[&OutcomeRow]| {
        let n = |s| rows.iter().filter(|o| o.status == s).count() as u64;
        let (v, i, c) =
            (n(HypothesisStatus::Validated), n(HypothesisStatus::Invalidated), n(HypothesisStatus::Inconclusive));
        HitRate {
            key,
            validated: v,
            invalidated: i,
            inconclusive: c,
            rate: (v + i + c > 0).then(|| v as f64 / (v + i + c) as f64),
        }
    };
    let by = |key: &dyn Fn(&OutcomeRow) -> Option<String>| {
        let mut groups: BTreeMap<String, Vec<&OutcomeRow>> = BTreeMap::new();
        for o in outcomes {
            groups.entry(key(o).unwrap_or_else(|| "none".into())).or_default().push(o);
        }
        groups.into_iter().map(|(k, rows)| rate(k, &rows)).collect()
    };
    HitRates {
        overall: rate("all".into(), &outcomes.iter().collect::<Vec<_>>()),
        by_signal_source: by(&|o| o.signal_source.clone()),
        by_template_version: by(&|o| o.template_version.clone()),
    }
}

impl AgentEfficiency {
    /// From what the store counted for one agent over the period.
    pub fn of(t: AgentTally) -> Self {
        let c = &t.counts;
        let share = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
        // Only what sessions reported: no report is no figure, not zero.
        let per_issue = |total: f64, reported: u64| (reported > 0 && c.done > 0).then(|| total / c.done as f64);
        AgentEfficiency {
            sessions: c.ended + t.open,
            success_rate: share(c.done, c.ended),
            first_attempt_success: share(c.first_done, c.firsts),
            median_duration_ms: t.durations.median(),
            completed_issues: c.done,
            tokens_per_completed_issue: per_issue(c.tokens as f64, c.tokens_reported),
            cost_usd_per_completed_issue: per_issue(c.cost_usd, c.cost_reported),
            agent: t.agent,
        }
    }
}

/// What ended sessions add up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionCounts {
    pub ended: u64,
    /// Sessions that ended done: each completed its issue.
    pub done: u64,
    /// Sessions that were their issue's first attempt, and those of them that ended done.
    pub firsts: u64,
    pub first_done: u64,
    /// Sums of what sessions reported, and how many reported.
    pub tokens: i64,
    pub tokens_reported: u64,
    pub cost_usd: f64,
    pub cost_reported: u64,
}

impl SessionCounts {
    fn add(&mut self, other: &SessionCounts) {
        self.ended += other.ended;
        self.done += other.done;
        self.firsts += other.firsts;
        self.first_done += other.first_done;
        self.tokens += other.tokens;
        self.tokens_reported += other.tokens_reported;
        self.cost_usd += other.cost_usd;
        self.cost_reported += other.cost_reported;
    }
}

/// What one agent's sessions added up to on the days of a period, for durations in one bucket
/// (see [`crate::duration_histogram`]): the rows the store keeps as sessions end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentDayRow {
    pub agent: String,
    pub took_bucket: i64,
    pub counts: SessionCounts,
}

/// What the store counted for one agent over a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentTally {
    pub agent: String,
    /// Sessions still open.
    pub open: u64,
    pub counts: SessionCounts,
    pub durations: DurationHistogram,
}

impl AgentTally {
    /// Each agent's tally, by name, from its rows and its count of open sessions.
    pub fn of_rows(rows: &[AgentDayRow], open: &[(String, u64)]) -> Vec<AgentTally> {
        let mut tallies: BTreeMap<&str, AgentTally> = BTreeMap::new();
        for r in rows {
            let t = tallies.entry(r.agent.as_str()).or_insert_with(|| AgentTally::named(&r.agent));
            t.counts.add(&r.counts);
            t.durations.add(r.took_bucket, r.counts.ended);
        }
        for (agent, n) in open {
            tallies.entry(agent.as_str()).or_insert_with(|| AgentTally::named(agent)).open += n;
        }
        tallies.into_values().filter(|t| t.counts.ended + t.open > 0).collect()
    }

    fn named(agent: &str) -> Self {
        AgentTally { agent: agent.to_owned(), ..AgentTally::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_take_the_nearest_rank() {
        assert_eq!(Spread::of(vec![]), Spread { count: 0, median_ms: None, p90_ms: None });
        let s = Spread::of((1..=10).rev().collect());
        assert_eq!((s.count, s.median_ms, s.p90_ms), (10, Some(5), Some(9)));
    }

    #[test]
    fn hit_rate_counts_validated_out_of_resolved_per_source() {
        let row = |status, source: &str| OutcomeRow {
            status,
            resolved_at: 100,
            signal_source: Some(source.into()),
            template_version: None,
            signal_at: Some(0),
            triaged_at: Some(10),
            hypothesis_at: 20,
            testing_at: Some(30),
            shipped_at: Some(60),
        };
        let rows = [row(HypothesisStatus::Validated, "posthog"), row(HypothesisStatus::Invalidated, "sentry")];
        let h = hit_rates(&rows);
        assert_eq!((h.overall.validated, h.overall.rate), (1, Some(0.5)));
        assert_eq!(h.by_signal_source[0].key, "posthog");
        assert_eq!(h.by_signal_source[0].rate, Some(1.0));
        let v = velocity(&rows);
        assert_eq!(v.signal_to_validated.median_ms, Some(100), "only the validated one counts");
        assert_eq!(
            [v.stages.triage, v.stages.hypothesis, v.stages.plan, v.stages.execution, v.stages.validation]
                .map(|s| s.median_ms.unwrap()),
            [10, 10, 10, 30, 40]
        );
    }

    #[test]
    fn agents_are_tallied_from_their_rows_with_reported_costs_only() {
        use crate::duration_histogram::bucket_of;
        let row = |agent: &str, took: i64, ended, done, firsts, first_done, cost: Option<f64>| AgentDayRow {
            agent: agent.into(),
            took_bucket: bucket_of(took),
            counts: SessionCounts {
                ended,
                done,
                firsts,
                first_done,
                cost_usd: cost.unwrap_or(0.0),
                cost_reported: cost.is_some() as u64,
                ..SessionCounts::default()
            },
        };
        let rows = [
            row("a", 60_000, 1, 0, 1, 0, Some(1.0)),
            row("a", 600_000, 1, 1, 1, 1, None),
            row("b", 60_000, 1, 1, 0, 0, Some(2.0)),
            row("a", 60_000, 0, 0, 0, 0, None),
        ];
        let t = AgentTally::of_rows(&rows, &[("a".into(), 1), ("c".into(), 2)]);
        assert_eq!(t.iter().map(|t| t.agent.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        let a = AgentEfficiency::of(t[0].clone());
        assert_eq!((a.sessions, a.completed_issues, a.success_rate), (3, 1, Some(0.5)), "one still open");
        assert_eq!(a.first_attempt_success, Some(0.5), "first on two issues, one done");
        assert_eq!(a.median_duration_ms, Some(65_000), "the shorter of two, within its bucket");
        assert_eq!(a.cost_usd_per_completed_issue, Some(1.0));
        assert_eq!(a.tokens_per_completed_issue, None, "no session reported tokens");
        let b = AgentEfficiency::of(t[1].clone());
        assert_eq!((b.first_attempt_success, b.success_rate), (None, Some(1.0)), "b never went first");
        let c = AgentEfficiency::of(t[2].clone());
        assert_eq!((c.sessions, c.success_rate, c.median_duration_ms), (2, None, None), "open sessions only");
    }
}
