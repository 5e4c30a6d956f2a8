//! Dispatch from the command line: preview the queue (`next`), claim (`dispatch`), and ask why
//! an issue is or is not handed out (`explain`).

use std::fmt::Write as _;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Ctx;
use super::api::{Api, REQUEST_TIMEOUT, data, issue_path, seg};
use super::args::IssueRef;
use super::error::{About, CliError};
use super::issues::{IssueArg, issue_title};
use super::output::{
    self, BOLD, Mode, Out, PLAIN, Table, ago, arr, cell, col, emit, flex_col, float, int, num_col, opt, s,
    status_style, timestamp,
};

pub const DISPATCH_EXAMPLES: &str = "\
Examples:
  loop dispatch                          claim the highest-scoring eligible issue
  loop dispatch 42                       claim #42 (fails with the reasons if it is not eligible)
  loop dispatch --agent ci-bot --wait 30 wait up to 30 s for work, as agent ci-bot
  loop dispatch --prompt-only | my-agent feed the prompt to an agent
  loop dispatch --json | jq -r .prompt
Finish with `loop done <n> --summary …`. Nothing to claim: exit 0, and `null` with --json.";

#[derive(Args, Debug)]
pub struct NextArgs {
    /// Only issues of this project (name or id).
    #[arg(long, short)]
    pub project: Option<String>,
    /// How many of the queue's head to show (1–200).
    #[arg(long, short = 'n', default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub limit: u32,
}

#[derive(Args, Debug)]
pub struct DispatchArgs {
    #[command(subcommand)]
    pub action: Option<DispatchAction>,
    /// Claim this issue (number or id) instead of the queue's head.
    pub issue: Option<IssueRef>,
    /// Only issues of this project (name or id).
    #[arg(long, short)]
    pub project: Option<String>,
    /// Claim as this agent (sent as X-Loop-Agent; default: the key's name).
    #[arg(long)]
    pub agent: Option<String>,
    /// Seconds to wait for work when the queue is empty (0–60).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub wait: Option<u64>,
    /// Identifies this claim request: running again with the same key returns the same claim
    /// instead of a second issue. [default: a new key every run]
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Print only the prompt (for piping into an agent).
    #[arg(long, conflicts_with = "json")]
    pub prompt_only: bool,
}

#[derive(Subcommand, Debug)]
pub enum DispatchAction {
    /// The dispatch queue (same as `loop next`).
    Queue(NextArgs),
}

pub async fn next(a: NextArgs, ctx: &Ctx) -> Result<(), CliError> {
    let mut q = format!("limit={}&offset=0", a.limit);
    if let Some(p) = &a.project {
        q.push_str(&format!("&projectId={}", seg(&ctx.api.project_id(p).await?)));
    }
    let page = ctx.api.get(&format!("/api/dispatch/queue?{q}")).await?;
    if ctx.out.mode == Mode::Json {
        emit(&output::json(&page));
        return Ok(());
    }
    let rows = arr(&page["data"]);
    let total = page["total"].as_u64().unwrap_or(rows.len() as u64);
    let mut o = String::new();
    if ctx.out.human() {
        if rows.is_empty() {
            o.push_str(&empty_queue(&ctx.api, &ctx.out).await);
            emit(&o);
            return Ok(());
        }
        o.push_str(&ctx.out.para(
            &format!("{total} issue{} ready to dispatch.", if total == 1 { "" } else { "s" }),
            0,
            BOLD,
        ));
        o.push_str(&ctx.out.note("Score = priority + goal bonus + age (days in todo) + type.", 0));
        o.push('\n');
    }
    let mut t = if ctx.out.human() {
        Table::new(vec![
            num_col("#"),
            num_col("SCORE"),
            col("PRIORITY"),
            num_col("GOAL"),
            num_col("AGE"),
            col("TYPE"),
            flex_col("TITLE"),
        ])
    } else {
        Table::new(vec![
            col("#"),
            col("SCORE"),
            col("PRIORITY"),
            col("GOAL"),
            col("AGE"),
            col("TYPE"),
            col("TITLE"),
            col("ID"),
        ])
    };
    for (rank, e) in rows.iter().enumerate() {
        let i = &e["issue"];
        let b = &e["breakdown"];
        let n = |k: &str| float(b, k).map(output::number).unwrap_or_default();
        let prio = int(i, "priority").unwrap_or(0);
        let age = n("ageBonus");
        let number = cell(int(i, "number").map(|n| n.to_string()).unwrap_or_default(), BOLD);
        let score = cell(
            float(e, "score").map(output::number).unwrap_or_default(),
            if rank == 0 { output::GREEN.bold() } else { PLAIN },
        );
        let row = if ctx.out.human() {
            vec![
                number,
                score,
                cell(format!("{:>3} {}", n("priorityWeight"), output::priority_label(prio)), PLAIN),
                cell(n("goalBonus"), PLAIN),
                cell(format!("{age}d"), PLAIN),
                cell(format!("{:>2} {}", n("typeBonus"), s(i, "type")), PLAIN),
                s(i, "title").into(),
            ]
        } else {
            vec![
                number,
                score,
                n("priorityWeight").into(),
                n("goalBonus").into(),
                age.into(),
                n("typeBonus").into(),
                s(i, "title").into(),
                s(i, "id").into(),
            ]
        };
        t.row(row);
    }
    o.push_str(&t.render(&ctx.out));
    if ctx.out.human() {
        let shown = rows.len() as u64;
        let more = if shown < total { format!("{} more · ", total - shown) } else { String::new() };
        o.push_str(
            &ctx.out.note(&format!("{more}Claim the first with: loop dispatch · why not #N: loop explain N"), 0),
        );
    }
    emit(&o);
    Ok(())
}

