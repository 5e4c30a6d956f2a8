//! The feedback widget over real HTTP: the script is public, cacheable and small; feedback is
//! taken only with an ingest token, from the token's origins, within size and rate limits, and
//! becomes a signal that de-duplicates. `browser.rs` submits it from a page in Chromium.

mod common;

use std::io::Write;

use common::{KEY, TestServer, send_as, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SITE: &str = "http://127.0.0.1:4999";

async fn ingest_token(s: &TestServer, name: &str, origins: &[&str]) -> String {
    let body = json!({"name": name, "role": "ingest", "allowedOrigins": origins});
    let (status, made) = send_as(s, KEY, Method::POST, "/api/tokens", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["data"]["secret"].as_str().unwrap().to_owned()
}

/// Posts feedback as a page on `origin` would: `text/plain`, no credentials.
async fn send(s: &TestServer, origin: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/widget/feedback", s.url))
        .header("origin", origin)
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_script_is_public_cacheable_and_under_5_kb_gzipped() {
    let s = start().await;
    let resp = reqwest::get(format!("{}/widget.js", s.url)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(resp.headers()["cache-control"].to_str().unwrap().contains("public"));
    let script = resp.bytes().await.unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&script).unwrap();
    let size = gz.finish().unwrap().len();
    println!("widget.js: {} bytes, {size} bytes gzipped", script.len());
    assert!(size < 5 * 1024, "widget.js is {size} bytes gzipped");
    assert!(!String::from_utf8_lossy(&script).contains("import "), "no dependencies");
}

#[tokio::test]
async fn feedback_from_an_allowed_origin_becomes_a_signal() {
    let s = start().await;
    let token = ingest_token(&s, "site", &[SITE]).await;
    let feedback = json!({"token": token, "kind": "friction", "message": "The pay button hides behind the banner",
                          "email": "ann@example.com", "pageUrl": "http://127.0.0.1:4999/pay", "userAgent": "test"});
    let resp = send(&s, SITE, feedback.clone()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["access-control-allow-origin"], SITE);
    let (signals, total) = s.signals("").await;
    assert_eq!(total, 1);
    assert_eq!((signals[0]["source"].as_str(), signals[0]["type"].as_str()), (Some("widget"), Some("friction")));
    assert_eq!(signals[0]["payload"]["pageUrl"], "http://127.0.0.1:4999/pay");
    assert_eq!(send(&s, SITE, feedback).await.status(), StatusCode::CREATED);
    assert_eq!(s.signal_count().await, 1, "the same report twice is one signal");
    let (_, issues) = send_as(&s, KEY, Method::GET, "/api/issues?type=signal", None).await;
    assert_eq!(issues["data"][0]["title"], "The pay button hides behind the banner");
}

#[tokio::test]
async fn feedback_is_refused_from_other_origins_other_tokens_and_past_its_limits() {
    let s = start().await;
    let token = ingest_token(&s, "site", &[SITE]).await;
    let body = |t: &str| json!({"token": t, "kind": "bug", "message": "broken"});

    let other = send(&s, "http://127.0.0.1:5998", body(&token)).await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert!(other.headers().get("access-control-allow-origin").is_none(), "another site cannot read the answer");
    let (st, member) =
        send_as(&s, KEY, Method::POST, "/api/tokens", Some(json!({"name": "ann", "role": "member"}))).await;
    assert_eq!(st, StatusCode::CREATED);
    let secret = member["data"]["secret"].as_str().unwrap();
    assert_eq!(send(&s, SITE, body(secret)).await.status(), StatusCode::FORBIDDEN, "only ingest tokens");
    assert_eq!(send(&s, SITE, body("loopk_nope")).await.status(), StatusCode::FORBIDDEN);

    let long = json!({"token": token, "kind": "general", "message": "x".repeat(5_001)});
    let resp = send(&s, SITE, long).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = resp.json().await.unwrap();
    assert!(answer["error"].as_str().unwrap().starts_with("message:"), "{answer}");
    let huge = json!({"token": token, "kind": "general", "message": "x".repeat(20_000)});
    assert_eq!(send(&s, SITE, huge).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.signal_count().await, 0, "nothing was taken");

    // Ten a minute per address: five were sent above.
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = send(&s, SITE, body(&token)).await.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}
