//! `loop bench` end to end, on tiny backlogs: it seeds, starts real servers, claims over
//! loopback, and reports every cell with no double claims, on SQLite and on PostgreSQL with
//! one and two nodes. The figures themselves are not asserted (they are the bench's output,
//! not a test's); only that they were measured.

mod common;

use std::process::Command;

use common::BIN;
use serde_json::Value;

/// Runs `loop bench … --json` and returns its process id and its cells.
fn bench(args: &[&str]) -> (u32, Vec<Value>) {
    let work = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["bench", "--sizes", "300,600", "--concurrency", "1,4", "--claims", "60", "--json", "--work-dir"])
        .arg(work.path())
        .args(args)
        .env_remove("LOOP_DATABASE_URL")
        .env_remove("LOOP_DATA_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run loop bench");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "loop bench failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| backend | issues | nodes | claimers |"), "no table:\n{stdout}");
    let json = &stdout[stdout.find("\n[").expect("a JSON array after the table") + 1..];
    (pid, serde_json::from_str(json).expect("the JSON output parses"))
}

fn check(cells: &[Value], backend: &str, shapes: &[(u64, u64, u64)]) {
    let got: Vec<(u64, u64, u64)> = cells
        .iter()
        .map(|c| (c["issues"].as_u64().unwrap(), c["nodes"].as_u64().unwrap(), c["claimers"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, shapes, "one cell per size, node count and concurrency, in order");
    for c in cells {
        assert_eq!(c["backend"], backend);
        assert_eq!(c["claims"], 60, "every claim was served: {c}");
        assert_eq!(c["double_claims"], 0, "{c}");
        assert_eq!(c["in_progress_matches"], true, "{c}");
        for figure in ["claims_per_sec", "p50_ms", "p99_ms", "server_rss_mb", "db_mb", "raw_commits_per_sec"] {
            assert!(c[figure].as_f64().unwrap() > 0.0, "{figure} was not measured: {c}");
        }
    }
}

#[test]
fn sqlite_cells_claim_each_issue_once() {
    let (_, cells) = bench(&[]);
    check(&cells, "sqlite", &[(300, 1, 1), (300, 1, 4), (600, 1, 1), (600, 1, 4)]);
    assert!(cells.iter().all(|c| c["wal_mb"].is_number()), "SQLite reports its log");
}

#[tokio::test]
async fn postgres_cells_on_one_and_two_nodes_claim_each_issue_once() {
    // A database of its own on the test server; the bench creates and drops its own beside it.
    let database = loop_store_postgres::testing::database().await;
    let url = database.url.clone();
    let (pid, cells) =
        tokio::task::spawn_blocking(move || bench(&["--database-url", &url, "--nodes", "1,2"])).await.unwrap();
    check(
        &cells,
        "postgres",
        &[(300, 1, 1), (300, 1, 4), (300, 2, 1), (300, 2, 4), (600, 1, 1), (600, 1, 4), (600, 2, 1), (600, 2, 4)],
    );
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let left: Vec<String> = sqlx::query_scalar("SELECT datname::TEXT FROM pg_database WHERE datname LIKE $1")
        .bind(format!("loop_bench_{pid}_%"))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "the bench left databases behind: {left:?}");
}

#[test]
fn several_nodes_need_postgres() {
    let out = Command::new(BIN).args(["bench", "--nodes", "3"]).env_remove("LOOP_DATABASE_URL").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--nodes") && stderr.contains("--database-url"), "{stderr}");
}
