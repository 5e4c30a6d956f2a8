//! Provider webhooks: `POST /api/signals/{github,sentry,posthog}`.
//!
//! Each is authenticated by the provider's own signature (never by the Bearer key), processed
//! once per delivery id, and refuses bad deliveries with a JSON 4xx without writing anything.
//! The same matrix (valid, tampered, unsigned, replayed, oversized, wrong content type,
//! malformed, not configured, insecure mode) runs against every provider; the provider-specific
//! behaviour follows. Payloads are in `tests/fixtures/webhooks/`, shaped like each provider's
//! documented examples.

mod common;

use common::{KEY, TestServer, comments, get_issue, id, start_with};
use hmac::{Hmac, Mac};
use loop_server::{Secret, ServerConfig, WebhookSecrets};
use serde_json::{Value, json};
use sha2::Sha256;

const GITHUB_SECRET: &str = "gh-webhook-secret-3f9a2c";
const SENTRY_SECRET: &str = "sentry-client-secret-8c21e0b7";
const POSTHOG_SECRET: &str = "posthog-shared-secret-51d0";

// ---------------------------------------------------------------------------------------------
// Servers, fixtures, signing

fn all_secrets() -> WebhookSecrets {
    WebhookSecrets {
        github: Some(Secret::new(GITHUB_SECRET)),
        sentry: Some(Secret::new(SENTRY_SECRET)),
        posthog: Some(Secret::new(POSTHOG_SECRET)),
    }
}

/// A server with every provider's secret configured.
async fn server() -> TestServer {
    start_with(|c| ServerConfig { webhooks: all_secrets(), ..c }).await
}

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/webhooks/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

/// A fixture with some fields changed (re-serialised compactly).
fn fixture_with(path: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(&fixture(path)).expect("fixture is JSON");
    edit(&mut v);
    v.to_string()
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    text: String,
}

impl Reply {
    #[track_caller]
    fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "{}", self.text);
        self
    }

    /// A JSON error of this status and code (`{error, code, message}`).
    #[track_caller]
    fn expect_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert!(self.body["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", self.text);
        assert_eq!(self.body["message"], self.body["error"], "{}", self.text);
        self
    }

    /// 202 `{ignored: true, reason}`.
    #[track_caller]
    fn expect_ignored(&self) -> &Self {
        assert_eq!(self.status, 202, "{}", self.text);
        assert_eq!(self.body["ignored"], true, "{}", self.text);
        assert!(self.body["reason"].as_str().is_some_and(|r| !r.is_empty()), "{}", self.text);
        self
    }

    /// 200 `{duplicate: true}`.
    #[track_caller]
    fn expect_duplicate(&self) -> &Self {
        assert_eq!(self.status, 200, "{}", self.text);
        assert_eq!(self.body["duplicate"], true, "{}", self.text);
        self
    }

    /// 201 with a new signal and its issue.
    #[track_caller]
    fn expect_created(&self) -> (&Value, &Value) {
        assert_eq!(self.status, 201, "{}", self.text);
        self.parts()
    }

    /// 200 `deduplicated: true`: one more occurrence of an open signal.
    #[track_caller]
    fn expect_deduplicated(&self) -> (&Value, &Value) {
        assert_eq!(self.status, 200, "{}", self.text);
        assert_eq!(self.body["deduplicated"], true, "{}", self.text);
        self.parts()
    }

    #[track_caller]
    fn parts(&self) -> (&Value, &Value) {
        let (signal, issue) = (&self.body["data"]["signal"], &self.body["data"]["issue"]);
        assert!(signal.is_object() && issue.is_object(), "no data.signal / data.issue: {}", self.text);
        (signal, issue)
    }
}

/// One webhook delivery as it goes over the wire.
#[derive(Debug, Clone)]
struct Hook {
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Hook {
    fn new(path: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Hook { path, headers: Vec::new(), body: body.into() }.content_type("application/json")
    }

    /// Sets (replaces) a header.
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn content_type(self, content_type: &str) -> Self {
        self.header("content-type", content_type)
    }

    /// The Bearer master key, which webhooks must never accept in place of a signature.
    fn bearer(self) -> Self {
        self.header("authorization", format!("Bearer {KEY}"))
    }

    /// Swaps the body and keeps every header, so a signature no longer matches.
    fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    async fn send(&self, s: &TestServer) -> Reply {
        self.send_with(&reqwest::Client::new(), &s.url).await
    }

    async fn send_with(&self, client: &reqwest::Client, base: &str) -> Reply {
        let mut req = client.post(format!("{base}{}", self.path)).body(self.body.clone());
        for (n, v) in &self.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let resp = req.send().await.expect("send webhook");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("read reply");
        Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }
}

/// A GitHub delivery signed like GitHub does (`X-Hub-Signature-256: sha256=<hex>`).
fn github(event: &str, delivery: &str, body: impl AsRef<str>) -> Hook {
    let body = body.as_ref();
    Hook::new("/api/signals/github", body)
        .header("user-agent", "GitHub-Hookshot/5a4f7e1")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-github-hook-id", "481093717")
        .header("x-hub-signature-256", format!("sha256={}", hmac_hex(GITHUB_SECRET, body.as_bytes())))
}

/// A Sentry integration delivery (`Sentry-Hook-Signature: <hex>`, `Request-ID`).
fn sentry(resource: &str, request_id: &str, body: impl AsRef<str>) -> Hook {
    let body = body.as_ref();
    Hook::new("/api/signals/sentry", body)
        .header("request-id", request_id)
        .header("sentry-hook-resource", resource)
        .header("sentry-hook-timestamp", "1714659668")
        .header("sentry-hook-signature", hmac_hex(SENTRY_SECRET, body.as_bytes()))
}

/// A PostHog delivery carrying the shared secret.
fn posthog(body: impl AsRef<str>) -> Hook {
    Hook::new("/api/signals/posthog", body.as_ref()).header("x-posthog-secret", POSTHOG_SECRET)
}

async fn snapshot(s: &TestServer) -> (u64, u64) {
    (s.issue_count().await, s.signal_count().await)
}

/// `(kind, data)` of every event in an issue's history, oldest first.
async fn events(s: &TestServer, issue_id: &str) -> Vec<(String, Value)> {
    let page = s.client.issue_events(issue_id, "limit=200").await.expect("events");
    page.data.into_iter().map(|e| (e.kind.as_str().to_owned(), e.data)).collect()
}

// ---------------------------------------------------------------------------------------------
// The matrix every provider goes through

#[derive(Clone, Copy)]
struct Provider {
    name: &'static str,
    /// The variable the 404 for an unconfigured provider must name.
    env_var: &'static str,
    /// The header that authenticates a delivery.
    auth_header: &'static str,
    /// A payload that opens a signal issue.
    body: fn() -> String,
    /// `body` delivered as delivery `id`, correctly authenticated.
    signed: fn(&str, &str) -> Hook,
    /// Authenticated with something made from the wrong secret.
    forged: fn(Hook) -> Hook,
    /// Altered in transit (for a shared secret, which covers no body: a wrong secret).
    tampered: fn(Hook) -> Hook,
    without_secret: fn() -> WebhookSecrets,
}

impl Provider {
    fn valid(&self, id: &str) -> Hook {
        (self.signed)(id, &(self.body)())
    }

