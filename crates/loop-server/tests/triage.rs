//! Triage over HTTP: a duplicate folded by the API and by the dashboard's triage form, a
//! snooze from the dashboard, the stale policy run by the server's sweeper, and the model hint
//! a claim carries.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{KEY, TestServer, comments, get_issue, send_as, serve_store, start_with};
use loop_core::{Clock, ManualClock, SystemClock};
use loop_server::ServerConfig;
use loop_server::model_hints::ModelHints;
use loop_store::sqlite::{SqliteConfig, SqliteStore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;

async fn signal(s: &TestServer, title: &str) -> Value {
    let (status, body) =
        send_as(s, KEY, Method::POST, "/api/signals", Some(json!({"source": "sentry", "title": title}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["issue"].clone()
}

#[tokio::test]
async fn duplicates_fold_over_the_api_and_the_dashboard_and_snoozes_leave_triage() {
    let s = start_with(|c| c).await;
    let (a, b, c) =
        (signal(&s, "Checkout times out").await, signal(&s, "Payment hangs").await, signal(&s, "Pay page slow").await);
    let path = format!("/api/issues/{}/duplicate", b["id"].as_str().unwrap());
    let (status, body) = send_as(&s, KEY, Method::POST, &path, Some(json!({"of": a["number"].to_string()}))).await;
    assert_eq!((status, body["data"]["status"].as_str()), (StatusCode::OK, Some("canceled")), "{body}");
    let (status, body) = send_as(&s, KEY, Method::POST, &path, Some(json!({"of": "nope"}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("issue_not_found")), "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("of:"), "{body}");
    let (status, _) = send_as(&s, KEY, Method::POST, &path, Some(json!({"unknown": 1}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The dashboard's triage form: fold c into a, then snooze a for a day.
    let web = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login =
        web.post(format!("{}/login", s.url)).header("origin", &s.url).form(&[("key", KEY), ("next", "/issues")]);
    let login = login.send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = |n: &Value| format!("{}/issues/{n}", s.url);
    let html = web.get(page(&c["number"])).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let at = html.find(r#"name="_csrf" value=""#).unwrap() + 20;
    let csrf = html[at..at + 32].to_owned();
    let post = |n: &Value, form: Vec<(&'static str, String)>| {
        web.post(format!("{}/triage", page(n))).header("cookie", &cookie).header("origin", &s.url).form(&form).send()
    };
    let folded = post(
        &c["number"],
        vec![("_csrf", csrf.clone()), ("decision", "duplicate".into()), ("of", format!("#{}", a["number"]))],
    );
    assert_eq!(folded.await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(get_issue(&s, c["id"].as_str().unwrap()).await["status"], "canceled");
    let detail = get_issue(&s, a["id"].as_str().unwrap()).await;
    assert_eq!(detail["occurrences"], 3, "{detail}");
    assert_eq!(comments(&s, a["id"].as_str().unwrap()).await.len(), 2);

    let snoozed = post(&a["number"], vec![("_csrf", csrf), ("decision", "snooze_day".into())]);
    assert_eq!(snoozed.await.unwrap().status(), StatusCode::SEE_OTHER);
    assert!(get_issue(&s, a["id"].as_str().unwrap()).await["notBefore"].is_string());
    let queue: Value = s.client.get("/api/issues?status=triage&waiting=false").await.unwrap();
    assert_eq!(queue["total"], 0, "the snoozed issue left the triage queue: {queue}");
    let (status, body) = send_as(&s, KEY, Method::GET, "/api/issues?waiting=maybe", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
}

#[tokio::test]
async fn the_sweeper_closes_stale_issues_when_asked_and_claims_carry_model_hints() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("loop.db").to_string_lossy()), clock.clone());
    let hints = ModelHints::parse(&["task=sonnet".into(), "triage=haiku".into()]).unwrap();
    let s = serve_store(Arc::new(store.await.unwrap()), dir, |c| ServerConfig {
        stale_after_days: Some(30),
        model_hints: hints,
        sweep_interval: Duration::from_millis(50),
        ..c
    })
    .await;
    let work = s.issue_with(json!({"title": "fresh work", "type": "task", "status": "todo"})).await;
    let claim: Value = s.client.post(&format!("/api/issues/{}/dispatch", work.id), &json!({})).await.unwrap();
    assert_eq!(claim["meta"]["model"], "sonnet", "{}", claim["meta"]);
    let sig = signal(&s, "Checkout times out").await;
    let id = sig["id"].as_str().unwrap();
    s.client.update_issue(id, &json!({"status": "todo"})).await.unwrap();
    let claim: Value = s.client.post(&format!("/api/issues/{id}/dispatch"), &json!({})).await.unwrap();
    assert_eq!(claim["meta"]["model"], "haiku");

    let idle = s.task("an idea nobody picked up").await;
    clock.advance_millis(29 * DAY);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get_issue(&s, &idle.id).await["status"], "triage", "29 days is not stale yet");
    clock.advance_millis(2 * DAY);
    for _ in 0..200 {
        if get_issue(&s, &idle.id).await["status"] == "canceled" {
            let said = comments(&s, &idle.id).await;
            assert!(said[0].starts_with("Closed as stale: untouched for 30 days"), "{said:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the sweeper never closed the stale issue");
}
