//! The load a cell puts on the nodes: closed-loop clients over loopback, each with its own
//! `X-Loop-Agent`, doing what agents and planners do, timing every request.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::infra::KEY;

/// What each client of a cell does, over and over.
#[derive(clap::ValueEnum, serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Claim the next issue (with its hydrated prompt), and nothing else.
    Claim,
    /// Claim, then report it done (`PATCH` with a summary and a commit): an agent's cycle.
    Cycle,
    /// Claim, heartbeat, comment, report done: an agent that shows its work.
    Working,
    /// Create an issue with a label; every second one is blocked by the client's previous one.
    Create,
    /// Read the loop metrics of the last 30 days, as the dashboard's metrics page does: its cost
    /// follows the sessions and outcomes of the period, not the history.
    Metrics,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Claim => "claim",
            Kind::Cycle => "cycle",
            Kind::Working => "working",
            Kind::Create => "create",
            Kind::Metrics => "metrics",
        }
    }

    /// Whether each unit takes an issue from the ready queue (so a cell is limited by it).
    pub fn claims(self) -> bool {
        !matches!(self, Kind::Create | Kind::Metrics)
    }
}

/// What the clients of a cell did.
pub struct Outcome {
    /// Units completed (claims, cycles or creates).
    pub units: usize,
    /// Claims that found the queue empty.
    pub empty: usize,
    pub elapsed: Duration,
    /// Every request's latency, by operation.
    pub latencies: BTreeMap<&'static str, Vec<Duration>>,
    /// Issues claimed, one entry per claim.
    pub claimed: Vec<String>,
}

/// A client of one node.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    agent: String,
    /// Labels to put on created issues.
    labels: Arc<Vec<String>>,
}

/// One client's tally.
#[derive(Default)]
struct Tally {
    units: usize,
    empty: usize,
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    claimed: Vec<String>,
    /// The client's last created issue (for the next relation).
    last_created: Option<String>,
}

impl Client {
    /// Sends one request and times it; an answer other than 2xx is an error naming it.
    async fn send(
        &self,
        tally: &mut Tally,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(KEY)
            .header("X-Loop-Agent", &self.agent);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if op == "claim" {
            req = req.header("Idempotency-Key", format!("{}-{}", self.agent, tally.units + tally.empty));
        }
        let started = Instant::now();
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        tally.latencies.entry(op).or_default().push(started.elapsed());
        match status.as_u16() {
            204 => Ok(None),
            200..=299 => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("{op}: the body is not JSON"))?))
            }
            s => bail!("{op} {path}: HTTP {s}: {}", String::from_utf8_lossy(&bytes)),
        }
    }

    /// One claim: the issue's id and the session's, or `None` when the queue is empty. Checks
    /// that the claim carries a prompt.
    async fn claim(&self, tally: &mut Tally) -> Result<Option<(String, String)>> {
        let Some(body) = self.send(tally, "claim", Method::GET, "/api/dispatch/next", None).await? else {
            tally.empty += 1;
            return Ok(None);
        };
        if body["prompt"].is_null() {
            bail!("a claim came back without a prompt: {}", body["meta"]);
        }
        let issue = body["issue"]["id"].as_str().context("a claim without an issue id")?.to_owned();
        let session = body["session"]["id"].as_str().context("a claim without a session id")?.to_owned();
        tally.claimed.push(issue.clone());
        Ok(Some((issue, session)))
    }

    async fn done(&self, tally: &mut Tally, issue: &str) -> Result<()> {
        let report = json!({ "status": "done", "agentSummary": "Fixed it; the tests pass.",
            "commits": [{ "sha": "0123abc", "message": "fix: the thing" }] });
        self.send(tally, "done", Method::PATCH, &format!("/api/issues/{issue}"), Some(report)).await.map(drop)
    }

    /// One unit of `kind`; false when the queue was empty.
    async fn unit(&self, kind: Kind, tally: &mut Tally) -> Result<bool> {
        if kind == Kind::Create {
            let label = &self.labels[tally.units % self.labels.len()];
            let new = json!({ "title": "Created by the bench", "type": "task", "labelIds": [label] });
            let created = self.send(tally, "create", Method::POST, "/api/issues", Some(new)).await?;
            let id =
                created.as_ref().and_then(|c| c["data"]["id"].as_str()).context("a create without an id")?.to_owned();
            if let Some(previous) = tally.last_created.take() {
                let relation = json!({ "type": "blocked_by", "relatedIssueId": previous });
                self.send(tally, "relate", Method::POST, &format!("/api/issues/{id}/relations"), Some(relation))
                    .await?;
            } else {
                tally.last_created = Some(id);
            }
            return Ok(true);
        }
        if kind == Kind::Metrics {
            self.send(tally, "metrics", Method::GET, "/api/metrics", None).await?;
            return Ok(true);
        }
        let Some((issue, session)) = self.claim(tally).await? else { return Ok(false) };
        if kind == Kind::Working {
            self.send(tally, "heartbeat", Method::POST, &format!("/api/sessions/{session}/heartbeat"), None).await?;
            let note = json!({ "body": "Found the cause; writing the fix." });
            self.send(tally, "comment", Method::POST, &format!("/api/issues/{issue}/comments"), Some(note)).await?;
        }
        if kind != Kind::Claim {
            self.done(tally, &issue).await?;
        }
        Ok(true)
    }
}

