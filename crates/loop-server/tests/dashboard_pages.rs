//! The dashboard's pages over real HTTP (no browser): sign-in and its cookie, CSRF and origin
//! checks on every form, logout, escaping of user content, errors as pages, and the live event
//! stream. `browser.rs` drives the same pages in Chromium.

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

struct Web {
    url: String,
    http: reqwest::Client,
}

impl Web {
    fn new(url: &str) -> Web {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Web { url: url.to_owned(), http }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.url)).header("accept", "text/html");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.url)).form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send().await.unwrap()
    }

    /// Signs in; returns the `name=value` cookie.
    async fn sign_in(&self) -> String {
        let res = self.post("/login", None, Some(&self.url), &[("key", common::KEY), ("next", "/issues")]).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        set_cookie(res.headers()).split(';').next().unwrap().to_owned()
    }

    async fn page(&self, path: &str, cookie: &str) -> String {
        let res = self.get(path, Some(cookie)).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.text().await.unwrap()
    }

    /// The CSRF token in a page's forms.
    async fn csrf(&self, path: &str, cookie: &str) -> String {
        let html = self.page(path, cookie).await;
        let at = html.find(r#"name="_csrf" value=""#).expect("a form with a CSRF token") + 20;
        html[at..at + 32].to_owned()
    }
}

fn set_cookie(h: &HeaderMap) -> String {
    h.get(SET_COOKIE).expect("Set-Cookie").to_str().unwrap().to_owned()
}

