//! Three `loop serve` processes on one PostgreSQL database: 32 concurrent claimers spread over
//! the nodes hand out 5,000 issues exactly once each, and a long-poll on one node is answered
//! when another node makes an issue eligible.
//!
//! The database is `LOOP_TEST_POSTGRES_URL`'s server or a throwaway one (see
//! `loop_store::postgres::testing`); without PostgreSQL this test fails.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{KEY, Server};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const ISSUES: usize = 5_000;
const CLAIMERS: usize = 32;

fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_hand_out_every_issue_once_and_wake_each_other() {
    let database = loop_store::postgres::testing::database().await;
    let nodes: Vec<Server> = (0..3).map(|_| Server::start_with(&["--database-url", &database.url])).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let http = client();

    // The backlog, created through all three nodes at once.
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut creators = tokio::task::JoinSet::new();
    for c in 0..16 {
        let (http, url, next) = (http.clone(), urls[c % 3].clone(), next.clone());
        creators.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= ISSUES {
                    break;
                }
                let body =
                    json!({ "title": format!("issue {i}"), "type": "task", "status": "todo", "priority": i % 5 });
                let res = http.post(format!("{url}/api/issues")).bearer_auth(KEY).json(&body).send().await.unwrap();
                assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
            }
        });
    }
    while let Some(r) = creators.join_next().await {
        r.unwrap();
    }
    eprintln!("created {ISSUES} issues in {:?}", started.elapsed());

    // 32 claimers, each on one node, each claim with a fresh Idempotency-Key.
    let claimed = Arc::new(Mutex::new(Vec::<String>::with_capacity(ISSUES)));
    let started = Instant::now();
    let mut claimers = tokio::task::JoinSet::new();
    for c in 0..CLAIMERS {
        let (http, url, claimed) = (http.clone(), urls[c % 3].clone(), claimed.clone());
        claimers.spawn(async move {
            for n in 0.. {
                let res = http
                    .get(format!("{url}/api/dispatch/next"))
                    .bearer_auth(KEY)
                    .header("X-Loop-Agent", format!("claimer-{c}"))
                    .header("Idempotency-Key", format!("claimer-{c}-{n}"))
                    .send()
                    .await
                    .unwrap();
                if res.status() == 204 {
                    break;
                }
                assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
                let body: Value = res.json().await.unwrap();
                claimed.lock().await.push(body["issue"]["id"].as_str().unwrap().to_owned());
            }
        });
    }
    while let Some(r) = claimers.join_next().await {
        r.unwrap();
    }
    let claimed = claimed.lock().await;
    eprintln!("{} claims over 3 nodes in {:?}", claimed.len(), started.elapsed());
    let distinct: HashSet<&String> = claimed.iter().collect();
    assert_eq!(distinct.len(), claimed.len(), "an issue was handed out twice");
    assert_eq!(claimed.len(), ISSUES, "every issue was handed out");

    // A long-poll on node 0 is answered when node 2 makes an issue eligible.
    let waiting = {
        let (http, url) = (http.clone(), urls[0].clone());
        tokio::spawn(async move {
            let asked = Instant::now();
            let res = http
                .get(format!("{url}/api/dispatch/next?wait=30"))
                .bearer_auth(KEY)
                .header("X-Loop-Agent", "waiter")
                .send()
                .await
                .unwrap();
            (asked.elapsed(), res.status().as_u16(), res.json::<Value>().await.ok())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let made = Instant::now();
    let body = json!({ "title": "made on node 2", "type": "task", "status": "todo" });
    let res = http.post(format!("{}/api/issues", urls[2])).bearer_auth(KEY).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let (waited, status, answer) = waiting.await.unwrap();
    assert_eq!(status, 200, "the long-poll got the new issue");
    assert_eq!(answer.unwrap()["issue"]["title"], "made on node 2");
    assert!(made.elapsed() < Duration::from_secs(2), "answered {:?} after the issue was made", made.elapsed());
    assert!(waited >= Duration::from_millis(400), "it did wait first");
    drop(nodes);
}