/// Why the queue is empty, in numbers.
async fn empty_queue(api: &Api, out: &Out) -> String {
    let count = |status: &'static str| {
        let api = api.clone();
        async move { api.get(&format!("/api/issues?status={status}&limit=1")).await.ok().and_then(|v| v["total"].as_u64()) }
    };
    let (todo, triage, backlog, progress) =
        tokio::join!(count("todo"), count("triage"), count("backlog"), count("in_progress"));
    let mut parts = Vec::new();
    if let Some(n) = todo.filter(|n| *n > 0) {
        parts.push(format!("{n} todo (all blocked)"));
    }
    if let Some(n) = progress.filter(|n| *n > 0) {
        parts.push(format!("{n} in progress"));
    }
    if let Some(n) = triage.filter(|n| *n > 0) {
        parts.push(format!("{n} in triage (loop triage)"));
    }
    if let Some(n) = backlog.filter(|n| *n > 0) {
        parts.push(format!("{n} in backlog"));
    }
    let mut o = format!("{}\n", out.bold("Nothing is ready to dispatch."));
    if !parts.is_empty() {
        o.push_str(&out.note(&format!("{}.", parts.join(" · ")), 2));
    }
    o.push_str(&out.note(
        "Only todo issues without open blockers are dispatched: loop update <n> --status todo · loop explain <n>",
        2,
    ));
    o
}

pub async fn dispatch(a: DispatchArgs, ctx: &Ctx) -> Result<(), CliError> {
    if let Some(DispatchAction::Queue(q)) = a.action {
        return next(q, ctx).await;
    }
    let timeout = REQUEST_TIMEOUT + Duration::from_secs(a.wait.unwrap_or(0));
    let mut api = Api::with_timeout(&ctx.conn, timeout);
    if let Some(agent) = &a.agent {
        api = api.with_agent(agent)?;
    }
    // A key per run: the client's own retries of this request get this claim back, never a
    // second issue.
    let key = a.idempotency_key.clone().unwrap_or_else(new_key);
    api = api.with_header("Idempotency-Key", &key)?;
    let body = match &a.issue {
        Some(r) => api.post(&format!("{}/dispatch", issue_path(r)), json!({})).await.about(r.label())?,
        None => {
            let mut q = Vec::new();
            if let Some(p) = &a.project {
                q.push(format!("projectId={}", seg(&ctx.api.project_id(p).await?)));
            }
            if let Some(w) = a.wait {
                q.push(format!("wait={w}"));
            }
            let path = if q.is_empty() {
                "/api/dispatch/next".to_owned()
            } else {
                format!("/api/dispatch/next?{}", q.join("&"))
            };
            api.get(&path).await?
        }
    };
    if body.is_null() {
        match ctx.out.mode {
            Mode::Json => emit("null"),
            Mode::Plain => {}
            Mode::Human if a.prompt_only => {}
            Mode::Human => emit(&empty_queue(&ctx.api, &ctx.out).await),
        }
        if a.prompt_only {
            eprintln!("Nothing is ready to dispatch.");
        }
        return Ok(());
    }
    let claim = data(body);
    if a.prompt_only {
        emit(s(&claim, "prompt"));
        return Ok(());
    }
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&claim)),
        Mode::Plain => {
            let i = &claim["issue"];
            let sess = &claim["session"];
            emit(&format!(
                "{}\t{}\t{}\t{}\t{}",
                int(i, "number").unwrap_or(0),
                s(i, "id"),
                s(sess, "id"),
                s(sess, "leaseExpiresAt"),
                s(i, "title")
            ));
        }
        Mode::Human => emit(&render_claim(&claim, &ctx.out)),
    }
    Ok(())
}

fn new_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("loop-cli-{}", hex::encode(bytes))
}