    fn signed_as(&self, id: &str, body: &str) -> Hook {
        (self.signed)(id, body)
    }

    /// `body` padded past 1 MiB while staying valid JSON.
    fn oversized_body(&self) -> String {
        let mut v: Value = serde_json::from_str(&(self.body)()).unwrap();
        v["padding"] = json!("x".repeat(1024 * 1024 + 1));
        v.to_string()
    }
}

const GITHUB: Provider = Provider {
    name: "github",
    env_var: "LOOP_GITHUB_WEBHOOK_SECRET",
    auth_header: "x-hub-signature-256",
    body: || fixture("github/workflow_run_completed.json"),
    signed: |id, body| github("workflow_run", id, body),
    forged: |h| {
        let sig = format!("sha256={}", hmac_hex("not-the-secret", &h.body));
        h.header("x-hub-signature-256", sig)
    },
    tampered: |h| {
        let body = String::from_utf8(h.body.clone()).unwrap().replace("\"failure\"", "\"success\"");
        h.with_body(body)
    },
    without_secret: || WebhookSecrets { github: None, ..all_secrets() },
};

const SENTRY: Provider = Provider {
    name: "sentry",
    env_var: "LOOP_SENTRY_CLIENT_SECRET",
    auth_header: "sentry-hook-signature",
    body: || fixture("sentry/event_alert.json"),
    signed: |id, body| sentry("event_alert", id, body),
    forged: |h| {
        let sig = hmac_hex("not-the-secret", &h.body);
        h.header("sentry-hook-signature", sig)
    },
    tampered: |h| {
        let body = String::from_utf8(h.body.clone()).unwrap().replace("\"level\": \"error\"", "\"level\": \"info\"");
        h.with_body(body)
    },
    without_secret: || WebhookSecrets { sentry: None, ..all_secrets() },
};

const POSTHOG: Provider = Provider {
    name: "posthog",
    env_var: "LOOP_POSTHOG_WEBHOOK_SECRET",
    auth_header: "x-posthog-secret",
    body: || fixture("posthog/metric_change.json"),
    signed: |_, body| posthog(body),
    forged: |h| h.header("x-posthog-secret", "not-the-secret"),
    tampered: |h| h.header("x-posthog-secret", format!("{POSTHOG_SECRET}x")),
    without_secret: || WebhookSecrets { posthog: None, ..all_secrets() },
};

/// The delivery id a failed attempt used is still free: the real delivery goes through.
async fn assert_still_accepted(s: &TestServer, p: Provider, id: &str) {
    let r = p.valid(id).send(s).await;
    let (signal, issue) = r.expect_created();
    assert_eq!(signal["source"], p.name);
    assert_eq!(issue["type"], "signal");
}

async fn valid_delivery_opens_a_signal_issue(p: Provider) {
    let s = server().await;
    let r = p.valid("delivery-1").send(&s).await;
    let (signal, issue) = r.expect_created();
    assert_eq!(signal["source"], p.name);
    assert_eq!(signal["occurrences"], 1);
    assert_eq!(signal["issueId"], issue["id"]);
    assert_eq!(issue["type"], "signal");
    assert_eq!(issue["status"], "triage");
    assert_eq!(issue["signalSource"], p.name);
    let stored = get_issue(&s, &id(issue)).await;
    assert_eq!(stored["title"], issue["title"]);
    assert_eq!(snapshot(&s).await, (1, 1));
    // A Bearer key next to a valid signature changes nothing.
    let mut other: Value = serde_json::from_str(&(p.body)()).unwrap();
    other["note"] = json!("second delivery");
    let r = (p.signed)("delivery-2", &other.to_string()).bearer().send(&s).await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
}

async fn tampered_or_forged_deliveries_are_401(p: Provider) {
    let s = server().await;
    let tampered = (p.tampered)(p.valid("delivery-1")).send(&s).await;
    tampered.expect_error(401, "invalid_signature");
    let forged = (p.forged)(p.valid("delivery-1")).send(&s).await;
    forged.expect_error(401, "invalid_signature");
    // Not a signature at all, an empty one, or one cut short.
    let valid = p.valid("delivery-1");
    let cut = valid.headers.iter().find(|(n, _)| n == p.auth_header).map(|(_, v)| v[..v.len() - 2].to_owned());
    for value in ["sha256=zz-not-hex".to_owned(), "sha256=".to_owned(), cut.unwrap()] {
        let r = valid.clone().header(p.auth_header, value.as_str()).send(&s).await;
        r.expect_error(401, "invalid_signature");
    }
    assert_eq!(snapshot(&s).await, (0, 0));
    assert_still_accepted(&s, p, "delivery-1").await;
}

async fn unsigned_deliveries_are_401_even_with_the_bearer_key(p: Provider) {
    let s = server().await;
    let unsigned = p.valid("delivery-1").without(p.auth_header);
    unsigned.send(&s).await.expect_error(401, "invalid_signature");
    unsigned.clone().bearer().send(&s).await.expect_error(401, "invalid_signature");
    p.valid("delivery-1").header(p.auth_header, "").bearer().send(&s).await.expect_error(401, "invalid_signature");
    // The Bearer key in the signature header is no better.
    p.valid("delivery-1").header(p.auth_header, KEY).send(&s).await.expect_error(401, "invalid_signature");
    assert_eq!(snapshot(&s).await, (0, 0));
    assert_still_accepted(&s, p, "delivery-1").await;
}

async fn a_replayed_delivery_is_processed_once(p: Provider) {
    let s = server().await;
    let hook = p.valid("delivery-1");
    let first = hook.send(&s).await;
    let issue_id = id(first.expect_created().1);
    for _ in 0..2 {
        let again = hook.send(&s).await;
        again.expect_duplicate();
        assert!(again.body.get("data").is_none(), "{}", again.text);
    }
    assert_eq!(snapshot(&s).await, (1, 1));
    let (signals, _) = s.signals("").await;
    assert_eq!(signals[0]["occurrences"], 1, "a replay is not another occurrence");
    assert!(comments(&s, &issue_id).await.is_empty());
    assert!(!events(&s, &issue_id).await.iter().any(|(k, _)| k == "signal_repeated"));
}

async fn an_oversized_body_is_413(p: Provider) {
    let s = server().await;
    let r = (p.signed)("delivery-1", &p.oversized_body()).send(&s).await;
    r.expect_error(413, "body_too_large");
    assert_eq!(snapshot(&s).await, (0, 0));
    assert_still_accepted(&s, p, "delivery-1").await;
}

async fn a_correctly_signed_non_json_content_type_is_415(p: Provider) {
    let s = server().await;
    let body = (p.body)();
    // GitHub's other delivery format: `payload=<url-encoded JSON>`.
    let form = serde_urlencoded::to_string([("payload", body.as_str())]).unwrap();
    let cases = [
        (p.signed)("delivery-1", &form).content_type("application/x-www-form-urlencoded"),
        (p.signed)("delivery-1", &body).content_type("text/plain"),
        (p.signed)("delivery-1", &body).content_type("application/xml"),
        (p.signed)("delivery-1", &body).without("content-type"),
    ];
    for hook in cases {
        hook.send(&s).await.expect_error(415, "unsupported_media_type");
    }
    assert_eq!(snapshot(&s).await, (0, 0));
    assert_still_accepted(&s, p, "delivery-1").await;
}

async fn correctly_signed_malformed_json_is_400(p: Provider) {
    let s = server().await;
    let body = (p.body)();
    for broken in [&body[..body.len() / 2], "{", "not json", "", "{\"a\": 1} trailing"] {
        let r = (p.signed)("delivery-1", broken).send(&s).await;
        r.expect_error(400, "malformed_json");
    }
    assert_eq!(snapshot(&s).await, (0, 0));
    assert_still_accepted(&s, p, "delivery-1").await;
}

async fn an_unconfigured_provider_is_404_naming_the_variable(p: Provider) {
    let s = start_with(|c| ServerConfig { webhooks: (p.without_secret)(), ..c }).await;
    for hook in [p.valid("delivery-1"), p.valid("delivery-1").without(p.auth_header), p.valid("delivery-1").bearer()] {
        let r = hook.send(&s).await;
        r.expect_error(404, "webhook_not_configured");
        assert!(r.body["message"].as_str().unwrap().contains(p.env_var), "{}", r.text);
    }
    assert_eq!(snapshot(&s).await, (0, 0));
}

async fn insecure_mode_accepts_unsigned_deliveries_for_providers_without_a_secret(p: Provider) {
    let s = start_with(|c| ServerConfig { insecure_webhooks: true, webhooks: (p.without_secret)(), ..c }).await;
    let r = p.valid("delivery-1").without(p.auth_header).send(&s).await;
    let (signal, _) = r.expect_created();
    assert_eq!(signal["source"], p.name);
    // Still processed once.
    p.valid("delivery-1").without(p.auth_header).send(&s).await.expect_duplicate();
    // Still JSON only.
    let r = (p.signed)("delivery-2", "{").without(p.auth_header).send(&s).await;
    r.expect_error(400, "malformed_json");
    assert_eq!(snapshot(&s).await, (1, 1));
}

async fn insecure_mode_never_bypasses_a_configured_secret(p: Provider) {
    let s = start_with(|c| ServerConfig { insecure_webhooks: true, webhooks: all_secrets(), ..c }).await;
    p.valid("delivery-1").without(p.auth_header).send(&s).await.expect_error(401, "invalid_signature");
    (p.forged)(p.valid("delivery-1")).send(&s).await.expect_error(401, "invalid_signature");
    assert_eq!(snapshot(&s).await, (0, 0));
    assert_still_accepted(&s, p, "delivery-1").await;
}

macro_rules! matrix {
    ($($module:ident => $provider:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test]
            async fn valid_delivery_opens_a_signal_issue() {
                super::valid_delivery_opens_a_signal_issue($provider).await
            }

            #[tokio::test]
            async fn tampered_or_forged_deliveries_are_401() {
                super::tampered_or_forged_deliveries_are_401($provider).await
            }

            #[tokio::test]
            async fn unsigned_deliveries_are_401_even_with_the_bearer_key() {
                super::unsigned_deliveries_are_401_even_with_the_bearer_key($provider).await
            }

            #[tokio::test]
            async fn a_replayed_delivery_is_processed_once() {
                super::a_replayed_delivery_is_processed_once($provider).await
            }

            #[tokio::test]
            async fn an_oversized_body_is_413() {
                super::an_oversized_body_is_413($provider).await
            }

            #[tokio::test]
            async fn a_correctly_signed_non_json_content_type_is_415() {
                super::a_correctly_signed_non_json_content_type_is_415($provider).await
            }

            #[tokio::test]
            async fn correctly_signed_malformed_json_is_400() {
                super::correctly_signed_malformed_json_is_400($provider).await
            }

            #[tokio::test]
            async fn an_unconfigured_provider_is_404_naming_the_variable() {
                super::an_unconfigured_provider_is_404_naming_the_variable($provider).await
            }

            #[tokio::test]
            async fn insecure_mode_accepts_unsigned_deliveries_for_providers_without_a_secret() {
                super::insecure_mode_accepts_unsigned_deliveries_for_providers_without_a_secret($provider).await
            }

            #[tokio::test]
            async fn insecure_mode_never_bypasses_a_configured_secret() {
                super::insecure_mode_never_bypasses_a_configured_secret($provider).await
            }
        }
    )*};
}