fn location(res: &reqwest::Response) -> String {
    res.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_never_shows_the_key() {
    let server = common::start().await;
    let web = Web::new(&server.url);

    let res = web.get("/issues?status=todo", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?next=%2Fissues%3Fstatus%3Dtodo");
    assert_eq!(location(&web.get("/", None).await), "/issues", "a browser at / is sent to the dashboard");
    let api_root: Value = reqwest::get(format!("{}/", server.url)).await.unwrap().json().await.unwrap();
    assert_eq!(api_root["name"], "Loop API", "clients still get {{name, version}} at /");

    let wrong = web.post("/login", None, Some(&server.url), &[("key", "loop_nope"), ("next", "/goals")]).await;
    assert_eq!(location(&wrong), "/login?error=1&next=%2Fgoals");
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    let login_page = web.page("/login?error=1", "").await;
    assert!(login_page.contains("neither this server's API key"));

    // Browsers drop tabs and newlines from a Location: "/\t/evil.example" would lead off-site.
    for next in ["/\t/evil.example", "/\n/evil.example", "/issues\r\nSet-Cookie: x=1"] {
        let res = web.post("/login", None, Some(&server.url), &[("key", common::KEY), ("next", next)]).await;
        assert_eq!((res.status(), location(&res)), (StatusCode::SEE_OTHER, "/issues".into()), "{next:?}");
    }
    let page = web.page("/login?next=/%09/evil.example", "").await;
    assert!(page.contains(r#"name="next" value="/issues""#), "the form carries only a local path");
    let res = web.post("/login", None, Some(&server.url), &[("key", common::KEY), ("next", "//evil.example/x")]).await;
    assert_eq!(location(&res), "/issues", "only local paths are followed after sign-in");
    let cookie = set_cookie(res.headers());
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains(common::KEY));
    let session = cookie.split(';').next().unwrap();

    server.issue_with(json!({ "title": "visible", "type": "task" })).await;
    for path in ["/issues", "/issues/1", "/activity", "/goals", "/prompts"] {
        let res = web.get(path, Some(session)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let csp = res.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!res.text().await.unwrap().contains(common::KEY), "{path} shows the key");
    }

    let forged = session.replace(&session[session.len() - 4..], "0000");
    assert_eq!(web.get("/issues", Some(&forged)).await.status(), StatusCode::SEE_OTHER, "a tampered cookie is refused");
    assert_eq!(web.get("/issues", Some(common::KEY)).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forms_need_this_sessions_csrf_token_and_loops_own_origin() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    let issue = server.task("target").await;
    let path = format!("/issues/{}/comments", issue.number);
    let cookie = web.sign_in().await;
    let token = web.csrf(&format!("/issues/{}", issue.number), &cookie).await;
    let other_session = web.sign_in().await;
    let other_token = web.csrf("/issues", &other_session).await;
    assert_ne!(token, other_token, "each session has its own token");

    let missing = web.post(&path, Some(&cookie), Some(&server.url), &[("body", "x")]).await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.text().await.unwrap().contains("_csrf"), "the error names the missing field");
    let wrong = web.post(&path, Some(&cookie), Some(&server.url), &[("_csrf", &other_token), ("body", "x")]).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(wrong.text().await.unwrap().contains("reload the page"));
    let cross = web.post(&path, Some(&cookie), Some("http://evil.example"), &[("_csrf", &token), ("body", "x")]).await;
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let anonymous = web.post(&path, None, Some(&server.url), &[("_csrf", &token), ("body", "x")]).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert!(location(&anonymous).starts_with("/login"));
    assert!(server.client.comments(&issue.id).await.unwrap().is_empty(), "no refused form wrote anything");

    let ok = web.post(&path, Some(&cookie), Some(&server.url), &[("_csrf", &token), ("body", "Looks **good**")]).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), format!("/issues/{}#comments", issue.number));
    let comments = server.client.comments(&issue.id).await.unwrap();
    assert_eq!((comments.len(), comments[0].comment.body.as_str()), (1, "Looks **good**"));
    assert_eq!(comments[0].comment.author_type.as_str(), "human");

    // Updates go through the API's validation: an empty comment is refused, naming the field.
    let empty = web.post(&path, Some(&cookie), Some(&server.url), &[("_csrf", &token), ("body", "")]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.text().await.unwrap().contains("body"));

    let update = format!("/issues/{}/update", issue.number);
    let res = web.post(&update, Some(&cookie), None, &[("_csrf", &token), ("status", "todo"), ("priority", "1")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let now = server.client.issue(&issue.id).await.unwrap().issue;
    assert_eq!((now.status.as_str(), now.priority.value()), ("todo", 1));
    let bad = web.post(&update, Some(&cookie), None, &[("_csrf", &token), ("status", "finished")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("status"));
}

#[tokio::test]
async fn triage_accepts_or_declines_with_a_reason() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    let cookie = web.sign_in().await;
    let keep = server.issue_with(json!({ "title": "keep", "type": "signal" })).await;
    let drop = server.issue_with(json!({ "title": "drop", "type": "signal" })).await;
    let token = web.csrf("/issues", &cookie).await;
    let triage = |n: i64| format!("/issues/{n}/triage");

    let res = web.post(&triage(keep.number), Some(&cookie), None, &[("_csrf", &token), ("decision", "accept")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.client.issue(&keep.id).await.unwrap().issue.status.as_str(), "backlog");
    let again = web.post(&triage(keep.number), Some(&cookie), None, &[("_csrf", &token), ("decision", "accept")]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "it is no longer in triage");

    let form = [("_csrf", token.as_str()), ("decision", "decline"), ("reason", "duplicate of #1")];
    assert_eq!(web.post(&triage(drop.number), Some(&cookie), None, &form).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.client.issue(&drop.id).await.unwrap().issue.status.as_str(), "canceled");
    let comments = server.client.comments(&drop.id).await.unwrap();
    assert_eq!(comments[0].comment.body, "Declined in triage: duplicate of #1");

    let odd = server.issue_with(json!({ "title": "odd", "type": "signal" })).await;
    let res = web.post(&triage(odd.number), Some(&cookie), None, &[("_csrf", &token), ("decision", "maybe")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.client.issue(&odd.id).await.unwrap().issue.status.as_str(), "triage");
}

#[tokio::test]
async fn a_repeated_signal_shows_how_often_it_was_seen() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    let cookie = web.sign_in().await;
    let signal = json!({ "source": "sentry", "sourceId": "evt-1", "type": "error", "payload": { "message": "boom" } });
    let first: serde_json::Value = server.client.post("/api/signals", &signal).await.unwrap();
    server.client.post::<serde_json::Value>("/api/signals", &signal).await.unwrap();
    let page = web.page(&format!("/issues/{}", first["data"]["issue"]["number"]), &cookie).await;
    assert!(page.contains("Seen <strong>2</strong> times, last "), "{page}");
}

#[tokio::test]
async fn a_session_shows_what_its_runner_recorded() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    let cookie = web.sign_in().await;
    let issue = server.issue_with(json!({ "title": "recorded", "type": "task", "status": "todo" })).await;
    let claim: serde_json::Value =
        server.client.post(&format!("/api/issues/{}/dispatch", issue.id), &json!({})).await.unwrap();
    let session = claim["session"]["id"].as_str().unwrap();
    let record = json!({
        "attestation": { "agent": { "command": "sh agent.sh", "result": "passed (exit 0)", "model": "m-1" },
                         "verify": [{ "command": "cargo test", "result": "passed (exit 0)" }],
                         "branch": "loop/1-recorded", "pullRequest": "https://example.test/pr/3" },
        "transcript": "step one\n<script>alert(1)</script>\n", "costUsd": 0.5,
    });
    server.client.put::<serde_json::Value>(&format!("/api/sessions/{session}/record"), &record).await.unwrap();
    let page = web.page(&format!("/issues/{}", issue.number), &cookie).await;
    for part in [
        "What ran",
        "<code>sh agent.sh</code>: passed (exit 0) · m-1",
        "<code>cargo test</code>",
        "loop/1-recorded",
        "$0.50",
    ] {
        assert!(page.contains(part), "{part} missing from the issue page");
    }
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>alert(1)"),
        "the transcript is escaped"
    );
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    let cookie = web.sign_in().await;
    let token = web.csrf("/issues", &cookie).await;
    let res = web.post("/logout", Some(&cookie), Some(&server.url), &[("_csrf", &token)]).await;
    assert_eq!(location(&res), "/login");
    assert!(set_cookie(res.headers()).contains("Max-Age=0"), "the browser forgets the cookie");
    assert_eq!(web.get("/issues", Some(&cookie)).await.status(), StatusCode::SEE_OTHER, "and a copy no longer works");
}

#[tokio::test]
async fn user_content_is_escaped_and_bad_input_is_a_page_that_says_what_to_fix() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    let cookie = web.sign_in().await;
    let evil = server
        .issue_with(json!({ "title": "<img src=x onerror=alert(1)>", "type": "task",
                            "description": "<script>alert(2)</script> [x](javascript:alert(3))" }))
        .await;
    let list = web.page("/issues", &cookie).await;
    assert!(list.contains("&lt;img src=x onerror=alert(1)&gt;") && !list.contains("<img src=x"));
    let detail = web.page(&format!("/issues/{}", evil.number), &cookie).await;
    assert!(!detail.contains("<script>alert") && !detail.contains("href=\"javascript:"), "{detail}");

    let res = web.get("/issues?status=finished", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    assert!(text.contains("status") && text.contains("expected one of"), "{text}");
    let res = web.get("/issues?sort=colour", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(web.get("/issues/999", Some(&cookie)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(web.get("/prompts/nope", Some(&cookie)).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn filters_sort_and_pages_are_in_the_url() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    let cookie = web.sign_in().await;
    for i in 0..60 {
        let status = if i % 2 == 0 { "todo" } else { "backlog" };
        server.issue_with(json!({ "title": format!("item {i:02}"), "type": "task", "status": status })).await;
    }
    let page = web.page("/issues?status=todo&sort=title", &cookie).await;
    assert!(page.contains("30 matching"));
    let first = page.find("item 00").unwrap();
    assert!(first < page.find("item 02").unwrap(), "sorted by title");
    assert!(!page.contains("item 01"), "filtered");
    let page = web.page("/issues", &cookie).await;
    assert!(page.contains("1–50 of 60") && page.contains("offset=50"), "newest first, paginated");
    assert!(page.find("item 59").unwrap() < page.find("item 58").unwrap());
    let next = web.page("/issues?offset=50", &cookie).await;
    assert!(next.contains("51–60 of 60") && next.contains("item 00"));
    let found = web.page("/issues?q=ITEM+07", &cookie).await;
    assert!(found.contains("1 matching"));
}

#[tokio::test]
async fn the_event_stream_announces_changes_and_needs_a_session() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    assert_eq!(web.get("/events", None).await.status(), StatusCode::UNAUTHORIZED);
    let cookie = web.sign_in().await;
    let mut stream = web.get("/events", Some(&cookie)).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));

    let issue = server.task("fresh").await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains(&issue.id) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.expect("an event within 5 s");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("the stream stays open")));
    }
    assert!(seen.contains("event: change") && seen.contains("\"kind\":\"created\""), "{seen}");
    let id_line = seen.lines().find(|l| l.starts_with("id: ")).expect("an event id to resume from");

    // A browser that reconnects with Last-Event-ID gets what it missed, and nothing twice.
    let missed = server.task("missed").await;
    let mut resumed = web
        .http
        .get(format!("{}/events", server.url))
        .header("cookie", &cookie)
        .header("last-event-id", id_line.trim_start_matches("id: "))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains(&missed.id) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resumed.chunk()).await.expect("the missed event");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    assert!(!seen.contains(&issue.id), "{seen}");

    // A shutdown ends the stream, so the server does not wait for the browser to leave.
    server.closing.close();
    let end = async { while let Some(_chunk) = resumed.chunk().await.unwrap() {} };
    tokio::time::timeout(Duration::from_secs(2), end).await.expect("the stream ends on shutdown");
}