fn render_claim(c: &Value, out: &Out) -> String {
    let i = &c["issue"];
    let mut o = String::new();
    let prio = int(i, "priority").unwrap_or(0);
    o.push_str(&out.para(
        &format!(
            "Claimed {}  ({} · {} · {})",
            issue_title(i, out),
            s(i, "type"),
            output::priority_label(prio),
            s(i, "status")
        ),
        0,
        PLAIN,
    ));
    let sess = &c["session"];
    let mut f = output::Fields::new();
    if sess.is_object() {
        f.add("session", s(sess, "id"));
        f.add("agent", s(sess, "agent"));
        let lease = s(sess, "leaseExpiresAt");
        f.add("lease", format!("until {} ({})", timestamp(lease), ago(lease)));
    }
    let meta = &c["meta"];
    if meta.is_object() {
        f.add("template", format!("{} v{}", s(meta, "templateSlug"), int(meta, "versionNumber").unwrap_or(0)));
    }
    o.push_str(&f.render(out));
    let n = int(i, "number").map(|n| n.to_string()).unwrap_or_else(|| s(i, "id").to_owned());
    match opt(c, "prompt") {
        Some(p) => {
            let rule = "─".repeat(out.width.clamp(20, 100));
            let _ = writeln!(o, "\n{}", out.dim(&rule));
            o.push_str(p);
            if !p.ends_with('\n') {
                o.push('\n');
            }
            let _ = writeln!(o, "{}", out.dim(&rule));
        }
        None => {
            let _ = writeln!(o, "\n{}", out.paint(output::YELLOW, "No template matched this issue: no prompt."));
        }
    }
    o.push_str(&out.note(&format!("When finished: loop done {n} --summary \"…\"   (or loop cancel {n})"), 0));
    o
}

pub async fn explain(a: IssueArg, ctx: &Ctx) -> Result<(), CliError> {
    let x = data(ctx.api.get(&format!("/api/dispatch/explain/{}", seg(a.issue.key()))).await.about(a.issue.label())?);
    match ctx.out.mode {
        Mode::Json => emit(&output::json(&x)),
        Mode::Plain => {
            let i = &x["issue"];
            let mut f = output::Fields::new();
            f.add("number", int(i, "number").map(|n| n.to_string()).unwrap_or_default());
            f.add("eligible", x["eligible"].as_bool().unwrap_or(false).to_string());
            f.add("score", float(&x, "score").map(|v| v.to_string()).unwrap_or_default());
            f.add("position", int(&x, "position").map(|n| n.to_string()).unwrap_or_default());
            for r in arr(&x["reasons"]) {
                f.add("reason", r.as_str().unwrap_or_default());
            }
            emit(&f.render(&ctx.out));
        }
        Mode::Human => emit(&render_explain(&x, &ctx.out)),
    }
    Ok(())
}

fn render_explain(x: &Value, out: &Out) -> String {
    let i = &x["issue"];
    let mut o = String::new();
    let status = s(i, "status");
    o.push_str(&out.para(&format!("{} ({})", issue_title(i, out), out.paint(status_style(status), status)), 0, PLAIN));
    if x["eligible"].as_bool() == Some(true) {
        let pos = int(x, "position").map(|p| format!(": position {p} in the queue")).unwrap_or_default();
        let _ = writeln!(o, "{}", out.paint(output::GREEN.bold(), &format!("Eligible for dispatch{pos}.")));
    } else {
        let _ = writeln!(o, "{}", out.paint(output::RED.bold(), "Not eligible for dispatch:"));
        for r in arr(&x["reasons"]) {
            let text = output::wrap(&format!("• {}", r.as_str().unwrap_or_default()), out.width, 2);
            // Continuation lines line up under the text, not the bullet.
            for (k, line) in text.lines().enumerate() {
                let _ = writeln!(o, "{}{}", if k == 0 { "" } else { "  " }, line);
            }
        }
    }
    let lease = &x["lease"];
    if lease.is_object() {
        o.push('\n');
        o.push_str(&out.para(
            &format!(
                "{} {} since {}, lease until {} ({})",
                out.heading("Claimed"),
                out.bold(s(lease, "agent")),
                ago(s(lease, "claimedAt")),
                timestamp(s(lease, "leaseExpiresAt")),
                ago(s(lease, "leaseExpiresAt"))
            ),
            0,
            PLAIN,
        ));
    }
    let b = &x["breakdown"];
    if let Some(score) = float(x, "score") {
        let n = |k: &str| float(b, k).map(output::number).unwrap_or_else(|| "0".into());
        let _ = writeln!(
            o,
            "\n{} {} = priority {} + goal {} + age {} + type {}",
            out.heading("Score"),
            out.bold(&output::number(score)),
            n("priorityWeight"),
            n("goalBonus"),
            n("ageBonus"),
            n("typeBonus"),
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explanation_reads_as_sentences() {
        let out = Out { mode: Mode::Human, color: false, width: 80 };
        let x = json!({
            "issue": {"number": 2, "title": "B", "status": "todo"},
            "eligible": false,
            "reasons": ["blocked by #1 (todo): A"],
            "blockers": [{"number": 1, "title": "A", "status": "todo"}],
            "score": 30,
            "breakdown": {"priorityWeight": 10, "goalBonus": 0, "ageBonus": 0, "typeBonus": 20},
        });
        let text = render_explain(&x, &out);
        assert!(text.contains("Not eligible for dispatch:\n  • blocked by #1 (todo): A"), "{text}");
        assert!(text.contains("Score 30 = priority 10 + goal 0 + age 0 + type 20"), "{text}");
    }
}