matrix! {
    github_matrix => GITHUB,
    sentry_matrix => SENTRY,
    posthog_matrix => POSTHOG,
}

// ---------------------------------------------------------------------------------------------
// GitHub

#[tokio::test]
async fn github_ping_is_200_and_creates_nothing() {
    let s = server().await;
    let body = fixture("github/ping.json");
    let r = github("ping", "ping-1", &body).send(&s).await;
    r.expect(200);
    assert_eq!(r.body["zen"], "Keep it logically awesome.", "{}", r.text);
    // A ping is signed like everything else.
    github("ping", "ping-2", &body)
        .without("x-hub-signature-256")
        .send(&s)
        .await
        .expect_error(401, "invalid_signature");
    assert_eq!(snapshot(&s).await, (0, 0));
}

#[tokio::test]
async fn github_issue_labelled_ready_becomes_a_todo_task_linking_back() {
    let s = server().await;
    let r = github("issues", "gh-issue-1", fixture("github/issues_labeled.json")).send(&s).await;
    let (signal, task) = r.expect_created();
    assert_eq!(task["type"], "task");
    assert_eq!(task["status"], "todo");
    assert_eq!(task["title"], "Cart total ignores the discount code on mobile");
    let description = task["description"].as_str().expect("a description");
    for needle in ["318", "https://github.com/acme/shop/issues/318", "The total stays at the undiscounted price."] {
        assert!(description.contains(needle), "description lacks {needle:?}: {description}");
    }
    assert_eq!(signal["source"], "github");
    assert_eq!(signal["sourceId"], "acme/shop#318");
    assert_eq!(signal["payload"]["number"], 318);
    assert_eq!(signal["payload"]["url"], "https://github.com/acme/shop/issues/318");

    let stored = get_issue(&s, &id(task)).await;
    assert_eq!((&stored["type"], &stored["status"]), (&json!("task"), &json!("todo")));
    assert_eq!(snapshot(&s).await, (1, 1));
    github("issues", "gh-issue-1", fixture("github/issues_labeled.json")).send(&s).await.expect_duplicate();
    assert_eq!(snapshot(&s).await, (1, 1));
}

