//! The runner's guardrails: budgets counted from the server's own session records (so a
//! restart resets nothing), and the no-progress breaker that hands an issue to a person.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::CliError;
use crate::cli::api::{Api, data, seg};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The label an issue gets when attempts at it keep failing, unless the server's settings
/// (`labels.needsHumanReview`) name another or none.
const NEEDS_HUMAN: &str = "needs-human-review";

#[derive(Debug, Clone, Copy, Default)]
pub struct Budgets {
    pub runs_per_hour: Option<u32>,
    pub cost_per_day: Option<f64>,
}

/// `None` when another run fits the budgets; else why not, and how long until it would.
pub async fn over_budget(
    api: &Api,
    name: &str,
    b: Budgets,
    now_ms: i64,
) -> Result<Option<(String, Duration)>, CliError> {
    if b.runs_per_hour.is_none() && b.cost_per_day.is_none() {
        return Ok(None);
    }
    // This agent's sessions of the last day, newest first: (claimed at, cost).
    let mut recent: Vec<(i64, f64)> = Vec::new();
    'pages: for offset in (0..).step_by(200) {
        let page = api.get(&format!("/api/sessions?agent={}&limit=200&offset={offset}", seg(name))).await?;
        let rows = page["data"].as_array().cloned().unwrap_or_default();
        for s in &rows {
            let claimed = millis(&s["claimedAt"]).unwrap_or(now_ms);
            if claimed < now_ms - DAY_MS {
                break 'pages;
            }
            recent.push((claimed, s["costUsd"].as_f64().unwrap_or(0.0)));
        }
        if rows.len() < 200 {
            break;
        }
    }
    if let Some(limit) = b.runs_per_hour {
        let in_hour: Vec<i64> = recent.iter().map(|r| r.0).filter(|&t| t >= now_ms - HOUR_MS).collect();
        if in_hour.len() as u32 >= limit {
            let oldest = in_hour.iter().min().copied().unwrap_or(now_ms);
            let wait = (oldest + HOUR_MS - now_ms).max(1000) as u64;
            return Ok(Some((
                format!("{} runs in the last hour (--max-runs-per-hour {limit})", in_hour.len()),
                Duration::from_millis(wait),
            )));
        }
    }
    if let Some(limit) = b.cost_per_day {
        let spent: f64 = recent.iter().map(|r| r.1).sum();
        if spent >= limit {
            let oldest = recent.iter().filter(|r| r.1 > 0.0).map(|r| r.0).min().unwrap_or(now_ms);
            let wait = (oldest + DAY_MS - now_ms).max(1000) as u64;
            return Ok(Some((
                format!("${spent:.2} spent in the last 24 hours (--max-cost-per-day {limit})"),
                Duration::from_millis(wait),
            )));
        }
    }
    Ok(None)
}

fn millis(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok().map(|t| t.timestamp_millis())
}

/// After a failed attempt: when the issue's last `max_attempts` attempts all failed, it goes
/// back to the backlog (where dispatch leaves it until a person moves it) with the label the
/// server's settings name for this (`needs-human-review` by default). Returns what it did.
pub async fn trip_breaker(api: &Api, issue_id: &str, max_attempts: u32) -> Result<Option<String>, CliError> {
    let path = format!("/api/issues/{}", seg(issue_id));
    let sessions = data(api.get(&format!("{path}/sessions")).await?);
    let failed_in_a_row =
        sessions.as_array().into_iter().flatten().rev().take_while(|s| s["outcome"] == "failed").count();
    if (failed_in_a_row as u32) < max_attempts {
        return Ok(None);
    }
    // A server without settings (an older one) gets the default name.
    let name = match api.get("/api/settings").await {
        Ok(settings) => data(settings)["labels"]["needsHumanReview"].as_str().map(str::to_owned),
        Err(_) => Some(NEEDS_HUMAN.to_owned()),
    };
    let issue = data(api.get(&path).await?);
    let mut ids: Vec<Value> = issue["labels"].as_array().into_iter().flatten().map(|l| l["id"].clone()).collect();
    let mut labelled = None;
    if let Some(name) = &name {
        let label = match api.label(name).await {
            Ok(l) => Some(l),
            // A key that may not make labels (an agent token) moves the issue without it.
            Err(_) => api.post("/api/labels", json!({ "name": name, "color": "#c92a2a" })).await.ok().map(data),
        };
        if let Some(label) = label {
            if !ids.contains(&label["id"]) {
                ids.push(label["id"].clone());
            }
            labelled = Some(name);
        }
    }
    api.patch(&path, json!({ "status": "backlog", "labelIds": ids })).await?;
    let what = match (&name, labelled) {
        (_, Some(n)) => format!("moved to the backlog with the label {n}"),
        (Some(n), None) => {
            format!("moved to the backlog (no label {n}: it does not exist and this key may not make it)")
        }
        (None, None) => "moved to the backlog".to_owned(),
    };
    let body = format!(
        "The last {failed_in_a_row} attempts failed (--max-attempts {max_attempts}): {what}. Move it back to \
         todo when it is ready for another try."
    );
    api.post(&format!("{path}/comments"), json!({ "body": body, "authorName": "loop agent", "authorType": "agent" }))
        .await?;
    Ok(Some(what))
}
