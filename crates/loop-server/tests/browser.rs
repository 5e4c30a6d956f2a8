//! The dashboard in a real headless Chromium against a real server on 127.0.0.1: sign in,
//! filter, keyboard, open an issue, comment, accept a triage item, see a live update arrive,
//! preview and promote a template version, switch theme, log out. Screenshots of every view go
//! to `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test fails under CI and says so elsewhere.

mod common;
mod webdriver;

use std::path::PathBuf;

use serde_json::{Value, json};
use webdriver::Browser;

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let Some((chromium, driver)) = webdriver::binaries() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser tests: install Debian's chromium and chromium-driver"
        );
        eprintln!("SKIPPED: no chromium/chromedriver here (apt-get install chromium chromium-driver)");
        return;
    };
    let server = common::start().await;
    let c = &server.client;
    let shots = screenshots();

    // A small loop: a project with a goal, a signal chain, a triage item and a template draft.
    let project: Value = c.post("/api/projects", &json!({ "name": "Onboarding", "status": "active" })).await.unwrap();
    let project_id = project["data"]["id"].as_str().unwrap().to_owned();
    let goal: Value = c
        .post(
            "/api/goals",
            &json!({ "title": "Signup conversion", "metric": "conversion", "targetValue": 4.0, "currentValue": 3.0,
                     "unit": "%", "projectId": project_id }),
        )
        .await
        .unwrap();
    let goal_id = goal["data"]["id"].as_str().unwrap();
    for v in [2.8, 3.4] {
        let _: Value = c.patch(&format!("/api/goals/{goal_id}"), &json!({ "currentValue": v })).await.unwrap();
    }
    let signal: Value = c
        .post(
            "/api/signals",
            &json!({ "source": "posthog", "title": "Conversion dropped 12%", "severity": "high",
                                        "payload": { "metric": "conversion" }, "projectId": project_id }),
        )
        .await
        .unwrap();
    let signal_number = signal["data"]["issue"]["number"].as_i64().unwrap();
    let signal_id = signal["data"]["issue"]["id"].as_str().unwrap().to_owned();
    let task = server
        .issue_with(json!({ "title": "Add a spinner to the OAuth button", "type": "task", "status": "todo",
                             "parentId": signal_id, "projectId": project_id, "priority": 2,
                             "description": "Users **double-click**.\n\n<script>window.pwned = 1</script>" }))
        .await;
    for i in 0..12 {
        server.issue_with(json!({ "title": format!("Backlog item {i}"), "type": "task", "status": "backlog" })).await;
    }
    let templates: Value = c.get("/api/templates?limit=200").await.unwrap();
    let template =
        templates["data"].as_array().unwrap().iter().find(|t| t["slug"] == "task-execution").unwrap().clone();
    let template_id = template["id"].as_str().unwrap();
    // An agent claims the task and reviews the prompt it was given, badly: the template needs attention.
    let claim: Value = c.get("/api/dispatch/next").await.unwrap();
    assert_eq!(claim["issue"]["id"], json!(task.id));
    for score in [2, 3] {
        let review = json!({ "versionId": claim["meta"]["versionId"], "issueId": task.id,
                             "clarity": score, "completeness": score, "relevance": 2, "feedback": "Too long" });
        let _: Value = c.post("/api/prompt-reviews", &review).await.unwrap();
    }
    let _: Value = c.patch(&format!("/api/issues/{}", task.id), &json!({ "status": "todo" })).await.unwrap();
    let draft: Value = c
        .post(
            &format!("/api/templates/{template_id}/versions"),
            &json!({ "content": "Work on #{{issue.number}}: {{issue.title}}\n", "changelog": "Shorter" }),
        )
        .await
        .unwrap();
    let draft_version = draft["data"]["version"].as_i64().unwrap();

    let b = Browser::start(&chromium, &driver).await;
    let url = &server.url;

    // Signing in: the key is posted once and never shows up in a page; the cookie is HttpOnly.
    b.goto(&format!("{url}/")).await;
    assert!(b.url().await.contains("/login"), "a stranger is sent to the login page");
    b.screenshot(&shots.join("login.png")).await;
    b.type_into("#key", "loop_wrong").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("main", "neither this server's API key", 5).await;
    b.type_into("#key", common::KEY).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("h1", "Issues", 5).await;
    assert!(b.url().await.ends_with("/issues"));
    assert_eq!(b.script("return document.cookie.includes('loop_session')").await, json!(false));
    assert_eq!(
        b.script(&format!("return document.documentElement.outerHTML.includes('{}')", common::KEY)).await,
        json!(false)
    );
    assert_eq!(b.script("return window.pwned === undefined").await, json!(true));
    b.screenshot(&shots.join("issues.png")).await;

    // Filtering is in the URL; a select applies at once.
    b.choose("select[name=status]", "triage").await;
    b.wait_for_text(".count", "1 matching", 5).await;
    assert!(b.url().await.contains("status=triage"), "filters are shareable: {}", b.url().await);
    let rows = b.script("return document.querySelectorAll('tbody tr').length").await;
    assert_eq!(rows, json!(1));

    // Keyboard: / searches; j selects the first row and Enter opens it.
    b.goto(&format!("{url}/issues")).await;
    b.press(&["/"]).await;
    assert_eq!(b.script("return document.activeElement.name").await, json!("q"));
    b.press(&["s", "p", "i", "n", "n", "e", "r", "\u{E007}"]).await; // \u{E007} is Enter
    b.wait_for_text(".count", "1 matching", 5).await;
    b.press(&["j", "\u{E007}"]).await;
    b.wait_for_text("h1", "Add a spinner", 5).await;
    let description = b.text(".markdown").await;
    assert!(description.contains("<script>"), "raw HTML is shown as text: {description}");
    assert_eq!(b.script("return document.querySelector('.markdown strong').textContent").await, json!("double-click"));

    // A comment.
    b.type_into("#comment-body", "Spinner added in **#851**").await;
    b.click(".comment-form button").await;
    b.wait_for_text("#comments", "Spinner added in", 5).await;
    assert!(b.url().await.ends_with(&format!("/issues/{}#comments", task.number)));

    // Triage: accept the signal.
    b.goto(&format!("{url}/issues/{signal_number}")).await;
    b.wait_for_text(".triage", "Triage", 5).await;
    b.screenshot(&shots.join("issue-triage.png")).await;
    b.click(".triage button[value=accept]").await;
    b.wait_for_text(".meta-row", "backlog", 5).await;
    let after: Value = c.get(&format!("/api/issues/{signal_number}")).await.unwrap();
    assert_eq!(after["data"]["status"], "backlog");

    // Live: a change made through the API shows up without a reload.
    let refreshed = b.script("return document.body.dataset.refreshed || '0'").await;
    let _: Value = c.patch(&format!("/api/issues/{signal_id}"), &json!({ "status": "todo" })).await.unwrap();
    b.wait_for_text(".meta-row", "todo", 5).await;
    assert_ne!(b.script("return document.body.dataset.refreshed || '0'").await, refreshed, "updated in place");
    assert_eq!(b.script("return document.querySelector('.live').dataset.state").await, json!("on"));
    b.screenshot(&shots.join("issue.png")).await;

    // Activity: the chain, root first.
    b.goto(&format!("{url}/activity")).await;
    b.wait_for_text(".timeline", "Conversion dropped 12%", 5).await;
    b.wait_for_text(".timeline", "Add a spinner", 5).await;
    b.screenshot(&shots.join("activity.png")).await;

    // Goals: value, target, progress and trend.
    b.goto(&format!("{url}/goals")).await;
    let card = b.wait_for_text(".goal", "Signup conversion", 5).await;
    assert!(card.contains("3.4%") && card.contains("4%"), "{card}");
    b.find(".progress span").await;
    b.find(".trend.good").await;
    b.screenshot(&shots.join("goals.png")).await;

    // Prompts: the health table, then a template: preview a draft against an issue, promote.
    b.goto(&format!("{url}/prompts")).await;
    b.wait_for_text("table.prompts", "task-execution", 5).await;
    b.wait_for_text("tr.attention", "needs attention", 5).await;
    b.find("tr.attention svg.spark").await;
    b.screenshot(&shots.join("prompts.png")).await;
    b.goto(&format!("{url}/prompts/{template_id}")).await;
    b.wait_for_text("#diff", &format!("v{draft_version}"), 5).await;
    b.type_into("#content", "Fix #{{issue.number}} ({{issue.title}}) now.").await;
    b.type_into("#issue", &format!("#{}", task.number)).await;
    b.click("button[formaction$='/preview#preview']").await;
    b.wait_for_text("#preview", &format!("Fix #{} (Add a spinner to the OAuth button) now.", task.number), 5).await;
    b.screenshot(&shots.join("prompt-preview.png")).await;
    b.goto(&format!("{url}/prompts/{template_id}")).await;
    b.click("table.versions form button").await;
    // "retired" appears only once the promotion has happened ("active" is there before it).
    b.wait_for_text("table.versions", "retired", 5).await;
    let detail: Value = c.get(&format!("/api/templates/{template_id}")).await.unwrap();
    assert_eq!(detail["data"]["activeVersion"]["version"].as_i64(), Some(draft_version), "the draft was promoted");
    b.screenshot(&shots.join("prompt-template.png")).await;

    // Themes and a phone-sized window.
    b.goto(&format!("{url}/issues")).await;
    let before = b.script("return getComputedStyle(document.body).backgroundColor").await;
    b.click("button.theme").await;
    let theme = b.script("return document.documentElement.dataset.theme").await;
    assert!(theme == "dark" || theme == "light");
    assert_ne!(b.script("return getComputedStyle(document.body).backgroundColor").await, before);
    b.goto(&format!("{url}/issues")).await;
    assert_eq!(b.script("return document.documentElement.dataset.theme").await, theme, "the server remembers it");
    b.screenshot(&shots.join(format!("issues-{}.png", theme.as_str().unwrap()))).await;
    b.set_window(390, 844).await;
    b.screenshot(&shots.join("issues-phone.png")).await;
    b.set_window(1280, 900).await;

    // Log out: the session is over.
    b.click("form.logout button").await;
    b.find("#key").await;
    b.goto(&format!("{url}/issues")).await;
    assert!(b.url().await.contains("/login"));
}