#[tokio::test]
async fn github_other_issue_events_and_labels_are_ignored() {
    let s = server().await;
    let bug = fixture_with("github/issues_labeled.json", |v| v["label"] = json!({ "id": 1, "name": "bug" }));
    github("issues", "gh-1", bug).send(&s).await.expect_ignored();
    // Near misses of the ready label.
    for name in ["loop", "ready", "loop:ready-later"] {
        let body = fixture_with("github/issues_labeled.json", |v| v["label"]["name"] = json!(name));
        github("issues", &format!("gh-{name}"), body).send(&s).await.expect_ignored();
    }
    for action in ["opened", "unlabeled", "edited", "closed"] {
        let body = fixture_with("github/issues_labeled.json", |v| v["action"] = json!(action));
        github("issues", &format!("gh-{action}"), body).send(&s).await.expect_ignored();
    }
    assert_eq!(snapshot(&s).await, (0, 0));
}

#[tokio::test]
async fn github_a_ready_label_without_its_issue_is_refused_and_creates_nothing() {
    let s = server().await;
    for (delivery, edit) in [("gh-no-issue", json!(null)), ("gh-no-number", json!({ "title": "orphan" }))] {
        let body = fixture_with("github/issues_labeled.json", |v| v["issue"] = edit);
        let r = github("issues", delivery, body).send(&s).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.body["details"]["field"], "issue.number", "{}", r.text);
    }
    assert_eq!(snapshot(&s).await, (0, 0));
}

#[tokio::test]
async fn github_the_ready_label_is_configurable() {
    let s =
        start_with(|c| ServerConfig { webhooks: all_secrets(), github_ready_label: "agent-ready".into(), ..c }).await;
    github("issues", "gh-1", fixture("github/issues_labeled.json")).send(&s).await.expect_ignored();
    let body = fixture_with("github/issues_labeled.json", |v| v["label"]["name"] = json!("agent-ready"));
    let r = github("issues", "gh-2", body).send(&s).await;
    assert_eq!(r.expect_created().1["type"], "task");
}

fn assert_names_the_run(issue: &Value, workflow: &str, branch: &str, sha: &str, url: &str) {
    let text = format!("{}\n{}", issue["title"].as_str().unwrap(), issue["description"].as_str().unwrap_or_default());
    for needle in [workflow, branch, &sha[..7], url] {
        assert!(text.contains(needle), "signal issue does not name {needle:?}:\n{text}");
    }
}

#[tokio::test]
async fn github_failed_check_run_opens_a_triage_signal_naming_the_run() {
    let s = server().await;
    let r = github("check_run", "gh-cr-1", fixture("github/check_run_completed.json")).send(&s).await;
    let (signal, issue) = r.expect_created();
    assert_eq!((&issue["type"], &issue["status"]), (&json!("signal"), &json!("triage")));
    assert_eq!(issue["priority"], 2, "CI failures are high");
    assert_eq!(signal["type"], "ci_failure");
    assert_names_the_run(
        issue,
        "test (ubuntu-latest)",
        "main",
        "9f3c2b1e7d4a6c8b0e2f4a6c8d0b2e4f6a8c0d2e",
        "https://github.com/acme/shop/actions/runs/8931502261/job/24518337502",
    );
    assert_eq!(signal["payload"]["commit"], "9f3c2b1e7d4a6c8b0e2f4a6c8d0b2e4f6a8c0d2e");
    assert_eq!(signal["payload"]["branch"], "main");
}

#[tokio::test]
async fn github_failed_workflow_run_opens_a_triage_signal_naming_the_run() {
    let s = server().await;
    let r = github("workflow_run", "gh-wr-1", fixture("github/workflow_run_completed.json")).send(&s).await;
    let (signal, issue) = r.expect_created();
    assert_eq!((&issue["type"], &issue["status"]), (&json!("signal"), &json!("triage")));
    assert_eq!(signal["type"], "ci_failure");
    assert_names_the_run(
        issue,
        "CI",
        "main",
        "9f3c2b1e7d4a6c8b0e2f4a6c8d0b2e4f6a8c0d2e",
        "https://github.com/acme/shop/actions/runs/8931502261",
    );
    assert_eq!(signal["payload"]["workflow"], "CI");
    assert_eq!(signal["payload"]["url"], "https://github.com/acme/shop/actions/runs/8931502261");
}

/// The workflow_run fixture as a later run: new run id, commit and URL on `branch`.
fn later_run(branch: &str, run_id: u64, sha: &str) -> String {
    fixture_with("github/workflow_run_completed.json", |v| {
        let run = &mut v["workflow_run"];
        run["id"] = json!(run_id);
        run["head_branch"] = json!(branch);
        run["head_sha"] = json!(sha);
        run["html_url"] = json!(format!("https://github.com/acme/shop/actions/runs/{run_id}"));
    })
}

#[tokio::test]
async fn github_a_second_failure_of_the_same_workflow_and_branch_is_deduplicated() {
    let s = server().await;
    let first = github("workflow_run", "gh-wr-1", fixture("github/workflow_run_completed.json")).send(&s).await;
    let issue_id = id(first.expect_created().1);

    let again =
        github("workflow_run", "gh-wr-2", later_run("main", 8931777001, "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"))
            .send(&s)
            .await;
    let (signal, issue) = again.expect_deduplicated();
    assert_eq!(id(issue), issue_id);
    assert_eq!(signal["occurrences"], 2);
    assert_eq!(snapshot(&s).await, (1, 1));
    let bodies = comments(&s, &issue_id).await;
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].contains("8931777001"), "the comment carries the new run: {}", bodies[0]);
    assert_eq!(s.signals("").await.0[0]["occurrences"], 2);

    // Another branch is another signal.
    let other = github("workflow_run", "gh-wr-3", later_run("release/2024.05", 8931777002, "1111111e7d4a6c8b0e2f4a6c"))
        .send(&s)
        .await;
    assert_ne!(id(other.expect_created().1), issue_id);
    assert_eq!(snapshot(&s).await, (2, 2));
}

#[tokio::test]
async fn github_successful_or_unfinished_runs_are_ignored() {
    let s = server().await;
    let wr_ok =
        fixture_with("github/workflow_run_completed.json", |v| v["workflow_run"]["conclusion"] = json!("success"));
    github("workflow_run", "gh-1", wr_ok).send(&s).await.expect_ignored();
    let cr_ok = fixture_with("github/check_run_completed.json", |v| v["check_run"]["conclusion"] = json!("success"));
    github("check_run", "gh-2", cr_ok).send(&s).await.expect_ignored();
    for action in ["requested", "in_progress"] {
        let body = fixture_with("github/workflow_run_completed.json", |v| {
            v["action"] = json!(action);
            v["workflow_run"]["status"] = json!(action);
            v["workflow_run"]["conclusion"] = Value::Null;
        });
        github("workflow_run", &format!("gh-{action}"), body).send(&s).await.expect_ignored();
    }
    let created = fixture_with("github/check_run_completed.json", |v| v["action"] = json!("created"));
    github("check_run", "gh-created", created).send(&s).await.expect_ignored();
    assert_eq!(snapshot(&s).await, (0, 0));
}

