//! The migration that made `agent_days` filled it from the sessions already ended, bucketing
//! durations in SQL; live sessions are counted in Rust. The two must agree, on both databases:
//! sessions ended through the store leave exactly the rows the migration would have written.

use std::sync::Arc;

use loop_core::actor::Actor;
use loop_core::dispatch::ClaimRequest;
use loop_core::session::{SessionOutcome, SessionReport};
use loop_core::template::NoTemplates;
use loop_core::{ManualClock, Store};
use loop_store::postgres::{PgConfig, PgStore, testing};
use loop_store::sqlite::{SqliteConfig, SqliteStore};
use sqlx::{Connection, Row};

const SQLITE_MIGRATION: &str = include_str!("../migrations/sqlite/0014_agent_days.sql");
const POSTGRES_MIGRATION: &str = include_str!("../migrations/postgres/0009_agent_days.sql");
const ROWS: &str = "SELECT day, agent, took_bucket, ended, done, firsts, first_done, tokens, tokens_reported, \
                    cost_usd, cost_reported FROM agent_days ORDER BY day, agent, took_bucket";

/// The migration's statement that fills the table from the sessions.
fn backfill(migration: &str) -> &str {
    &migration[migration.find("INSERT INTO agent_days").expect("the migration fills the table")..]
}

/// Sessions on issues tried twice, with durations across every kind of bucket, ended through
/// the store; some report tokens and cost.
async fn end_sessions(store: &dyn Store, clock: &ManualClock) {
    let durations = [0_u64, 99, 100, 119, 125, 399, 400, 999, 12_345, 59_999, 61_000, 3_599_999, 86_400_000];
    for (n, took) in durations.into_iter().enumerate() {
        let issue = store
            .create_issue(
                serde_json::from_value(serde_json::json!({"title": format!("t{n}"), "type": "task", "status": "todo"}))
                    .unwrap(),
                &Actor::human(),
            )
            .await
            .unwrap();
        for attempt in 0..2 {
            let agent = format!("agent-{}", (n + attempt) % 3);
            let request = ClaimRequest {
                agent: agent.clone(),
                project_id: None,
                idempotency_key: None,
                lease_ttl_ms: 60_000,
                limit: None,
            };
            let claim = store.claim_issue(&issue.id, &request, Arc::new(NoTemplates)).await.unwrap();
            clock.advance_millis(1_000);
            let report = SessionReport {
                duration_ms: Some(took + attempt as u64),
                tokens: (n % 2 == 0).then_some(100 * n as u64),
                cost_usd: (n % 3 == 0).then_some(0.25 * n as f64),
                ..SessionReport::default()
            };
            let actor = Actor::agent(&agent);
            if attempt == 1 && n % 2 == 0 {
                let done = serde_json::from_value(serde_json::json!({"status": "done"})).unwrap();
                store.update_issue(&issue.id, done, &actor).await.unwrap();
            } else {
                let outcome = if n % 3 == 0 { SessionOutcome::Failed } else { SessionOutcome::Released };
                store.end_session(&claim.session.id, outcome, report, &actor).await.unwrap();
            }
        }
        // A day later, so rows span several days.
        clock.advance_millis(if n % 4 == 3 { loop_core::dispatch::DAY_MS } else { 60_000 });
    }
}

async fn sqlite_rows(db: &mut sqlx::SqliteConnection) -> Vec<String> {
    let rows = sqlx::query(ROWS).fetch_all(db).await.unwrap();
    rows.iter()
        .map(|r| {
            let ints: Vec<i64> = [0, 2, 3, 4, 5, 6, 7, 8, 10].iter().map(|&i| r.get::<i64, _>(i)).collect();
            format!("{} {ints:?} {}", r.get::<String, _>(1), r.get::<f64, _>(9))
        })
        .collect()
}

async fn postgres_rows(db: &mut sqlx::PgConnection) -> Vec<String> {
    let rows = sqlx::query(ROWS).fetch_all(db).await.unwrap();
    rows.iter()
        .map(|r| {
            let ints: Vec<i64> = [0, 2, 3, 4, 5, 6, 7, 8, 10].iter().map(|&i| r.get::<i64, _>(i)).collect();
            format!("{} {ints:?} {}", r.get::<String, _>(1), r.get::<f64, _>(9))
        })
        .collect()
}

#[tokio::test]
async fn sqlite_migration_counts_as_the_store_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.db");
    let clock = loop_store_tests::manual_clock();
    let store = SqliteStore::open(SqliteConfig::new(path.to_string_lossy()), clock.clone()).await.unwrap();
    end_sessions(&store, &clock).await;
    store.close().await;
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display())).await.unwrap();
    let live = sqlite_rows(&mut db).await;
    assert!(live.len() > 20, "{live:#?}");
    sqlx::query("DELETE FROM agent_days").execute(&mut db).await.unwrap();
    sqlx::query(backfill(SQLITE_MIGRATION)).execute(&mut db).await.unwrap();
    assert_eq!(sqlite_rows(&mut db).await, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_counts_as_the_store_does() {
    let database = testing::database().await;
    let clock = loop_store_tests::manual_clock();
    let store = PgStore::open(PgConfig::new(&database.url), clock.clone()).await.unwrap();
    end_sessions(&store, &clock).await;
    let mut db = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let live = postgres_rows(&mut db).await;
    assert!(live.len() > 20, "{live:#?}");
    sqlx::query("DELETE FROM agent_days").execute(&mut db).await.unwrap();
    sqlx::query(backfill(POSTGRES_MIGRATION)).execute(&mut db).await.unwrap();
    assert_eq!(postgres_rows(&mut db).await, live);
}
