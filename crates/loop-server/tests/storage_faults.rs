//! A full disk under a running server: every 2xx is a stored write, every refusal is a 507 that
//! left nothing behind, `/health` says degraded, and writes succeed again once space is freed,
//! without a restart. The disk is made "full" by capping the database file (SQLite's
//! `max_page_count`) and freed by deleting a ballast table from another connection; as root, a
//! small tmpfs data directory is filled for real too.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{KEY, TestServer, serve_store};
use loop_core::SystemClock;
use loop_store::sqlite::{SqliteConfig, SqliteStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A description of about 90 KB: a few of these fill a small database quickly.
fn big_text(i: usize) -> String {
    format!("{i}: {}", "lorem ipsum dolor sit amet ".repeat(3_400))
}

/// A server on a database capped at `cap` bytes, holding `ballast` bytes that another
/// connection can delete to free space.
async fn capped(cap: u64, ballast: usize) -> (TestServer, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.db");
    let config = SqliteConfig { max_size: Some(cap), ..SqliteConfig::new(path.to_string_lossy()) };
    let store = SqliteStore::open(config, Arc::new(SystemClock)).await.expect("open store");
    let side = rusqlite::Connection::open(&path).unwrap();
    side.execute_batch("CREATE TABLE ballast (b BLOB NOT NULL)").unwrap();
    for _ in 0..ballast / 65_536 {
        side.execute("INSERT INTO ballast (b) VALUES (zeroblob(65536))", []).unwrap();
    }
    (serve_store(Arc::new(store), dir, |c| c).await, path)
}

/// Frees the ballast's pages, as another process deleting files would free a disk.
fn free_ballast(path: &std::path::Path) {
    let side = rusqlite::Connection::open(path).unwrap();
    side.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    side.execute("DELETE FROM ballast", []).unwrap();
}

async fn health(s: &TestServer) -> (StatusCode, Value) {
    let r = reqwest::get(format!("{}/health", s.url)).await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// Sends a request with the master key; returns the status and the body.
async fn send(s: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    common::send_as(s, KEY, method, path, body).await
}

#[track_caller]
fn assert_refused_as_full(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["code"], "insufficient_storage");
    assert!(body["error"].as_str().unwrap().contains("nothing was written"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_507_and_writes_succeed_again_once_space_is_freed() {
    let (s, path) = capped(3 << 20, 1 << 20).await;
    let mut stored = Vec::new();
    let mut refused = 0;
    for i in 0.. {
        let body = json!({"title": format!("issue {i}"), "type": "task", "description": big_text(i)});
        let (status, answer) = send(&s, reqwest::Method::POST, "/api/issues", Some(body)).await;
        if status == StatusCode::CREATED {
            assert_eq!(refused, 0, "a create succeeded after the disk filled, with nothing freed");
            stored.push(answer["data"]["id"].as_str().unwrap().to_owned());
        } else {
            assert_refused_as_full(status, &answer);
            refused += 1;
            if refused == 10 {
                break;
            }
        }
        assert!(i < 500, "the capped database never filled");
    }
    assert!(stored.len() >= 5, "some writes fit before the disk filled: {}", stored.len());
    let (status, h) = health(&s).await;
    assert_eq!((status, h["database"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("degraded")), "{h}");
    assert!(h["reason"].as_str().unwrap().contains("disk is full"), "{h}");
    // A comment and a claim are refused the same way, and reads still work.
    let (status, answer) = send(
        &s,
        reqwest::Method::POST,
        &format!("/api/issues/{}/comments", stored[0]),
        Some(json!({"body": big_text(0)})),
    )
    .await;
    assert_refused_as_full(status, &answer);

    // Every acknowledged write is there, and nothing refused is.
    assert_eq!(s.issue_count().await, stored.len() as u64, "a refused create left an issue behind");
    for id in &stored {
        common::get_issue(&s, id).await;
    }

    free_ballast(&path);
    let (status, answer) =
        send(&s, reqwest::Method::POST, "/api/issues", Some(json!({"title": "after", "type": "task"}))).await;
    assert_eq!(status, StatusCode::CREATED, "writes succeed again without a restart: {answer}");
    let (status, h) = health(&s).await;
    assert_eq!((status, h["database"].as_str()), (StatusCode::OK, Some("ok")), "{h}");
    assert_eq!(s.issue_count().await, stored.len() as u64 + 1);
    // The writes acknowledged before the disk filled survived it.
    for id in &stored {
        common::get_issue(&s, id).await;
    }
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    created: Vec<String>,
    comments: Vec<(String, String)>,
    claims: Vec<String>,
    done: Vec<String>,
    refused: usize,
}

/// One client filling the disk: create, comment, claim, report done, over and over, until the
/// disk has refused it `enough` times. Every answer is a success or a 507.
async fn fill(s_url: String, n: usize, enough: usize) -> Seen {
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Option<Value>, headers: Vec<(&'static str, String)>| {
        let mut req = http.request(method, format!("{s_url}{path}")).bearer_auth(KEY);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let mut seen = Seen::default();
    for i in 0..400 {
        if seen.refused >= enough {
            break;
        }
        let body = json!({"title": format!("c{n}-{i}"), "type": "task", "status": "todo", "description": big_text(i)});
        let (status, created) = call(reqwest::Method::POST, "/api/issues".into(), Some(body), vec![]).await;
        if status != StatusCode::CREATED {
            assert_refused_as_full(status, &created);
            seen.refused += 1;
            continue;
        }
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        seen.created.push(id.clone());
        let (status, comment) = call(
            reqwest::Method::POST,
            format!("/api/issues/{id}/comments"),
            Some(json!({"body": big_text(i)})),
            vec![],
        )
        .await;
        match status {
            StatusCode::CREATED => seen.comments.push((id.clone(), comment["data"]["id"].as_str().unwrap().to_owned())),
            _ => {
                assert_refused_as_full(status, &comment);
                seen.refused += 1;
            }
        }
        let agent = vec![("X-Loop-Agent", format!("filler-{n}")), ("Idempotency-Key", format!("{n}-{i}"))];
        let (status, claim) = call(reqwest::Method::GET, "/api/dispatch/next".into(), None, agent).await;
        let claimed = match status {
            StatusCode::OK => claim["issue"]["id"].as_str().unwrap().to_owned(),
            StatusCode::NO_CONTENT => continue,
            _ => {
                assert_refused_as_full(status, &claim);
                seen.refused += 1;
                continue;
            }
        };
        seen.claims.push(claim["session"]["id"].as_str().unwrap().to_owned());
        let done = json!({"status": "done", "agentSummary": big_text(i)});
        let (status, answer) = call(reqwest::Method::PATCH, format!("/api/issues/{claimed}"), Some(done), vec![]).await;
        match status {
            StatusCode::OK => seen.done.push(claimed),
            _ => {
                assert_refused_as_full(status, &answer);
                seen.refused += 1;
            }
        }
    }
    seen
}

/// `clients` writers filling at once, each until 5 of its writes are refused: all they saw.
async fn fill_together(url: &str, clients: usize) -> Seen {
    let clients: Vec<_> = (0..clients).map(|n| tokio::spawn(fill(url.to_owned(), n, 5))).collect();
    let mut all = Seen::default();
    for c in clients {
        let seen = c.await.unwrap();
        all.created.extend(seen.created);
        all.comments.extend(seen.comments);
        all.claims.extend(seen.claims);
        all.done.extend(seen.done);
        all.refused += seen.refused;
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_on_a_full_disk_lose_nothing_they_were_told_was_stored() {
    let (s, path) = capped(6 << 20, 1 << 20).await;
    let all = fill_together(&s.url, 8).await;
    assert!(all.refused >= 40 && !all.created.is_empty(), "{} refused, {} created", all.refused, all.created.len());
    check_everything_acknowledged_is_stored(&s, &all).await;

    free_ballast(&path);
    let after = fill(s.url.clone(), 99, 1).await;
    assert!(!after.created.is_empty() && !after.claims.is_empty(), "writes succeed again once space is freed");
}

/// Every create, comment, claim and report that was acknowledged is in the database, and
/// nothing that was refused is.
async fn check_everything_acknowledged_is_stored(s: &TestServer, seen: &Seen) {
    assert_eq!(s.issue_count().await, seen.created.len() as u64, "issues: only the acknowledged ones");
    let sessions: Value = s.client.get("/api/sessions?limit=1").await.unwrap();
    assert_eq!(sessions["total"], seen.claims.len(), "sessions: only the acknowledged claims");
    let done: HashSet<&String> = seen.done.iter().collect();
    for id in &seen.created {
        let issue = common::get_issue(s, id).await;
        assert_eq!(
            issue["status"] == "done",
            done.contains(id),
            "issue {id} is done exactly when that was acknowledged"
        );
    }
    let mut comments = 0;
    for id in &seen.created {
        comments += common::comments(s, id).await.len();
    }
    assert_eq!(comments, seen.comments.len(), "comments: only the acknowledged ones");
    for (issue, comment) in &seen.comments {
        let bodies: Value = s.client.get(&format!("/api/issues/{issue}/comments")).await.unwrap();
        assert!(bodies["data"].as_array().unwrap().iter().any(|c| c["id"] == comment.as_str()), "comment {comment}");
    }
}

/// As root, a real filesystem fills up: a 12 MiB tmpfs data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_full_filesystem_loses_nothing_and_recovers() {
    if !nix_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root (this test runs as root in CI)");
        return;
    }
    let mount = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "tmpfs"])
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs as root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.path().to_owned());
    let data = tempfile::tempdir_in(mount.path()).unwrap();
    // Room to free later, as a user would by deleting a file.
    let ballast = data.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 2 << 20]).unwrap();
    let path = data.path().join("loop.db");
    let store = SqliteStore::open(SqliteConfig::new(path.to_string_lossy()), Arc::new(SystemClock)).await.unwrap();
    let s = serve_store(Arc::new(store), data, |c| c).await;

    let all = fill_together(&s.url, 8).await;
    assert!(all.refused >= 40, "the filesystem filled: {} refused", all.refused);
    let (status, h) = health(&s).await;
    assert_eq!((status, h["database"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("degraded")), "{h}");
    check_everything_acknowledged_is_stored(&s, &all).await;

    std::fs::remove_file(&ballast).unwrap();
    let after = fill(s.url.clone(), 99, 1).await;
    assert!(!after.created.is_empty(), "writes succeed again once space is freed");
}

fn nix_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