/// Serves `html` at `/` on a free loopback port: another site. Returns its origin.
async fn site(html: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(html) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feedback_widget_on_another_site() {
    let Some((chromium, driver)) = webdriver::binaries() else {
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser tests");
        eprintln!("SKIPPED: no chromium/chromedriver here");
        return;
    };
    let server = common::start().await;
    let page = |token: &str| {
        format!(
            "<!doctype html><html style=\"color-scheme: dark\"><body><h1>Shop</h1>\
             <script src=\"{}/widget.js\" data-token=\"{token}\" async></script></body></html>",
            server.url
        )
    };
    // The token allows one site; a second site embeds the same token but is not allowed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed = format!("http://{}", listener.local_addr().unwrap());
    let made: Value = server
        .client
        .post("/api/tokens", &json!({ "name": "shop", "role": "ingest", "allowedOrigins": [allowed] }))
        .await
        .unwrap();
    let token = made["data"]["secret"].as_str().unwrap().to_owned();
    let html = page(&token);
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(html) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let elsewhere = site(page(&token)).await;

    let b = Browser::start(&chromium, &driver).await;
    b.goto(&format!("{allowed}/")).await;
    b.click("#loop-fb .open").await;
    assert!(
        b.script("return document.getElementById('loop-fb').className").await.as_str().unwrap().contains("dark"),
        "the widget follows the page's dark scheme"
    );
    b.choose("#loop-fb-kind", "friction").await;
    b.type_into("#loop-fb-message", "The pay button hides behind the banner").await;
    b.click("#loop-fb .send").await;
    b.wait_for_text("#loop-fb .status", "Thanks", 5).await;
    b.screenshot(&screenshots().join("widget.png")).await;
    let signals: Value = server.client.get("/api/signals").await.unwrap();
    let signal = &signals["data"][0];
    assert_eq!((signal["source"].as_str(), signal["type"].as_str()), (Some("widget"), Some("friction")));
    assert_eq!(signal["payload"]["pageUrl"], format!("{allowed}/"));

    b.goto(&format!("{elsewhere}/")).await;
    b.click("#loop-fb .open").await;
    b.type_into("#loop-fb-message", "From a site that is not allowed").await;
    b.click("#loop-fb .send").await;
    b.wait_for_text("#loop-fb .status", "could not be sent", 5).await;
    let signals: Value = server.client.get("/api/signals").await.unwrap();
    assert_eq!(signals["total"], 1, "nothing came from the other site");
}
