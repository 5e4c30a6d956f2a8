//! A PostgreSQL node whose database server stops under load and starts again: no write it
//! acknowledged is missing afterwards, what failed meanwhile was a 503, and the node serves
//! writes again without a restart.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{KEY, serve_store};
use loop_core::SystemClock;
use loop_store::postgres::testing::PrivateServer;
use loop_store::postgres::{PgConfig, PgStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What one client was told.
#[derive(Default, Debug)]
struct Told {
    created: Vec<String>,
    claims: Vec<String>,
    unavailable: usize,
}

/// Creates issues and claims them until `stop`; every answer is a success or a 503.
async fn write_until(url: String, n: usize, stop: Arc<AtomicBool>) -> Told {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut told = Told::default();
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let body = json!({"title": format!("w{n}-{i}"), "type": "task", "status": "todo"});
        let resp = http.post(format!("{url}/api/issues")).bearer_auth(KEY).json(&body).send().await.unwrap();
        let (status, answer) = (resp.status(), resp.json::<Value>().await.unwrap_or(Value::Null));
        match status {
            StatusCode::CREATED => told.created.push(answer["data"]["id"].as_str().unwrap().to_owned()),
            StatusCode::SERVICE_UNAVAILABLE => {
                told.unavailable += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            other => panic!("create: {other} {answer}"),
        }
        let resp = http
            .get(format!("{url}/api/dispatch/next"))
            .bearer_auth(KEY)
            .header("Idempotency-Key", format!("w{n}-{i}"))
            .send()
            .await
            .unwrap();
        let (status, answer) = (resp.status(), resp.json::<Value>().await.unwrap_or(Value::Null));
        match status {
            StatusCode::OK => told.claims.push(answer["session"]["id"].as_str().unwrap().to_owned()),
            StatusCode::NO_CONTENT => {}
            StatusCode::SERVICE_UNAVAILABLE => told.unavailable += 1,
            other => panic!("claim: {other} {answer}"),
        }
    }
    told
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_loses_no_acknowledged_write_and_the_node_recovers() {
    let pg = PrivateServer::start();
    let config = PgConfig { acquire_timeout: Duration::from_secs(2), ..PgConfig::new(pg.url()) };
    let store = PgStore::open(config, Arc::new(SystemClock)).await.expect("open");
    let s = serve_store(Arc::new(store), tempfile::tempdir().unwrap(), |c| c).await;

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8).map(|n| tokio::spawn(write_until(s.url.clone(), n, stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let health: Value = reqwest::get(format!("{}/health", s.url)).await.unwrap().json().await.unwrap();
    assert_eq!(health["ok"], false, "health says so while the database is down: {health}");
    pg.resume();

    // The node serves writes again by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.client.create_issue(&json!({"title": "after the restart", "type": "task"})).await;
        if r.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no write succeeded within 30 s of the restart: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Told::default();
    for c in clients {
        let told = c.await.unwrap();
        all.created.extend(told.created);
        all.claims.extend(told.claims);
        all.unavailable += told.unavailable;
    }
    assert!(all.unavailable > 0, "the outage was seen as 503s");
    assert!(all.created.len() > 20, "{} creates acknowledged", all.created.len());

    // Every acknowledged create and claim is stored.
    for id in &all.created {
        common::get_issue(&s, id).await;
    }
    for session in &all.claims {
        let _: Value = s.client.get(&format!("/api/sessions/{session}")).await.expect("an acknowledged claim");
    }
    let health: Value = reqwest::get(format!("{}/health", s.url)).await.unwrap().json().await.unwrap();
    assert_eq!(health["ok"], true, "{health}");
}
