//! `loop status`: one screen composed from the API — the queue, work in progress with its
//! leases, goal progress, and prompt health.

use std::collections::HashMap;
use std::fmt::Write as _;

use clap::Args;
use serde_json::{Value, json};

use super::Ctx;
use super::api::Api;
use super::error::CliError;
use super::output::{self, BOLD, DIM, Mode, PLAIN, Table, ago, arr, cell, col, emit, flex_col, float, int, num_col, s};
use super::projects::{progress, progress_bar, progress_text};
use super::templates::{score_style, with_active_versions};

#[derive(Args, Debug)]
#[command(after_help = "With --json: {url, issues: {<status>: count}, queue: {total, head}, sessions: {data, total}, \
                        inProgress: [issues], goals: [goals], templates: [templates with activeVersion]}.")]
pub struct StatusArgs {
    /// How many of the queue's head to show.
    #[arg(long, short = 'n', default_value_t = 3)]
    pub queue: u32,
}

const STATUSES: [&str; 6] = ["triage", "backlog", "todo", "in_progress", "done", "canceled"];

async fn count(api: &Api, status: &str) -> Result<u64, CliError> {
    let v = api.get(&format!("/api/issues?status={status}&limit=1")).await?;
    Ok(v["total"].as_u64().unwrap_or(0))
}

pub async fn run(a: StatusArgs, ctx: &Ctx) -> Result<(), CliError> {
    let api = &ctx.api;
    let limit = a.queue.clamp(1, 200);
    let counts = async {
        let (a, b, c, d, e, f) = tokio::join!(
            count(api, STATUSES[0]),
            count(api, STATUSES[1]),
            count(api, STATUSES[2]),
            count(api, STATUSES[3]),
            count(api, STATUSES[4]),
            count(api, STATUSES[5]),
        );
        Ok::<_, CliError>([a?, b?, c?, d?, e?, f?])
    };
    let queue_path = format!("/api/dispatch/queue?limit={limit}");
    let (counts, queue, sessions, in_progress, goals, templates) = tokio::join!(
        counts,
        api.get(&queue_path),
        api.get("/api/sessions?open=true&limit=200"),
        api.all("/api/issues?status=in_progress"),
        api.all("/api/goals"),
        with_active_versions(api),
    );
    let counts = counts?;
    let queue = queue?;
    // A server without sessions still has a status screen.
    let sessions = sessions.unwrap_or_else(|_| json!({ "data": [], "total": 0 }));
    let in_progress = in_progress?;
    let goals = goals?;
    let templates = templates?;

    if ctx.out.mode == Mode::Json {
        let issues: serde_json::Map<String, Value> =
            STATUSES.iter().zip(counts).map(|(k, n)| (k.to_string(), json!(n))).collect();
        emit(&output::json(&json!({
            "url": ctx.conn.url,
            "issues": issues,
            "queue": { "total": queue["total"], "head": queue["data"] },
            "sessions": sessions,
            "inProgress": in_progress,
            "goals": goals,
            "templates": templates,
        })));
        return Ok(());
    }
    if ctx.out.mode == Mode::Plain {
        let mut o = String::new();
        for (k, n) in STATUSES.iter().zip(counts) {
            let _ = writeln!(o, "issues.{k}\t{n}");
        }
        let _ = writeln!(o, "queue\t{}", queue["total"].as_u64().unwrap_or(0));
        let _ = writeln!(o, "sessions.open\t{}", sessions["total"].as_u64().unwrap_or(0));
        for g in &goals {
            let pct = progress(g).map(|f| format!("{:.0}", f * 100.0)).unwrap_or_default();
            let _ = writeln!(o, "goal\t{}\t{}\t{pct}", s(g, "id"), s(g, "title"));
        }
        for t in &templates {
            let v = &t["activeVersion"];
            let score = float(v, "reviewScore").map(|x| x.to_string()).unwrap_or_default();
            let _ = writeln!(
                o,
                "template\t{}\t{}\t{score}\t{}",
                s(t, "slug"),
                int(v, "version").unwrap_or(0),
                int(v, "usageCount").unwrap_or(0)
            );
        }
        emit(&o);
        return Ok(());
    }
    emit(&render(ctx, &counts, &queue, &sessions, &in_progress, &goals, &templates));
    Ok(())
}