/// Behind a reverse proxy the browser's origin is the public URL, while `Host` may be the
/// proxy's internal name for the node: forms from the public origin are accepted, others not.
#[tokio::test]
async fn forms_from_the_public_url_pass_behind_a_proxy() {
    let server =
        common::start_with(|c| loop_server::ServerConfig { public_url: "https://loop.example.com/".into(), ..c }).await;
    let web = Web::new(&server.url);
    let signed_in =
        web.post("/login", None, Some("https://loop.example.com"), &[("key", common::KEY), ("next", "/issues")]).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(signed_in.headers()).split(';').next().unwrap().to_owned();
    let issue = server.task("behind a proxy").await;
    let token = web.csrf(&format!("/issues/{}", issue.number), &cookie).await;
    let path = format!("/issues/{}/comments", issue.number);
    let elsewhere =
        web.post(&path, Some(&cookie), Some("https://loop.example.org"), &[("_csrf", &token), ("body", "x")]).await;
    assert_eq!(elsewhere.status(), StatusCode::FORBIDDEN);
    let public =
        web.post(&path, Some(&cookie), Some("https://loop.example.com"), &[("_csrf", &token), ("body", "ok")]).await;
    assert_eq!(public.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.client.comments(&issue.id).await.unwrap().len(), 1, "only the public origin's form wrote");
}