/// Creates tasks until issue number `n` exists.
async fn issues_up_to(s: &TestServer, n: i64) {
    for i in 1..=n {
        let created = s.task(&format!("Task {i}")).await;
        assert_eq!(created.number, i);
    }
}

fn merged_pr(number: u64, body: &str, branch: &str) -> String {
    fixture_with("github/pull_request_closed.json", |v| {
        v["number"] = json!(number);
        let pr = &mut v["pull_request"];
        pr["number"] = json!(number);
        pr["html_url"] = json!(format!("https://github.com/acme/shop/pull/{number}"));
        pr["body"] = json!(body);
        pr["head"]["ref"] = json!(branch);
    })
}

async fn pull_requests_of(s: &TestServer, number: i64) -> Vec<Value> {
    get_issue(s, &number.to_string()).await["pullRequests"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn github_a_merged_pr_naming_a_loop_issue_in_its_body_is_attached_to_it() {
    let s = server().await;
    issues_up_to(&s, 42).await;
    let r = github("pull_request", "gh-pr-1", fixture("github/pull_request_closed.json")).send(&s).await;
    r.expect(200);
    let attached = r.body["data"]["attachedTo"].as_array().expect("attachedTo");
    assert_eq!(attached.iter().map(|i| i["number"].as_i64().unwrap()).collect::<Vec<_>>(), [42]);

    let prs = pull_requests_of(&s, 42).await;
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert_eq!(prs[0]["number"], 327);
    assert_eq!(prs[0]["url"], "https://github.com/acme/shop/pull/327");
    assert_eq!(prs[0]["title"], "Apply discount codes before computing the cart total");
    let history = events(&s, &id(&get_issue(&s, "42").await)).await;
    let attached: Vec<&Value> = history.iter().filter(|(k, _)| k == "pull_request_attached").map(|(_, d)| d).collect();
    assert_eq!(attached.len(), 1, "{history:?}");
    assert_eq!(attached[0]["number"], 327);
    // Other issues are untouched, and nothing new was created.
    assert!(pull_requests_of(&s, 41).await.is_empty());
    assert_eq!(snapshot(&s).await, (42, 0));

    // The same delivery again changes nothing.
    github("pull_request", "gh-pr-1", fixture("github/pull_request_closed.json")).send(&s).await.expect_duplicate();
    let history = events(&s, &id(&get_issue(&s, "42").await)).await;
    assert_eq!(history.iter().filter(|(k, _)| k == "pull_request_attached").count(), 1);
    assert_eq!(pull_requests_of(&s, 42).await.len(), 1);
}

/// The delivery header is not signed: a captured body re-sent under a new delivery id is the
/// same delivery.
#[tokio::test]
async fn github_a_signed_body_replayed_under_a_new_delivery_id_is_processed_once() {
    let s = server().await;
    issues_up_to(&s, 42).await;
    github("pull_request", "gh-pr-1", fixture("github/pull_request_closed.json")).send(&s).await.expect(200);
    for replay in ["gh-pr-1-replayed", "another"] {
        github("pull_request", replay, fixture("github/pull_request_closed.json")).send(&s).await.expect_duplicate();
    }
    assert_eq!(pull_requests_of(&s, 42).await.len(), 1);
    let body = fixture("github/workflow_run_completed.json");
    github("workflow_run", "run-1", &body).send(&s).await.expect_created();
    github("workflow_run", "run-2", &body).send(&s).await.expect_duplicate();
    let (signals, _) = s.signals("").await;
    assert_eq!(signals[0]["occurrences"], 1, "a replay is not another occurrence");
}

#[tokio::test]
async fn github_a_merged_pr_naming_a_loop_issue_in_its_branch_is_attached_to_it() {
    let s = server().await;
    issues_up_to(&s, 43).await;
    let body = merged_pr(331, "Tidy the cart summary.", "fix/loop-43-cart-summary");
    github("pull_request", "gh-pr-2", body).send(&s).await.expect(200);
    let prs = pull_requests_of(&s, 43).await;
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert_eq!(prs[0]["number"], 331);
    assert!(pull_requests_of(&s, 42).await.is_empty());
    let history = events(&s, &id(&get_issue(&s, "43").await)).await;
    assert!(history.iter().any(|(k, d)| k == "pull_request_attached" && d["number"] == 331), "{history:?}");
}

#[tokio::test]
async fn github_prs_that_are_not_merged_or_name_no_loop_issue_are_ignored() {
    let s = server().await;
    issues_up_to(&s, 42).await;
    let unmerged = fixture_with("github/pull_request_closed.json", |v| {
        v["pull_request"]["merged"] = json!(false);
        v["pull_request"]["merged_at"] = Value::Null;
    });
    github("pull_request", "gh-1", unmerged).send(&s).await.expect_ignored();
    let opened = fixture_with("github/pull_request_closed.json", |v| {
        v["action"] = json!("opened");
        v["pull_request"]["state"] = json!("open");
        v["pull_request"]["merged"] = json!(false);
    });
    github("pull_request", "gh-2", opened).send(&s).await.expect_ignored();
    github("pull_request", "gh-3", merged_pr(400, "No reference here; see #42.", "fix/cart"))
        .send(&s)
        .await
        .expect_ignored();
    assert!(pull_requests_of(&s, 42).await.is_empty());
    assert_eq!(snapshot(&s).await, (42, 0));
}

#[tokio::test]
async fn github_unknown_events_are_ignored() {
    let s = server().await;
    github("star", "gh-1", fixture("github/star_created.json")).send(&s).await.expect_ignored();
    github("push", "gh-2", r#"{"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}}"#)
        .send(&s)
        .await
        .expect_ignored();
    github("issues", "gh-3", fixture("github/star_created.json")).send(&s).await.expect_ignored();
    // No event header at all.
    github("x", "gh-4", fixture("github/star_created.json")).without("x-github-event").send(&s).await.expect_ignored();
    assert_eq!(snapshot(&s).await, (0, 0));
}

// ---------------------------------------------------------------------------------------------
// Sentry

fn event_alert(issue_id: &str, level: &str) -> String {
    fixture_with("sentry/event_alert.json", |v| {
        let event = &mut v["data"]["event"];
        event["issue_id"] = json!(issue_id);
        event["level"] = json!(level);
        event["title"] = json!(format!("RangeError: invalid array length ({issue_id})"));
    })
}

#[tokio::test]
async fn sentry_an_issue_alert_opens_a_signal_from_its_event() {
    let s = server().await;
    let r = sentry("event_alert", "req-1", fixture("sentry/event_alert.json")).send(&s).await;
    let (signal, issue) = r.expect_created();
    assert_eq!((&issue["type"], &issue["status"]), (&json!("signal"), &json!("triage")));
    let title = issue["title"].as_str().unwrap();
    assert!(title.contains("TypeError: Cannot read properties of undefined (reading 'total')"), "{title}");
    let description = issue["description"].as_str().unwrap_or_default();
    assert!(description.contains("CartSummary(app/components/cart/summary)"), "{description}");
    assert!(
        description.contains("https://acme.sentry.io/issues/5290145782/events/68f3d2b2c39b4e1d8c6f0a2b4e6d8f01/"),
        "{description}"
    );
    assert_eq!(signal["source"], "sentry");
    assert_eq!(signal["sourceId"], "5290145782");
    assert_eq!(signal["type"], "event_alert");
    assert_eq!(signal["severity"], "high");
    assert_eq!(issue["priority"], 2);
}

#[tokio::test]
async fn sentry_the_level_sets_severity_and_priority() {
    let s = server().await;
    let cases = [("fatal", "critical", 1), ("error", "high", 2), ("warning", "medium", 3), ("info", "low", 4)];
    for (n, (level, severity, priority)) in cases.into_iter().enumerate() {
        let r = sentry("event_alert", &format!("req-{n}"), event_alert(&format!("60000000{n}"), level)).send(&s).await;
        let (signal, issue) = r.expect_created();
        assert_eq!(signal["severity"], severity, "{level}");
        assert_eq!(issue["priority"], priority, "{level}");
    }
    assert_eq!(snapshot(&s).await, (4, 4));
}

#[tokio::test]
async fn sentry_an_issue_webhook_opens_a_signal() {
    let s = server().await;
    let r = sentry("issue", "req-1", fixture("sentry/issue_created.json")).send(&s).await;
    let (signal, issue) = r.expect_created();
    assert!(issue["title"].as_str().unwrap().contains("OperationalError: database is locked"), "{}", r.text);
    assert_eq!(signal["sourceId"], "5290231107");
    assert_eq!(signal["type"], "issue");
    assert_eq!(signal["severity"], "critical", "fatal → critical");
    assert_eq!(issue["priority"], 1);
    assert!(issue["description"].as_str().unwrap_or_default().contains("https://acme.sentry.io/issues/5290231107/"));

    // Only a permalink: still linked.
    let permalink_only = fixture_with("sentry/issue_created.json", |v| {
        let i = &mut v["data"]["issue"];
        i["id"] = json!("5290231999");
        i["title"] = json!("KeyError: 'sku'");
        i["permalink"] = json!("https://acme.sentry.io/issues/5290231999/");
        i.as_object_mut().unwrap().remove("web_url");
    });
    let r = sentry("issue", "req-2", permalink_only).send(&s).await;
    let (_, issue) = r.expect_created();
    assert!(issue["description"].as_str().unwrap_or_default().contains("https://acme.sentry.io/issues/5290231999/"));
}

#[tokio::test]
async fn sentry_alerts_and_issue_webhooks_for_one_sentry_issue_share_a_signal() {
    let s = server().await;
    let first = sentry("event_alert", "req-1", event_alert("5290231107", "error")).send(&s).await;
    let issue_id = id(first.expect_created().1);
    let second = sentry("issue", "req-2", fixture("sentry/issue_created.json")).send(&s).await;
    let (signal, issue) = second.expect_deduplicated();
    assert_eq!(id(issue), issue_id);
    assert_eq!(signal["occurrences"], 2);
    assert_eq!(issue["priority"], 1, "the fatal repeat raised the priority");
    assert_eq!(snapshot(&s).await, (1, 1));
}

#[tokio::test]
async fn sentry_resolved_issues_and_other_resources_are_ignored() {
    let s = server().await;
    for action in ["resolved", "ignored", "assigned", "archived"] {
        let body = fixture_with("sentry/issue_created.json", |v| v["action"] = json!(action));
        sentry("issue", &format!("req-{action}"), body).send(&s).await.expect_ignored();
    }
    sentry("installation", "req-i", fixture("sentry/installation_created.json")).send(&s).await.expect_ignored();
    let comment = json!({
        "action": "created",
        "data": {
            "comment": "looking into it",
            "project_slug": "shop-web",
            "comment_id": 1234,
            "issue_id": 100,
            "timestamp": "2024-05-02T21:51:44.118160Z"
        },
        "installation": { "uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de" },
        "actor": { "type": "user", "id": 1, "name": "mona" }
    });
    sentry("comment", "req-c", comment.to_string()).send(&s).await.expect_ignored();
    assert_eq!(snapshot(&s).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_a_burst_of_100_identical_alerts_leaves_one_issue() {
    let s = server().await;
    let body = fixture("sentry/event_alert.json");
    let client = reqwest::Client::new();
    let mut replies = Vec::new();
    for batch in 0..10 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..10 {
            let hook = sentry("event_alert", &format!("burst-{batch}-{i}"), &body);
            let (client, url) = (client.clone(), s.url.clone());
            set.spawn(async move { hook.send_with(&client, &url).await });
        }
        while let Some(r) = set.join_next().await {
            replies.push(r.expect("task"));
        }
    }
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    let repeated = replies.iter().filter(|r| r.status == 200 && r.body["deduplicated"] == true).count();
    let other: Vec<String> = replies
        .iter()
        .filter(|r| r.status != 201 && r.status != 200)
        .map(|r| format!("{} {}", r.status, r.text))
        .collect();
    assert!(other.is_empty(), "{other:?}");
    assert_eq!((created.len(), repeated), (1, 99));

    assert_eq!(s.issue_count().await, 1);
    let (signals, total) = s.signals("").await;
    assert_eq!(total, 1);
    assert_eq!(signals[0]["occurrences"], 100);
    let issue_id = signals[0]["issueId"].as_str().unwrap().to_owned();
    assert_eq!(issue_id, id(created[0].parts().1));
    assert_eq!(comments(&s, &issue_id).await.len(), 99);
}

// ---------------------------------------------------------------------------------------------
// PostHog

async fn goal(s: &TestServer, metric: &str, current: f64) -> String {
    let body =
        json!({ "title": format!("Move {metric}"), "metric": metric, "currentValue": current, "targetValue": 4.0 });
    let g = s.client.create_goal(&body).await.expect("create goal");
    g.id
}

async fn current_value(s: &TestServer, goal_id: &str) -> Option<f64> {
    s.client.goal(goal_id).await.expect("goal").current_value
}

#[tokio::test]
async fn posthog_a_metric_change_opens_a_signal_and_updates_the_goal_tracking_it() {
    let s = server().await;
    let tracked = goal(&s, "signup_conversion_rate", 3.6).await;
    let untouched = goal(&s, "activation_rate", 41.0).await;

    let r = posthog(fixture("posthog/metric_change.json")).send(&s).await;
    let (signal, issue) = r.expect_created();
    assert_eq!((&issue["type"], &issue["status"]), (&json!("signal"), &json!("triage")));
    assert!(issue["title"].as_str().unwrap().contains("signup_conversion_rate"), "{}", r.text);
    assert_eq!(signal["source"], "posthog");
    assert_eq!(signal["type"], "metric_change");
    assert_eq!(signal["payload"]["current"], 3.2);

    assert_eq!(current_value(&s, &tracked).await, Some(3.2));
    assert_eq!(current_value(&s, &untouched).await, Some(41.0));
    let history = events(&s, &id(issue)).await;
    let updates: Vec<&Value> = history.iter().filter(|(k, _)| k == "goal_updated").map(|(_, d)| d).collect();
    assert_eq!(updates.len(), 1, "{history:?}");
    assert_eq!(updates[0]["goalId"], json!(tracked));
    assert_eq!(updates[0]["metric"], "signup_conversion_rate");
    assert_eq!((&updates[0]["from"], &updates[0]["to"]), (&json!(3.6), &json!(3.2)));
}

#[tokio::test]
async fn posthog_a_replayed_reading_does_not_move_the_goal_again() {
    let s = server().await;
    let tracked = goal(&s, "signup_conversion_rate", 3.6).await;
    let body = fixture("posthog/metric_change.json");
    let issue_id = id(posthog(&body).send(&s).await.expect_created().1);
    assert_eq!(current_value(&s, &tracked).await, Some(3.2));
    // Someone corrects the goal by hand; the replay must not overwrite it.
    s.client.update_goal(&tracked, &json!({ "currentValue": 3.4 })).await.expect("update goal");
    posthog(&body).send(&s).await.expect_duplicate();
    assert_eq!(current_value(&s, &tracked).await, Some(3.4));
    let history = events(&s, &issue_id).await;
    assert_eq!(history.iter().filter(|(k, _)| k == "goal_updated").count(), 1, "{history:?}");
}

#[tokio::test]
async fn posthog_a_later_reading_of_the_same_metric_is_one_signal_and_moves_the_goal_again() {
    let s = server().await;
    let tracked = goal(&s, "signup_conversion_rate", 3.6).await;
    let first = posthog(fixture("posthog/metric_change.json")).send(&s).await;
    let issue_id = id(first.expect_created().1);
    let later = r#"{"metric": "signup_conversion_rate", "previous": 3.2, "current": 2.9, "period": "24h"}"#;
    let r = posthog(later).send(&s).await;
    let (signal, issue) = r.expect_deduplicated();
    assert_eq!(id(issue), issue_id);
    assert_eq!(signal["occurrences"], 2);
    assert_eq!(current_value(&s, &tracked).await, Some(2.9));
    let history = events(&s, &issue_id).await;
    assert_eq!(history.iter().filter(|(k, _)| k == "goal_updated").count(), 2, "{history:?}");
    assert_eq!(snapshot(&s).await, (1, 1));
}

#[tokio::test]
async fn posthog_an_alert_opens_a_signal_and_updates_the_goal_tracking_its_metric() {
    let s = server().await;
    let dau = goal(&s, "daily_active_users", 1204.0).await;
    let r = posthog(fixture("posthog/alert.json")).send(&s).await;
    let (signal, issue) = r.expect_created();
    assert_eq!(signal["type"], "alert");
    assert_eq!(issue["type"], "signal");
    assert!(issue["title"].as_str().unwrap().contains("daily_active_users"), "{}", r.text);
    assert_eq!(current_value(&s, &dau).await, Some(812.0));
    assert!(events(&s, &id(issue)).await.iter().any(|(k, d)| k == "goal_updated" && d["goalId"] == json!(dau)));
}

#[tokio::test]
async fn posthog_an_action_opens_a_signal_without_touching_goals() {
    let s = server().await;
    let g = goal(&s, "checkout_failed", 12.0).await;
    let r = posthog(fixture("posthog/action.json")).send(&s).await;
    let (signal, issue) = r.expect_created();
    assert_eq!(signal["source"], "posthog");
    assert!(issue["title"].as_str().unwrap().contains("checkout_failed"), "{}", r.text);
    assert_eq!(signal["payload"]["event"]["properties"]["error_code"], "card_declined");
    // The action carries no numeric reading, so the goal keeps its value.
    assert_eq!(current_value(&s, &g).await, Some(12.0));
    assert!(!events(&s, &id(issue)).await.iter().any(|(k, _)| k == "goal_updated"));
}

#[tokio::test]
async fn posthog_a_non_numeric_reading_leaves_goals_alone() {
    let s = server().await;
    let g = goal(&s, "signup_conversion_rate", 3.6).await;
    let body = r#"{"metric": "signup_conversion_rate", "previous": "3.6", "current": "n/a", "period": "24h"}"#;
    let r = posthog(body).send(&s).await;
    r.expect_created();
    assert_eq!(current_value(&s, &g).await, Some(3.6));
}

#[tokio::test]
async fn posthog_a_payload_that_is_no_action_alert_or_metric_change_is_ignored() {
    let s = server().await;
    let mut wrong = Vec::new();
    for body in [r#"{"text": "Greetings from PostHog!"}"#, "{}", "null", "[]", r#""hello""#, "42"] {
        let r = posthog(body).send(&s).await;
        if !(r.status == 202 || (400..500).contains(&r.status)) {
            wrong.push(format!("{body} → {} {}", r.status, r.body["data"]["issue"]["title"]));
        }
    }
    assert!(wrong.is_empty(), "opened signals for:\n{}", wrong.join("\n"));
    assert_eq!(snapshot(&s).await, (0, 0));
}

#[tokio::test]
async fn posthog_a_payload_naming_no_metric_moves_no_goal() {
    let s = server().await;
    let g = goal(&s, "unknown_metric", 1.0).await;
    let r = posthog(r#"{"text": "Greetings from PostHog!", "value": 99}"#).send(&s).await;
    assert!(r.status < 500, "{}", r.text);
    assert_eq!(current_value(&s, &g).await, Some(1.0), "{}", r.text);
}

#[tokio::test]
async fn posthog_a_delivery_header_makes_a_delivery_unique() {
    let s = server().await;
    let first = posthog(fixture("posthog/metric_change.json")).header("x-posthog-delivery", "ph-1").send(&s).await;
    first.expect_created();
    let same_id = r#"{"metric": "signup_conversion_rate", "previous": 3.2, "current": 3.0, "period": "24h"}"#;
    posthog(same_id).header("x-posthog-delivery", "ph-1").send(&s).await.expect_duplicate();
    // Without the header, identical bodies are the same delivery.
    posthog(same_id).send(&s).await.expect_deduplicated();
    posthog(same_id).send(&s).await.expect_duplicate();
    assert_eq!(s.signals("").await.0[0]["occurrences"], 2);
}

// ---------------------------------------------------------------------------------------------
// Across providers

async fn auto_triage_new_signal_issue(p: Provider) {
    let s = start_with(|c| ServerConfig { webhooks: all_secrets(), auto_triage: true, ..c }).await;
    let r = p.valid("delivery-1").send(&s).await;
    let (_, issue) = r.expect_created();
    assert_eq!(issue["type"], "signal");
    assert_eq!(issue["status"], "todo", "auto-triage: new {} signal issues go straight to todo", p.name);
}

#[tokio::test]
async fn github_auto_triage_puts_a_ci_failure_signal_in_todo() {
    auto_triage_new_signal_issue(GITHUB).await;
}

#[tokio::test]
async fn sentry_auto_triage_puts_a_new_signal_in_todo() {
    auto_triage_new_signal_issue(SENTRY).await;
}

#[tokio::test]
async fn posthog_auto_triage_puts_a_new_signal_in_todo() {
    auto_triage_new_signal_issue(POSTHOG).await;
}

#[tokio::test]
async fn delivery_ids_are_per_provider() {
    let s = server().await;
    GITHUB.valid("shared-id").send(&s).await.expect_created();
    SENTRY.valid("shared-id").send(&s).await.expect_created();
    GITHUB.valid("shared-id").send(&s).await.expect_duplicate();
    SENTRY.valid("shared-id").send(&s).await.expect_duplicate();
    assert_eq!(snapshot(&s).await, (2, 2));
}

#[tokio::test]
async fn json_with_parameters_in_the_content_type_is_accepted() {
    let s = server().await;
    for (n, ct) in ["application/json; charset=utf-8", "Application/JSON"].into_iter().enumerate() {
        let r = SENTRY
            .signed_as(&format!("req-{n}"), &event_alert(&format!("70000000{n}"), "error"))
            .content_type(ct)
            .send(&s)
            .await;
        r.expect_created();
    }
}

#[tokio::test]
async fn a_body_of_exactly_one_mebibyte_is_accepted() {
    let s = server().await;
    let mut v: Value = serde_json::from_str(&fixture("github/workflow_run_completed.json")).unwrap();
    v["padding"] = json!("");
    let overhead = v.to_string().len();
    v["padding"] = json!("x".repeat(1024 * 1024 - overhead));
    let exact = v.to_string();
    assert_eq!(exact.len(), 1024 * 1024);
    github("workflow_run", "gh-exact", &exact).send(&s).await.expect_created();
    v["padding"] = json!("x".repeat(1024 * 1024 - overhead + 1));
    github("workflow_run", "gh-over", v.to_string()).send(&s).await.expect_error(413, "body_too_large");
    assert_eq!(snapshot(&s).await, (1, 1));
}

/// Sends `body` with `Transfer-Encoding: chunked` (no Content-Length) over a raw connection and
/// returns the status line's code.
async fn send_chunked(s: &TestServer, headers: &[(&str, String)], body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!("POST /api/signals/github HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let body = body.to_vec();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            wr.write_all(chunk).await?;
            wr.write_all(b"\r\n").await?;
        }
        wr.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(wr)
    });
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // The status line is all that is needed; the server may close early.
    while !reply.windows(2).any(|w| w == b"\r\n") {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    let _ = writer.await;
    let line = String::from_utf8_lossy(&reply);
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line: {line:?}"))
}

#[tokio::test]
async fn an_oversized_chunked_body_without_a_length_is_413() {
    let s = server().await;
    let body = GITHUB.oversized_body();
    let headers = [
        ("Content-Type", "application/json".to_owned()),
        ("X-GitHub-Event", "workflow_run".to_owned()),
        ("X-GitHub-Delivery", "gh-chunked".to_owned()),
        ("X-Hub-Signature-256", format!("sha256={}", hmac_hex(GITHUB_SECRET, body.as_bytes()))),
        ("Connection", "close".to_owned()),
    ];
    assert_eq!(send_chunked(&s, &headers, body.as_bytes()).await, 413);
    // A small chunked delivery is fine.
    let small = fixture("github/workflow_run_completed.json");
    let headers = [
        ("Content-Type", "application/json".to_owned()),
        ("X-GitHub-Event", "workflow_run".to_owned()),
        ("X-GitHub-Delivery", "gh-chunked-small".to_owned()),
        ("X-Hub-Signature-256", format!("sha256={}", hmac_hex(GITHUB_SECRET, small.as_bytes()))),
        ("Connection", "close".to_owned()),
    ];
    assert_eq!(send_chunked(&s, &headers, small.as_bytes()).await, 201);
    assert_eq!(snapshot(&s).await, (1, 1));
}

#[tokio::test]
async fn webhook_routes_answer_other_methods_with_a_json_4xx() {
    let s = server().await;
    for path in ["/api/signals/github", "/api/signals/sentry", "/api/signals/posthog"] {
        let r = s.anon.raw(reqwest::Method::GET, path, None).await.unwrap();
        assert!((400..500).contains(&r.status.as_u16()), "GET {path}: {} {}", r.status, r.text);
        assert!(r.body["code"].is_string(), "GET {path}: {}", r.text);
    }
}

/// On a watched branch a red run opens a fix task under its signal (once, however often it is
/// red), and a green run closes the signal and cancels the task nobody started.
#[tokio::test]
async fn github_red_ci_on_a_watched_branch_becomes_a_fix_task_and_green_closes_it() {
    let s = start_with(|c| ServerConfig { webhooks: all_secrets(), ci_fix_branches: vec!["main".into()], ..c }).await;
    let red = github("workflow_run", "gh-r1", fixture("github/workflow_run_completed.json")).send(&s).await;
    let signal_id = id(red.expect_created().1);
    let detail = get_issue(&s, &signal_id).await;
    let children = detail["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{detail}");
    let task = get_issue(&s, children[0]["id"].as_str().unwrap()).await;
    assert_eq!((task["type"].as_str(), task["status"].as_str()), (Some("task"), Some("todo")));
    assert_eq!(task["title"], "Fix CI: CI fails on main");
    let description = task["description"].as_str().unwrap();
    assert!(
        description.contains("9f3c2b1e7d4a6c8b0e2f4a6c8d0b2e4f6a8c0d2e")
            && description.contains("actions/runs/8931502261"),
        "{description}"
    );
    assert_eq!(task["signalSource"], "github", "its text reaches agents as outside data");

    // Red again: one more occurrence, no second task. Another branch: a signal, no task.
    github("workflow_run", "gh-r2", later_run("main", 8931777001, "0a1b2c3d4e5f")).send(&s).await.expect_deduplicated();
    let other = github("workflow_run", "gh-r3", later_run("feature/x", 8931777002, "1111111e7d4a")).send(&s).await;
    let other_id = id(other.expect_created().1);
    assert!(get_issue(&s, &other_id).await["children"].as_array().unwrap().is_empty());
    assert_eq!(get_issue(&s, &signal_id).await["children"].as_array().unwrap().len(), 1);

    // Green on main: the signal is done, the unstarted task canceled, the other branch untouched.
    let green = fixture_with("github/workflow_run_completed.json", |v| {
        v["workflow_run"]["conclusion"] = json!("success");
        v["workflow_run"]["id"] = json!(8931777003u64);
    });
    let r = github("workflow_run", "gh-g1", green.clone()).send(&s).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(get_issue(&s, &signal_id).await["status"], "done");
    assert_eq!(get_issue(&s, children[0]["id"].as_str().unwrap()).await["status"], "canceled");
    assert!(comments(&s, &signal_id).await.iter().any(|c| c.starts_with("CI is green again")));
    assert_eq!(get_issue(&s, &other_id).await["status"], "triage");
    // The same green again finds nothing open.
    github("workflow_run", "gh-g2", green).send(&s).await.expect_ignored();
}
