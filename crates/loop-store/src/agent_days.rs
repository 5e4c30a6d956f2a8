//! The tally behind agent efficiency (table `agent_days`): each session adds itself to its
//! agent's row for the UTC day it was claimed and its duration's bucket once it has ended, and
//! moves when a later record changes what it reported. Metrics read these rows, a few per
//! agent and day, never the sessions themselves.

use loop_core::Result;
use loop_core::dispatch::DAY_MS;
use loop_core::duration_histogram::bucket_of;
use loop_core::metrics::{AgentDayRow, AgentTally, SessionCounts};
use loop_core::session::{AgentSession, SessionOutcome};

use crate::db::{Db, Write};
use crate::{args, rows};

/// Adds an ended `session` to its row (`sign` 1), or takes it back out (`sign` -1). Whether it
/// was its issue's first attempt is decided in the statement, by the sessions claimed before it.
pub(crate) fn count(session: &AgentSession, sign: i64) -> Option<Write> {
    let ended = session.ended_at?;
    let took = session.duration_ms.unwrap_or(ended.millis() - session.claimed_at.millis());
    let done = (session.outcome == Some(SessionOutcome::Done)) as i64;
    Some(Write::new(
        "INSERT INTO agent_days (day, agent, took_bucket, ended, done, firsts, first_done, \
           tokens, tokens_reported, cost_usd, cost_reported) \
         SELECT ?1, ?2, ?3, ?4, ?4 * ?5, ?4 * first, ?4 * first * ?5, ?6, ?7, ?8, ?9 FROM \
           (SELECT CASE WHEN EXISTS (SELECT 1 FROM agent_sessions e WHERE e.issue_id = ?10 AND e.claimed_at < ?11) \
              THEN 0 ELSE 1 END AS first) f WHERE true \
         ON CONFLICT (day, agent, took_bucket) DO UPDATE SET ended = agent_days.ended + excluded.ended, \
           done = agent_days.done + excluded.done, firsts = agent_days.firsts + excluded.firsts, \
           first_done = agent_days.first_done + excluded.first_done, tokens = agent_days.tokens + excluded.tokens, \
           tokens_reported = agent_days.tokens_reported + excluded.tokens_reported, \
           cost_usd = agent_days.cost_usd + excluded.cost_usd, cost_reported = agent_days.cost_reported + excluded.cost_reported",
        &args![
            session.claimed_at.millis().div_euclid(DAY_MS),
            &session.agent,
            bucket_of(took),
            sign,
            done,
            sign * session.tokens.unwrap_or(0),
            sign * session.tokens.is_some() as i64,
            sign as f64 * session.cost_usd.unwrap_or(0.0),
            sign * session.cost_usd.is_some() as i64,
            &session.issue_id,
            session.claimed_at.millis(),
        ],
    ))
}

/// Each agent's tally over the days `[first_day, last_day)`, with its sessions still open.
pub(crate) async fn tallies(db: &mut impl Db, first_day: i64, last_day: i64) -> Result<Vec<AgentTally>> {
    let sum = |c: &str| format!("CAST(sum({c}) AS BIGINT) AS {c}");
    let sql = format!(
        "SELECT agent, took_bucket, {}, {}, {}, {}, {}, {}, sum(cost_usd) AS cost_usd, {} FROM agent_days \
         WHERE day >= ? AND day < ? GROUP BY agent, took_bucket",
        sum("ended"),
        sum("done"),
        sum("firsts"),
        sum("first_done"),
        sum("tokens"),
        sum("tokens_reported"),
        sum("cost_reported"),
    );
    let count = |row: &_, c| rows::get::<i64>(row, c).map(|n| n.max(0) as u64);
    let mut days = Vec::new();
    for row in db.all(&sql, &args![first_day, last_day]).await? {
        days.push(AgentDayRow {
            agent: rows::get(&row, "agent")?,
            took_bucket: rows::get(&row, "took_bucket")?,
            counts: SessionCounts {
                ended: count(&row, "ended")?,
                done: count(&row, "done")?,
                firsts: count(&row, "firsts")?,
                first_done: count(&row, "first_done")?,
                tokens: rows::get(&row, "tokens")?,
                tokens_reported: count(&row, "tokens_reported")?,
                cost_usd: rows::get(&row, "cost_usd")?,
                cost_reported: count(&row, "cost_reported")?,
            },
        });
    }
    // Open sessions are few (one per lease): SQLite is told to read them through the index of
    // open sessions, not through every session claimed in the period.
    let sql = "SELECT agent, count(*) AS n FROM agent_sessions INDEXED BY sessions_open_by_agent \
               WHERE ended_at IS NULL AND claimed_at >= ? AND claimed_at < ? GROUP BY agent";
    let mut open = Vec::new();
    for row in db.all(sql, &args![first_day * DAY_MS, last_day * DAY_MS]).await? {
        open.push((rows::get(&row, "agent")?, count(&row, "n")?));
    }
    Ok(AgentTally::of_rows(&days, &open))
}