fn render(
    ctx: &Ctx,
    counts: &[u64; 6],
    queue: &Value,
    sessions: &Value,
    in_progress: &[Value],
    goals: &[Value],
    templates: &[Value],
) -> String {
    let out = &ctx.out;
    let mut o = String::new();
    let _ = writeln!(o, "{} {}", out.bold("Loop"), out.dim(&format!("at {}", ctx.conn.url)));

    // Issues and the queue.
    let ready = queue["total"].as_u64().unwrap_or(0);
    let _ = writeln!(o, "\n{}", out.heading("Queue"));
    let blocked = counts[2].saturating_sub(ready);
    let mut line = format!(
        "  {} ready to dispatch",
        out.paint(if ready > 0 { output::GREEN.bold() } else { BOLD }, &ready.to_string())
    );
    if blocked > 0 {
        line.push_str(&format!(" · {blocked} todo blocked"));
    }
    let _ = writeln!(o, "{line}");
    o.push_str(&out.note(
        &format!(
            "{} triage · {} backlog · {} todo · {} in progress · {} done · {} canceled",
            counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]
        ),
        2,
    ));
    let head = arr(&queue["data"]);
    if !head.is_empty() {
        let mut t =
            Table::new(vec![col("NEXT"), num_col("#"), num_col("SCORE"), col("TYPE"), flex_col("TITLE")]).indent(2);
        for (i, e) in head.iter().enumerate() {
            let issue = &e["issue"];
            t.row(vec![
                cell(if i == 0 { "→" } else { "" }, output::GREEN),
                cell(int(issue, "number").map(|n| n.to_string()).unwrap_or_default(), BOLD),
                float(e, "score").map(output::number).unwrap_or_default().into(),
                cell(s(issue, "type"), PLAIN),
                s(issue, "title").into(),
            ]);
        }
        o.push('\n');
        o.push_str(&t.render(out));
    }
    if counts[0] > 0 {
        o.push_str(&out.para(&format!("{} waiting in triage: loop triage", counts[0]), 2, output::MAGENTA));
    }

    // Work in progress and leases.
    let open = arr(&sessions["data"]);
    let _ = writeln!(o, "\n{}", out.heading(&format!("In progress ({})", in_progress.len())));
    if in_progress.is_empty() {
        let _ = writeln!(o, "  {}", out.dim("Nothing. Claim work with: loop dispatch"));
    } else {
        let by_issue: HashMap<&str, &Value> = open.iter().map(|sess| (s(sess, "issueId"), sess)).collect();
        let mut t =
            Table::new(vec![num_col("#"), flex_col("TITLE"), col("AGENT"), col("CLAIMED"), col("LEASE")]).indent(2);
        for i in in_progress {
            let (agent, claimed, lease) = match by_issue.get(s(i, "id")) {
                Some(sess) => (
                    cell(s(sess, "agent"), BOLD),
                    cell(ago(s(sess, "claimedAt")), DIM),
                    lease_cell(s(sess, "leaseExpiresAt")),
                ),
                None => (cell("—", DIM), cell("", DIM), cell("no lease (started by hand)", DIM)),
            };
            t.row(vec![
                cell(int(i, "number").map(|n| n.to_string()).unwrap_or_default(), BOLD),
                s(i, "title").into(),
                agent,
                claimed,
                lease,
            ]);
        }
        o.push_str(&t.render(out));
    }

    // Goals.
    let active: Vec<&Value> = goals.iter().filter(|g| s(g, "status") != "abandoned").collect();
    if !active.is_empty() {
        let _ = writeln!(o, "\n{}", out.heading("Goals"));
        let mut t = Table::new(vec![flex_col("GOAL"), col("PROGRESS"), col("VALUE"), col("STATUS")]).indent(2);
        for g in active {
            let done = s(g, "status") == "achieved";
            t.row(vec![
                s(g, "title").into(),
                cell(progress_bar(g, 12), if done { output::GREEN } else { output::CYAN }),
                progress_text(g).into(),
                cell(s(g, "status"), output::status_style(s(g, "status"))),
            ]);
        }
        o.push_str(&t.render(out));
    }

    // Prompt health.
    if !templates.is_empty() {
        let _ = writeln!(o, "\n{}", out.heading("Prompts"));
        let mut t =
            Table::new(vec![col("TEMPLATE"), col("ACTIVE"), num_col("SCORE"), num_col("USES"), flex_col("HEALTH")])
                .indent(2);
        let mut rows: Vec<&Value> = templates.iter().collect();
        // Most used first: the prompts that matter most.
        rows.sort_by_key(|t| -int(&t["activeVersion"], "usageCount").unwrap_or(-1));
        for tpl in rows {
            let v = &tpl["activeVersion"];
            let score = float(v, "reviewScore");
            let (health, style) = match (v.is_object(), score) {
                (false, _) => ("no active version".to_owned(), output::YELLOW),
                (true, Some(x)) if x < 3.0 => ("needs attention".to_owned(), output::RED),
                (true, Some(x)) if x < 3.5 => ("watch".to_owned(), output::YELLOW),
                (true, Some(_)) => ("ok".to_owned(), output::GREEN),
                (true, None) => ("no reviews yet".to_owned(), DIM),
            };
            t.row(vec![
                cell(s(tpl, "slug"), BOLD),
                int(v, "version").map(|n| format!("v{n}")).unwrap_or_else(|| "—".into()).into(),
                cell(score.map(output::score).unwrap_or_else(|| "—".into()), score_style(score)),
                int(v, "usageCount").map(|n| n.to_string()).unwrap_or_default().into(),
                cell(health, style),
            ]);
        }
        o.push_str(&t.render(out));
    }
    o
}

fn lease_cell(expires: &str) -> output::Cell {
    let text = ago(expires);
    let expired = output::parse_time(expires).is_some_and(|t| t < chrono::Utc::now());
    if expired { cell(format!("expired {text}"), output::RED) } else { cell(format!("expires {text}"), PLAIN) }
}
