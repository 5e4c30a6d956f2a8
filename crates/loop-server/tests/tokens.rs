//! Named tokens over real HTTP: every route answers each role as the role says, actions are
//! recorded under the token's name (and its workers'), an agent cannot hoard claims, request
//! rates are limited, secrets are stored only as hashes, revocation holds at once (on two
//! PostgreSQL nodes too), and people sign in to the dashboard with their own tokens.

mod common;

use std::sync::Arc;

use common::{KEY, TestServer, send_as, start, start_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Makes a token with the master key; returns its secret.
async fn token(s: &TestServer, body: Value) -> String {
    let (status, made) = send_as(s, KEY, Method::POST, "/api/tokens", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["data"]["secret"].as_str().expect("the secret, shown once").to_owned()
}

/// Claims the next issue with `secret`, as worker `worker` when given: the status and body.
async fn claim(s: &TestServer, secret: &str, worker: Option<&str>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().get(format!("{}/api/dispatch/next", s.url)).bearer_auth(secret);
    if let Some(w) = worker {
        req = req.header("X-Loop-Agent", w);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn todo(s: &TestServer, title: &str) -> String {
    let issue = s.issue_with(json!({"title": title, "type": "task", "status": "todo"})).await;
    issue.id
}

/// What each role may do, stated here independently of the server's table: `Some(true)`
/// allowed, `Some(false)` refused (403), `None` allowed only on what the caller holds (403 or
/// 404 for anything else).
fn expected(role: &str, method: &str, path: &str) -> Option<bool> {
    let tokens = path.starts_with("/api/tokens");
    let segments: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match role {
        "admin" => Some(true),
        "member" => Some(!tokens),
        "ingest" => Some((method == "POST" && path == "/api/signals") || (method == "GET" && path == "/api/me")),
        "agent" if tokens => Some(false),
        "agent" => match (method, segments.as_slice()) {
            ("GET", _) => Some(true),
            ("POST", ["api", "issues"]) => Some(true),
            ("POST", ["api", "issues", _, "comments" | "relations" | "dispatch"]) => Some(true),
            ("POST", ["api", "prompt-reviews"]) => Some(true),
            ("POST" | "DELETE", ["api", "merge-slots", _]) => Some(true),
            ("POST", ["api", "issues", _, "rework" | "merged"]) => Some(true),
            ("PATCH", ["api", "issues", _]) => None,
            ("POST", ["api", "sessions", _, _]) | ("PUT", ["api", "sessions", _, "record"]) => None,
            _ => Some(false),
        },
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_role_says() {
    let s = start().await;
    let doc: Value = reqwest::get(format!("{}/api/openapi.json", s.url)).await.unwrap().json().await.unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Webhooks are authenticated by their provider's signature, not by a token.
        if ["/api/signals/github", "/api/signals/sentry", "/api/signals/posthog"].contains(&path.as_str()) {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                routes.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(routes.len() > 50, "{} routes", routes.len());
    for role in ["admin", "member", "agent", "ingest"] {
        let secret = token(&s, json!({"name": format!("{role}-1"), "role": role, "ratePerMinute": 100000})).await;
        for (method, path) in &routes {
            // Path parameters name nothing that exists (a refusal must come before the lookup);
            // the token being revoked is not this one.
            let concrete = path.replace("{name}", "nobody").replace(['{', '}'], "");
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let (status, body) = send_as(&s, &secret, m, &concrete, Some(json!({}))).await;
            let what = format!("{role} {method} {concrete}: {status} {body}");
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
            assert!(status.as_u16() < 500, "{what}");
            match expected(role, method, path) {
                Some(true) => assert_ne!(status, StatusCode::FORBIDDEN, "{what}"),
                Some(false) => {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                    assert!(body["error"].as_str().unwrap_or_default().contains(&format!("{role}-1")), "{what}");
                }
                None => assert!([StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&status), "{what}"),
            }
        }
    }
}

#[tokio::test]
async fn actions_are_recorded_under_the_token_and_its_workers() {
    let s = start().await;
    let ann = token(&s, json!({"name": "ann", "role": "member"})).await;
    let builder = token(&s, json!({"name": "builder", "role": "agent"})).await;
    let (st, made) = send_as(
        &s,
        &ann,
        Method::POST,
        "/api/issues",
        Some(json!({"title": "Fix login", "type": "task", "status": "todo"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let issue = made["data"]["id"].as_str().unwrap().to_owned();
    let body = json!({"body": "ready for work", "authorName": "someone-else", "authorType": "agent"});
    let (st, c) = send_as(&s, &ann, Method::POST, &format!("/api/issues/{issue}/comments"), Some(body)).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!((c["data"]["authorName"].as_str(), c["data"]["authorType"].as_str()), (Some("ann"), Some("human")));

    let me = reqwest::Client::new().get(format!("{}/api/me", s.url)).bearer_auth(&builder).header("X-Loop-Agent", "w1");
    let me: Value = me.send().await.unwrap().json().await.unwrap();
    assert_eq!((me["data"]["role"].as_str(), me["data"]["agentName"].as_str()), (Some("agent"), Some("builder/w1")));
    let (st, claimed) = claim(&s, &builder, Some("w1")).await;
    assert_eq!(st, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["session"]["agent"], "builder/w1");
    let patch = json!({"status": "done", "commits": [{"sha": "abc1234"}]});
    let (st, _) = send_as(&s, &builder, Method::PATCH, &format!("/api/issues/{issue}"), Some(patch)).await;
    assert_eq!(st, StatusCode::OK, "an agent token changes the issue it holds");

    let (_, events) = send_as(&s, KEY, Method::GET, &format!("/api/issues/{issue}/events"), None).await;
    let actors: Vec<&str> = events["data"].as_array().unwrap().iter().filter_map(|e| e["actor"].as_str()).collect();
    assert!(actors.contains(&"ann") && actors.contains(&"builder/w1"), "{actors:?}");
    assert!(!actors.contains(&"human"), "nobody acted as the master key: {actors:?}");

    // Another agent token cannot touch what builder holds.
    let other = token(&s, json!({"name": "other", "role": "agent"})).await;
    let second = todo(&s, "second").await;
    let (st, _) = claim(&s, &builder, None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) =
        send_as(&s, &other, Method::PATCH, &format!("/api/issues/{second}"), Some(json!({"status": "done"}))).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn an_agent_token_holds_no_more_claims_than_it_may() {
    let s = start().await;
    for i in 0..6 {
        todo(&s, &format!("t{i}")).await;
    }
    let one = token(&s, json!({"name": "solo", "role": "agent"})).await;
    let (st, first) = claim(&s, &one, None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, refused) = claim(&s, &one, Some("another-worker")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["code"], "claim_limit");
    let number = first["issue"]["number"].as_i64().unwrap();
    let message = refused["error"].as_str().unwrap();
    assert!(message.contains("may hold 1 claim") && message.contains(&format!("#{number}")), "{message}");
    let session = first["session"]["id"].as_str().unwrap();
    let (st, _) = send_as(&s, &one, Method::POST, &format!("/api/sessions/{session}/release"), Some(json!({}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(claim(&s, &one, None).await.0, StatusCode::OK, "released, it may claim again");

    // Eight claims at once under a limit of two: exactly two are taken.
    let pair = token(&s, json!({"name": "pair", "role": "agent", "maxClaims": 2})).await;
    let attempts = (0..8).map(|i| {
        let (s, pair) = (&s, pair.clone());
        async move { claim(s, &pair, Some(&format!("w{i}"))).await.0 }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|st| **st == StatusCode::OK).count(), 2, "{statuses:?}");
    assert!(statuses.iter().all(|st| [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS].contains(st)), "{statuses:?}");
}

#[tokio::test]
async fn request_rates_are_limited_per_token_with_retry_after() {
    let s = start().await;
    let slow = token(&s, json!({"name": "slow", "role": "member", "ratePerMinute": 3})).await;
    for _ in 0..3 {
        assert_eq!(send_as(&s, &slow, Method::GET, "/api/issues", None).await.0, StatusCode::OK);
    }
    let resp = reqwest::Client::new().get(format!("{}/api/issues", s.url)).bearer_auth(&slow).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "20");
    assert_eq!(send_as(&s, KEY, Method::GET, "/api/issues", None).await.0, StatusCode::OK, "others are not slowed");
}

#[tokio::test]
async fn secrets_are_kept_only_as_hashes_and_revocation_is_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loop.db");
    let store = loop_store::sqlite::SqliteStore::open(
        loop_store::sqlite::SqliteConfig::new(db.to_string_lossy()),
        Arc::new(loop_core::SystemClock),
    )
    .await
    .unwrap();
    let s = common::serve_store(Arc::new(store), dir, |c| c).await;
    let secret = token(&s, json!({"name": "ci", "role": "ingest"})).await;
    let (_, listed) = send_as(&s, KEY, Method::GET, "/api/tokens", None).await;
    assert!(!listed.to_string().contains(&secret[6..]), "the list shows no secret");
    let signal = json!({"source": "ci", "type": "build", "title": "Nightly build failed", "payload": {}});
    assert_eq!(send_as(&s, &secret, Method::POST, "/api/signals", Some(signal.clone())).await.0, StatusCode::CREATED);

    // The secret is in no file of the database (main file and log), only its hash is.
    let files: Vec<u8> = ["loop.db", "loop.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(db.with_file_name(f)).unwrap_or_default())
        .collect();
    let hex = &secret[6..];
    assert!(!files.windows(hex.len()).any(|w| w == hex.as_bytes()), "the secret is stored");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let hash: String =
        conn.query_row("SELECT secret_hash FROM api_tokens WHERE name = 'ci'", [], |r| r.get(0)).unwrap();
    assert_eq!(hash.len(), 64);

    let (st, _) = send_as(&s, KEY, Method::DELETE, "/api/tokens/ci", None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = send_as(&s, &secret, Method::POST, "/api/signals", Some(signal)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("revoked"), "{body}");
    assert!(token(&s, json!({"name": "ci", "role": "ingest"})).await.starts_with("loopk_"), "the name is free again");
}

#[tokio::test]
async fn an_ingest_token_sends_signals_to_its_project_only() {
    let s = start().await;
    let (_, web) = send_as(&s, KEY, Method::POST, "/api/projects", Some(json!({"name": "Web"}))).await;
    let (_, api) = send_as(&s, KEY, Method::POST, "/api/projects", Some(json!({"name": "Api"}))).await;
    let web = web["data"]["id"].as_str().unwrap().to_owned();
    let api = api["data"]["id"].as_str().unwrap().to_owned();
    let site = token(&s, json!({"name": "site", "role": "ingest", "projectId": web})).await;
    let signal = |project: Option<&str>| {
        let mut b = json!({"source": "site", "type": "error", "title": "500 on /pay", "payload": {"n": 1}});
        if let Some(p) = project {
            b["projectId"] = json!(p);
        }
        b
    };
    let (st, made) = send_as(&s, &site, Method::POST, "/api/signals", Some(signal(None))).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert_eq!(made["data"]["issue"]["projectId"], json!(web), "sent to its project");
    let (st, body) = send_as(&s, &site, Method::POST, "/api/signals", Some(signal(Some(&api)))).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let (st, _) = send_as(&s, &site, Method::GET, "/api/issues", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "an ingest token reads nothing");
}

#[tokio::test]
async fn people_sign_in_to_the_dashboard_with_their_own_tokens() {
    let s = start().await;
    let ann = token(&s, json!({"name": "ann", "role": "member"})).await;
    let bot = token(&s, json!({"name": "bot", "role": "agent"})).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let sign_in = |key: String| {
        http.post(format!("{}/login", s.url))
            .header("origin", &s.url)
            .form(&[("key", key.as_str()), ("next", "/issues")])
            .send()
    };
    let refused = sign_in(bot).await.unwrap();
    assert_eq!(refused.headers()["location"], "/login?error=1&next=%2Fissues", "agent tokens do not sign in");
    let res = sign_in(ann).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = |path: &str| http.get(format!("{}{path}", s.url)).header("cookie", &cookie).send();
    let html = page("/issues").await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"title="Signed in as">ann<"#), "shows who is signed in");

    let (st, _) = send_as(&s, KEY, Method::DELETE, "/api/tokens/ann", None).await;
    assert_eq!(st, StatusCode::OK);
    let after = page("/issues").await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "revoking the token signs the browser out");

    // Guessing is slow: ten attempts a minute per address.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(sign_in("loopk_guess".into()).await.unwrap().status());
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}

#[tokio::test]
async fn tokens_are_made_checked_and_listed_by_admins_only() {
    let s = start_with(|c| c).await;
    let admin = token(&s, json!({"name": "root", "role": "admin"})).await;
    let (st, made) =
        send_as(&s, &admin, Method::POST, "/api/tokens", Some(json!({"name": "x", "role": "agent"}))).await;
    assert_eq!(st, StatusCode::CREATED, "an admin token makes tokens: {made}");
    let (st, dup) = send_as(&s, &admin, Method::POST, "/api/tokens", Some(json!({"name": "x", "role": "agent"}))).await;
    assert_eq!((st, dup["code"].as_str()), (StatusCode::CONFLICT, Some("name_taken")));
    let (st, bad) =
        send_as(&s, &admin, Method::POST, "/api/tokens", Some(json!({"name": "X Y", "role": "agent"}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad["error"].as_str().unwrap().starts_with("name:"), "{bad}");
    let (st, bad) = send_as(&s, &admin, Method::POST, "/api/tokens", Some(json!({"name": "y", "role": "boss"}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let (_, list) = send_as(&s, &admin, Method::GET, "/api/tokens", None).await;
    let names: Vec<&str> = list["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["root", "x"]);
    assert!(list["data"][0]["lastUsedAt"].is_string(), "use is noted: {list}");
    assert_eq!(list["data"][1]["maxClaims"], 1, "agent tokens hold one claim unless told");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_two_postgres_nodes_limits_and_revocations_hold_everywhere() {
    use loop_store::postgres::{PgConfig, PgStore, testing};
    let database = testing::database().await;
    let node = || async {
        let store = PgStore::open(PgConfig::new(&database.url), Arc::new(loop_core::SystemClock)).await.unwrap();
        common::serve_store(Arc::new(store), tempfile::tempdir().unwrap(), |c| c).await
    };
    let (a, b) = (node().await, node().await);
    for i in 0..10 {
        todo(&a, &format!("t{i}")).await;
    }
    let fleet = token(&a, json!({"name": "fleet", "role": "agent", "maxClaims": 3})).await;
    // Twelve claims at once, half on each node, under a limit of three.
    let attempts = (0..12).map(|i| {
        let (node, fleet) = (if i % 2 == 0 { &a } else { &b }, fleet.clone());
        async move { claim(node, &fleet, Some(&format!("w{i}"))).await.0 }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|st| **st == StatusCode::OK).count(), 3, "{statuses:?}");

    assert_eq!(send_as(&b, &fleet, Method::GET, "/api/issues", None).await.0, StatusCode::OK);
    assert_eq!(send_as(&a, KEY, Method::DELETE, "/api/tokens/fleet", None).await.0, StatusCode::OK);
    let (st, body) = send_as(&b, &fleet, Method::GET, "/api/issues", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "revoked on one node, refused on the other at once: {body}");
}

#[tokio::test]
async fn admins_make_and_revoke_tokens_on_the_dashboard() {
    let s = start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let sign_in = |key: String| {
        let http = http.clone();
        let url = s.url.clone();
        async move {
            let res = http
                .post(format!("{url}/login"))
                .header("origin", &url)
                .form(&[("key", key.as_str())])
                .send()
                .await
                .unwrap();
            res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
        }
    };
    let admin = sign_in(KEY.to_owned()).await;
    let html = http
        .get(format!("{}/settings/tokens", s.url))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = html.find(r#"name="_csrf" value=""#).expect("a form") + 20;
    let csrf = html[at..at + 32].to_owned();
    let form = [("_csrf", csrf.as_str()), ("name", "builder-2"), ("role", "agent"), ("expires", "30"), ("origins", "")];
    let made = http
        .post(format!("{}/settings/tokens", s.url))
        .header("cookie", &admin)
        .header("origin", &s.url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::OK);
    let page = made.text().await.unwrap();
    let secret = &page[page.find("loopk_").expect("the secret is shown once")..][..70];
    assert_eq!(send_as(&s, secret, Method::GET, "/api/issues", None).await.0, StatusCode::OK, "it works at once");
    let again = http.get(format!("{}/settings/tokens", s.url)).header("cookie", &admin).send().await.unwrap();
    assert!(!again.text().await.unwrap().contains(secret), "and is never shown again");

    let revoke = [("_csrf", csrf.as_str()), ("name", "builder-2")];
    let res = http
        .post(format!("{}/settings/tokens/revoke", s.url))
        .header("cookie", &admin)
        .header("origin", &s.url)
        .form(&revoke)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(send_as(&s, secret, Method::GET, "/api/issues", None).await.0, StatusCode::UNAUTHORIZED);

    // A member signs in but administers nothing.
    let ann = token(&s, json!({"name": "ann", "role": "member"})).await;
    let member = sign_in(ann).await;
    let res = http.get(format!("{}/settings/tokens", s.url)).header("cookie", &member).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