#[tokio::test]
async fn the_inbox_shows_agents_questions_and_an_answer_sends_the_issue_back_to_work() {
    let server = common::start().await;
    let web = Web::new(&server.url);
    let cookie = web.sign_in().await;
    assert!(web.page("/inbox", &cookie).await.contains("No agent is waiting"));
    let issue = server.issue_with(json!({ "title": "Pick a <colour>", "type": "task", "status": "todo" })).await;
    let claim: Value = server.client.get("/api/dispatch/next").await.unwrap();
    let session = claim["session"]["id"].as_str().unwrap();
    let asked: Value = server
        .client
        .post(&format!("/api/sessions/{session}/questions"), &json!({ "question": "Blue or <b>green</b>?" }))
        .await
        .unwrap();
    let question = asked["data"]["id"].as_str().unwrap();

    let page = web.page("/inbox", &cookie).await;
    assert!(page.contains("Pick a &lt;colour&gt;") && page.contains("Blue or"), "{page}");
    assert!(!page.contains("<b>green</b>"), "the question is escaped");
    assert!(web.page(&format!("/issues/{}", issue.number), &cookie).await.contains("Waiting for a person"));
    let token = web.csrf("/inbox", &cookie).await;
    let empty =
        web.post("/inbox", Some(&cookie), None, &[("_csrf", &token), ("question", question), ("answer", " ")]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY, "an empty answer says what to fix");
    let form = [("_csrf", token.as_str()), ("question", question), ("answer", "Blue")];
    let res = web.post("/inbox", Some(&cookie), None, &form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(web.page("/inbox", &cookie).await.contains("No agent is waiting"));
    let detail = server.client.issue(&issue.id).await.unwrap();
    assert!(!detail.issue.awaiting_input);
    let next: Value = server.client.get("/api/dispatch/next").await.unwrap();
    assert_eq!(next["issue"]["id"], issue.id.as_str(), "answered, it is dispatched again");
    assert!(next["prompt"].as_str().unwrap().contains("Blue"));
}
