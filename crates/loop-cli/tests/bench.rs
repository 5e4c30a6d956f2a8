//! `loop bench` end to end, on tiny backlogs: it seeds (with and without history), starts real
//! servers, drives every kind of cell over loopback, and reports every cell with no double
//! claims and a database that agrees with the clients, on SQLite and on PostgreSQL with one
//! and two nodes. The figures themselves are not asserted (they are the bench's output, not a
//! test's); only that they were measured.

mod common;

use std::process::Command;

use common::BIN;
use serde_json::Value;

const KINDS: [&str; 4] = ["claim", "cycle", "working", "create"];

/// Runs `loop bench … --json` and returns its process id and its cells.
fn bench(args: &[&str]) -> (u32, Vec<Value>) {
    let work = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["bench", "--sizes", "300", "--concurrency", "1,4", "--ops", "40", "--json", "--work-dir"])
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
    assert!(stdout.contains("| cell | backend | issues | history | nodes | clients |"), "no table:\n{stdout}");
    let json = &stdout[stdout.find("\n[").expect("a JSON array after the table") + 1..];
    (pid, serde_json::from_str(json).expect("the JSON output parses"))
}

/// The cells are (history, kind, nodes, clients) in that order, each complete and checked.
fn check(cells: &[Value], backend: &str, histories: &[u64], nodes: &[u64]) {
    let mut expected = Vec::new();
    for &h in histories {
        for kind in KINDS {
            for &n in nodes {
                for c in [1, 4] {
                    expected.push((h, kind.to_owned(), n, c));
                }
            }
        }
    }
    let got: Vec<(u64, String, u64, u64)> = cells
        .iter()
        .map(|c| {
            let n = |k: &str| c[k].as_u64().unwrap();
            (n("history"), c["kind"].as_str().unwrap().to_owned(), n("nodes"), n("clients"))
        })
        .collect();
    assert_eq!(got, expected, "one cell per history, kind, node count and concurrency, in order");
    for c in cells {
        assert_eq!((c["backend"].as_str(), c["issues"].as_u64()), (Some(backend), Some(300)));
        assert_eq!(c["units"], 40, "every unit was done: {c}");
        assert_eq!(c["double_claims"], 0, "{c}");
        assert_eq!(c["consistent"], true, "{c}");
        let ops: Vec<&str> = c["latency"].as_array().unwrap().iter().map(|l| l["op"].as_str().unwrap()).collect();
        let expected_ops = match c["kind"].as_str().unwrap() {
            "claim" => vec!["claim"],
            "cycle" => vec!["claim", "done"],
            "working" => vec!["claim", "comment", "done", "heartbeat"],
            _ => vec!["create", "relate"],
        };
        assert_eq!(ops, expected_ops, "{c}");
        for l in c["latency"].as_array().unwrap() {
            assert!(l["p50_ms"].as_f64().unwrap() > 0.0 && l["p99_ms"].as_f64().unwrap() > 0.0, "{c}");
        }
        for figure in ["units_per_sec", "server_rss_mb", "db_mb", "raw_commits_per_sec"] {
            assert!(c[figure].as_f64().unwrap() > 0.0, "{figure} was not measured: {c}");
        }
    }
}

#[test]
fn sqlite_cells_do_every_unit_once() {
    let (_, cells) = bench(&["--history", "0,200"]);
    check(&cells, "sqlite", &[0, 200], &[1]);
    assert!(cells.iter().all(|c| c["wal_mb"].is_number()), "SQLite reports its log");
}

#[tokio::test]
async fn postgres_cells_on_one_and_two_nodes_do_every_unit_once() {
    // A database of its own on the test server; the bench creates and drops its own beside it.
    let database = loop_store::postgres::testing::database().await;
    let url = database.url.clone();
    let (pid, cells) =
        tokio::task::spawn_blocking(move || bench(&["--database-url", &url, "--nodes", "1,2"])).await.unwrap();
    check(&cells, "postgres", &[0], &[1, 2]);
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