/// Labels for created issues, made on the cell's database before it is measured.
pub async fn labels(http: &reqwest::Client, url: &str) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for name in ["bench-bug", "bench-feature", "bench-chore"] {
        let resp = http
            .post(format!("{url}/api/labels"))
            .bearer_auth(KEY)
            .json(&json!({ "name": name, "color": "#e03131" }))
            .send()
            .await?;
        let body: Value = resp.error_for_status()?.json().await?;
        ids.push(body["data"]["id"].as_str().context("a label without an id")?.to_owned());
    }
    Ok(ids)
}

/// A few units on every node first (connections, caches, compiled templates), not measured.
pub async fn warm_up(
    kind: Kind,
    http: &reqwest::Client,
    urls: &[String],
    labels: &Arc<Vec<String>>,
    units: usize,
) -> Result<Outcome> {
    let mut tally = Tally::default();
    for i in 0..units {
        let client = Client {
            http: http.clone(),
            url: urls[i % urls.len()].clone(),
            agent: "warmup".into(),
            labels: labels.clone(),
        };
        if client.unit(kind, &mut tally).await? {
            tally.units += 1;
        }
    }
    Ok(Outcome {
        units: tally.units,
        empty: tally.empty,
        elapsed: Duration::ZERO,
        latencies: tally.latencies,
        claimed: tally.claimed,
    })
}

/// `clients` closed-loop clients, spread over `urls` in turn, doing `units` units of `kind`
/// between them.
pub async fn drive(
    kind: Kind,
    http: &reqwest::Client,
    urls: &[String],
    labels: Arc<Vec<String>>,
    clients: usize,
    units: usize,
) -> Result<Outcome> {
    let remaining = Arc::new(AtomicIsize::new(units as isize));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..clients {
        let client = Client {
            http: http.clone(),
            url: urls[w % urls.len()].clone(),
            agent: format!("bench-{w}"),
            labels: labels.clone(),
        };
        let remaining = remaining.clone();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while remaining.fetch_sub(1, Ordering::SeqCst) > 0 {
                if client.unit(kind, &mut tally).await? {
                    tally.units += 1;
                }
            }
            anyhow::Ok(tally)
        });
    }
    let mut out =
        Outcome { units: 0, empty: 0, elapsed: Duration::ZERO, latencies: BTreeMap::new(), claimed: Vec::new() };
    for tally in tasks.join_all().await {
        let tally = tally?;
        out.units += tally.units;
        out.empty += tally.empty;
        out.claimed.extend(tally.claimed);
        for (op, l) in tally.latencies {
            out.latencies.entry(op).or_default().extend(l);
        }
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

/// How many claims handed out an issue already handed out.
pub fn double_claims<'a>(claimed: impl Iterator<Item = &'a String>) -> usize {
    let mut seen = HashSet::new();
    claimed.filter(|id| !seen.insert(*id)).count()
}

/// The `total` of `GET /api/issues?{query}&limit=1`.
pub async fn count_issues(http: &reqwest::Client, url: &str, query: &str) -> Result<u64> {
    let body: Value =
        http.get(format!("{url}/api/issues?{query}&limit=1")).bearer_auth(KEY).send().await?.json().await?;
    body["total"].as_u64().context("no total")
}
