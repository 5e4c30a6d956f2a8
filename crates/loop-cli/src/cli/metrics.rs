//! `loop metrics`, `loop changelog` and `loop resolve`: how the loop is doing, what it changed
//! and why, and a person's verdict on a hypothesis.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use loop_core::Timestamp;
use loop_core::changelog::{self, ChangeGroup};
use loop_core::metrics::{Spread, duration_text as hours};
use serde_json::{Value, json};

use super::Ctx;
use super::api::{data, issue_path, seg};
use super::args::IssueRef;
use super::error::CliError;
use super::output::{self, Mode, emit};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  loop metrics\n  loop metrics --since 2026-11-01 --until 2026-12-01\n\n\
                        With --json: the API's body ({since, until, velocity, hitRate, agents, throughput}).")]
pub struct MetricsArgs {
    /// Start of the period: a day (2026-11-01) or an RFC 3339 time. Default: 30 days before --until.
    #[arg(long)]
    pub since: Option<String>,
    /// End of the period (excluded). Default: now.
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Md,
    Json,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  loop changelog --since 2026-11-01\n  loop changelog --since 2026-11-01 --format json"
)]
pub struct ChangelogArgs {
    /// Changes completed since: a day (2026-11-01) or an RFC 3339 time. Default: 30 days ago.
    #[arg(long)]
    pub since: Option<String>,
    /// Markdown (default) or JSON (also with --json).
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Verdict {
    Validated,
    Invalidated,
    Inconclusive,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  loop resolve 35 validated --reason \"conversion back to 3.4% for a week\"")]
pub struct ResolveArgs {
    /// The hypothesis issue (number or id).
    pub issue: IssueRef,
    /// The verdict.
    #[arg(value_enum)]
    pub verdict: Verdict,
    /// Why: what was observed.
    #[arg(long)]
    pub reason: String,
}

fn query(pairs: &[(&str, &Option<String>)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", seg(v.trim())))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

pub async fn metrics(a: MetricsArgs, ctx: &Ctx) -> Result<(), CliError> {
    let body = ctx.api.get(&format!("/api/metrics{}", query(&[("since", &a.since), ("until", &a.until)]))).await?;
    let m = data(body);
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&m));
        return Ok(());
    }
    let mut o = String::new();
    let day = |v: &Value| v.as_str().map_or(String::new(), |s| s.chars().take(10).collect());
    writeln!(o, "{}", ctx.out.heading(&format!("Loop metrics {} → {}", day(&m["since"]), day(&m["until"])))).ok();
    let spread = |v: &Value| match serde_json::from_value::<Spread>(v.clone()) {
        Ok(s) if s.count > 0 => format!(
            "median {}, p90 {} ({} chains)",
            hours(s.median_ms.unwrap_or(0)),
            hours(s.p90_ms.unwrap_or(0)),
            s.count
        ),
        _ => "no data".into(),
    };
    writeln!(o, "\nVelocity, signal → validated: {}", spread(&m["velocity"]["signalToValidated"])).ok();
    for stage in ["triage", "hypothesis", "plan", "execution", "validation"] {
        writeln!(o, "  {stage:<11} {}", spread(&m["velocity"]["stages"][stage])).ok();
    }
    let rate = |r: &Value| match r["rate"].as_f64() {
        Some(x) => format!(
            "{:.0}% ({} validated, {} invalidated, {} inconclusive)",
            x * 100.0,
            r["validated"],
            r["invalidated"],
            r["inconclusive"]
        ),
        None => "no hypothesis resolved".into(),
    };
    writeln!(o, "\nHypothesis hit rate: {}", rate(&m["hitRate"]["overall"])).ok();
    for (title, key) in [("by signal source", "bySignalSource"), ("by template version", "byTemplateVersion")] {
        for r in output::arr(&m["hitRate"][key]) {
            writeln!(o, "  {title} {}: {}", r["key"].as_str().unwrap_or(""), rate(r)).ok();
        }
    }
    writeln!(o, "\nAgents:").ok();
    let agents = output::arr(&m["agents"]);
    if agents.is_empty() {
        writeln!(o, "  no sessions in this period").ok();
    }
    let pct = |v: &Value| v.as_f64().map_or("–".into(), |x| format!("{:.0}%", x * 100.0));
    for a in agents {
        writeln!(
            o,
            "  {}: {} sessions, {} succeeded, {} first time, median {}, {} issues done{}",
            a["agent"].as_str().unwrap_or(""),
            a["sessions"],
            pct(&a["successRate"]),
            pct(&a["firstAttemptSuccess"]),
            a["medianDurationMs"].as_i64().map_or("–".into(), hours),
            a["completedIssues"],
            a["costUsdPerCompletedIssue"].as_f64().map_or(String::new(), |c| format!(", ${c:.2} per issue")),
        )
        .ok();
    }
    let days = output::arr(&m["throughput"]);
    let total: u64 = days.iter().filter_map(|d| d["done"].as_u64()).sum();
    writeln!(o, "\nThroughput: {total} issues done on {} days", days.len()).ok();
    for d in days {
        writeln!(o, "  {} {}", d["day"].as_str().unwrap_or(""), d["done"]).ok();
    }
    emit(&o);
    Ok(())
}

pub async fn changelog(a: ChangelogArgs, ctx: &Ctx) -> Result<(), CliError> {
    let body = ctx.api.get(&format!("/api/changelog{}", query(&[("since", &a.since)]))).await?;
    let groups = data(body);
    if ctx.out.mode == Mode::Json || matches!(a.format, Format::Json) {
        emit(&output::json(&groups));
        return Ok(());
    }
    let groups: Vec<ChangeGroup> = serde_json::from_value(groups)
        .map_err(|e| CliError::Failed(format!("the server's changelog is not in the expected shape: {e}")))?;
    let since = match &a.since {
        Some(s) => loop_core::metrics::Period::parse_time("since", s).map_err(|e| CliError::Usage(e.to_string()))?,
        None => groups.first().and_then(|g| g.changes.first()).map_or(Timestamp::from_millis(0), |c| c.completed_at),
    };
    emit(&changelog::markdown(&groups, since));
    Ok(())
}

pub async fn resolve(a: ResolveArgs, ctx: &Ctx) -> Result<(), CliError> {
    let verdict = match a.verdict {
        Verdict::Validated => "validated",
        Verdict::Invalidated => "invalidated",
        Verdict::Inconclusive => "inconclusive",
    };
    let path = format!("{}/hypothesis/resolve", issue_path(&a.issue));
    let issue = data(ctx.api.post(&path, json!({ "status": verdict, "reason": a.reason })).await?);
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&issue));
    } else {
        emit(&format!("#{} {}: {verdict} ({})\n", issue["number"], issue["title"].as_str().unwrap_or(""), a.reason));
    }
    Ok(())
}
