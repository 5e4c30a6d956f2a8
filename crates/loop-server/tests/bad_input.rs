//! A table-driven sweep of bad input over every route that takes a body or a query.
//!
//! Every case must get a 4xx (never a 5xx) with the JSON error shape
//! `{"error": "<non-empty>", "code": "<code>", "message": <same>}`; body validation errors
//! name the offending field in the message. After the sweep nothing has changed: no row was
//! created, updated or recorded in any history ("no partial writes").

mod common;

use common::{TestServer, assert_api_error, start};
use reqwest::Method;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Cases

#[derive(Debug, Clone)]
struct Case {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<String>,
    /// `None`: any 4xx will do.
    status: Option<u16>,
    code: Option<&'static str>,
    /// A string the error message must contain (the field or parameter at fault).
    names: Option<String>,
}

impl Case {
    fn raw(method: Method, path: &str, content_type: Option<&'static str>, body: &str) -> Self {
        Case {
            method,
            path: path.to_owned(),
            content_type,
            body: Some(body.to_owned()),
            status: None,
            code: None,
            names: None,
        }
    }

    fn json(method: Method, path: &str, body: Value) -> Self {
        Self::raw(method, path, Some("application/json"), &body.to_string())
    }

    fn get(path: &str) -> Self {
        Case { body: None, content_type: None, ..Self::raw(Method::GET, path, None, "") }
    }

    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = Some(status);
        self.code = Some(code);
        self
    }

    /// 422 from the JSON decoder, naming `field`.
    fn invalid(self, field: &str) -> Self {
        self.expect(422, "validation_failed").naming(field)
    }

    fn naming(mut self, what: &str) -> Self {
        self.names = Some(what.to_owned());
        self
    }

    fn label(&self) -> String {
        let body = self.body.as_deref().unwrap_or("");
        let body = if body.len() > 120 {
            format!("{}… ({} bytes)", body.chars().take(120).collect::<String>(), body.len())
        } else {
            body.to_owned()
        };
        format!("{} {} [{}] {body}", self.method, self.path, self.content_type.unwrap_or("no content type"))
    }
}

/// Sends a case and returns what is wrong with the answer, if anything.
async fn check(s: &TestServer, case: &Case) -> Option<String> {
    let body = case.body.as_deref().map(|b| (case.content_type.unwrap_or(""), b));
    let r = match (case.content_type, body) {
        // No content type at all: the typed client always sets one, so go around it.
        (None, Some(_)) => {
            let resp = reqwest::Client::new()
                .request(case.method.clone(), format!("{}{}", s.url, case.path))
                .bearer_auth(common::KEY)
                .body(case.body.clone().unwrap())
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let text = resp.text().await.unwrap();
            loop_client::RawResponse {
                status,
                content_type: None,
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
                text,
            }
        }
        _ => s.client.raw(case.method.clone(), &case.path, body).await.unwrap(),
    };
    let status = r.status.as_u16();
    let b = &r.body;
    let error = b["error"].as_str().unwrap_or("");
    let problem = if !(400..500).contains(&status) {
        Some(format!("status {status}"))
    } else if case.status.is_some_and(|want| want != status) {
        Some(format!("status {status}, expected {}", case.status.unwrap()))
    } else if error.is_empty() || !b["code"].is_string() {
        Some("no JSON error body".to_owned())
    } else if b["message"] != b["error"] {
        Some("`message` differs from `error`".to_owned())
    } else if case.code.is_some_and(|c| b["code"] != c) {
        Some(format!("code {}, expected {}", b["code"], case.code.unwrap()))
    } else if case.names.as_ref().is_some_and(|n| !error.contains(n.as_str())) {
        Some(format!("message does not name {:?}", case.names.as_ref().unwrap()))
    } else if r.text.len() > MAX_ERROR_BODY {
        Some(format!("an error body of {} bytes: a rejected value is echoed whole", r.text.len()))
    } else {
        None
    };
    problem.map(|p| format!("{}\n    → {p} (HTTP {status}): {}", case.label(), truncate(&r.text)))
}

/// However large the bad input, the error that names it stays small.
const MAX_ERROR_BODY: usize = 2048;

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Runs every case and fails once, listing every case that went wrong.
async fn sweep(s: &TestServer, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        if let Some(f) = check(s, case).await {
            failures.push(f);
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// One of everything, so that every route has something real to address.
struct Fx {
    issue: String,
    other_issue: String,
    project: String,
    goal: String,
    label: String,
    template: String,
    version: String,
}

async fn fixtures(s: &TestServer) -> Fx {
    let issue = s.task("fixture").await.id;
    let other_issue = s.task("other").await.id;
    let project = s.client.create_project(&json!({"name": "P"})).await.unwrap().id;
    let goal = s.client.create_goal(&json!({"title": "G"})).await.unwrap().id;
    let label = s.client.create_label(&json!({"name": "L", "color": "red"})).await.unwrap().id;
    let template = s.client.create_template(&json!({"slug": "t", "name": "T"})).await.unwrap().id;
    let version = s.client.create_version(&template, &json!({"content": "v1"})).await.unwrap().id;
    Fx { issue, other_issue, project, goal, label, template, version }
}

/// Every route that takes a JSON body, with a body it would accept.
fn body_routes(fx: &Fx) -> Vec<(Method, String, Value)> {
    let review = json!({"versionId": fx.version, "issueId": fx.issue,
                        "clarity": 3, "completeness": 3, "relevance": 3});
    vec![
        (Method::POST, "/api/issues".into(), json!({"title": "t", "type": "task"})),
        (Method::PATCH, format!("/api/issues/{}", fx.issue), json!({"title": "t2"})),
        (
            Method::POST,
            format!("/api/issues/{}/relations", fx.issue),
            json!({"type": "related", "relatedIssueId": fx.other_issue}),
        ),
        (Method::POST, format!("/api/issues/{}/comments", fx.issue), json!({"body": "hi"})),
        (Method::POST, "/api/projects".into(), json!({"name": "p"})),
        (Method::PATCH, format!("/api/projects/{}", fx.project), json!({"name": "p2"})),
        (Method::POST, "/api/goals".into(), json!({"title": "g"})),
        (Method::PATCH, format!("/api/goals/{}", fx.goal), json!({"title": "g2"})),
        (Method::POST, "/api/labels".into(), json!({"name": "l", "color": "blue"})),
        (Method::PATCH, format!("/api/labels/{}", fx.label), json!({"name": "l2"})),
        (Method::POST, "/api/templates".into(), json!({"slug": "s", "name": "n"})),
        (Method::PATCH, format!("/api/templates/{}", fx.template), json!({"name": "n2"})),
        (Method::POST, format!("/api/templates/{}/versions", fx.template), json!({"content": "v2"})),
        (Method::POST, "/api/prompt-reviews".into(), review),
    ]
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

// ---------------------------------------------------------------------------------------------
// Case tables

/// Bodies that are not JSON at all. (Each fails before any key is read: see
/// `malformed_json_is_400_even_after_an_unknown_key` for the other kind.)
const MALFORMED: [&str; 9] = ["", "{", "{\"", "{1}", "{,}", "{'title':'t'}", "nul", "\u{0}", "\u{feff}{}"];

/// Bodies that are not JSON, or not a JSON object, on every body route.
fn shape_cases(fx: &Fx) -> Vec<Case> {
    let mut cases = Vec::new();
    // Truncated in the middle of a known field.
    for (method, path) in [
        (Method::POST, "/api/issues".to_owned()),
        (Method::PATCH, format!("/api/issues/{}", fx.issue)),
        (Method::POST, "/api/goals".to_owned()),
        (Method::PATCH, format!("/api/goals/{}", fx.goal)),
    ] {
        for text in [r#"{"title":"#, r#"{"title":"t"#, r#"{"title":"t","#] {
            cases.push(Case::raw(method.clone(), &path, Some("application/json"), text).expect(400, "malformed_json"));
        }
    }
    for (method, path, _) in body_routes(fx) {
        let case = |text: &str| Case::raw(method.clone(), &path, Some("application/json"), text);
        for text in MALFORMED {
            cases.push(case(text).expect(400, "malformed_json"));
        }
        for text in ["5", r#""str""#, "null", "true"] {
            cases.push(case(text).expect(422, "validation_failed"));
        }
        // (What an array is read as is checked in `a_json_array_is_not_an_object_body`.)
        let mut empty_array = case("[]");
        empty_array.status = Some(422);
        cases.push(empty_array);
    }
    cases
}

/// A valid body under a content type that is not JSON, on every body route.
fn content_type_cases(fx: &Fx) -> Vec<Case> {
    let mut cases = Vec::new();
    for (method, path, body) in body_routes(fx) {
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            cases.push(Case::raw(method.clone(), &path, ct, &body.to_string()).expect(415, "unsupported_media_type"));
        }
    }
    cases
}

/// A valid body plus one unknown key, on every body route and in the strict nested objects.
fn unknown_key_cases(fx: &Fx) -> Vec<Case> {
    let mut cases: Vec<Case> = body_routes(fx)
        .into_iter()
        .map(|(method, path, body)| Case::json(method, &path, with(body, "bogusKey", json!(1))).invalid("bogusKey"))
        .collect();
    let issue = json!({"title": "t", "type": "hypothesis"});
    cases.extend([
        Case::json(
            Method::POST,
            "/api/issues",
            with(issue.clone(), "hypothesis", json!({"statement": "s", "confidence": 0.5, "bogusKey": 1})),
        )
        .invalid("bogusKey"),
        Case::json(Method::POST, "/api/templates", json!({"slug": "s", "name": "n", "conditions": {"bogusKey": 1}}))
            .invalid("bogusKey"),
        Case::json(
            Method::PATCH,
            &format!("/api/templates/{}", fx.template),
            json!({"conditions": {"type": "task", "bogusKey": true}}),
        )
        .invalid("bogusKey"),
        // Fields the server sets itself are unknown to clients.
        Case::json(Method::POST, "/api/issues", with(issue.clone(), "agentSummary", json!("x")))
            .invalid("agentSummary"),
        Case::json(
            Method::PATCH,
            &format!("/api/issues/{}", fx.issue),
            json!({"status": "done", "completedAt": "2026-01-01T00:00:00.000Z"}),
        )
        .invalid("completedAt"),
        Case::json(Method::PATCH, &format!("/api/templates/{}", fx.template), json!({"slug": "renamed"}))
            .invalid("slug"),
    ]);
    cases
}

/// Wrong types, unknown enum values, out-of-range numbers and over-long strings.
fn field_cases(fx: &Fx) -> Vec<Case> {
    let issue = json!({"title": "t", "type": "task"});
    let new_issue = |key: &str, value: Value| Case::json(Method::POST, "/api/issues", with(issue.clone(), key, value));
    let patch =
        |resource: &str, id: &str, body: Value| Case::json(Method::PATCH, &format!("/api/{resource}/{id}"), body);
    let post = |path: &str, body: Value| Case::json(Method::POST, path, body);
    let review = |key: &str, value: Value| {
        let body = json!({"versionId": fx.version, "issueId": fx.issue,
                          "clarity": 3, "completeness": 3, "relevance": 3});
        post("/api/prompt-reviews", with(body, key, value))
    };
    let relation = |kind: Value, related: Value| {
        post(&format!("/api/issues/{}/relations", fx.issue), json!({"type": kind, "relatedIssueId": related}))
    };
    let hypothesis = |confidence: Value| new_issue("hypothesis", json!({"statement": "s", "confidence": confidence}));
    let long = |n: usize| json!("x".repeat(n));

    vec![
        // Issues: types.
        new_issue("title", json!(5)).invalid("title"),
        new_issue("title", json!(null)).invalid("title"),
        new_issue("title", json!("")).invalid("title"),
        new_issue("title", json!("   ")).invalid("title"),
        new_issue("title", json!(["t"])).invalid("title"),
        new_issue("priority", json!("high")).invalid("priority"),
        new_issue("priority", json!(2.5)).invalid("priority"),
        new_issue("priority", json!(true)).invalid("priority"),
        new_issue("labelIds", json!("x")).invalid("labelIds"),
        new_issue("labelIds", json!([5])).invalid("labelIds"),
        new_issue("description", json!(5)).invalid("description"),
        new_issue("parentId", json!(5)).invalid("parentId"),
        new_issue("signalPayload", json!([1])).invalid("signalPayload"),
        new_issue("signalPayload", json!("x")).invalid("signalPayload"),
        hypothesis(json!(2)).invalid("hypothesis.confidence"),
        hypothesis(json!(-0.1)).invalid("hypothesis.confidence"),
        hypothesis(json!("high")).invalid("hypothesis.confidence"),
        new_issue("hypothesis", json!({"confidence": 0.5})).invalid("statement"),
        // Issues: enums.
        new_issue("type", json!("bug2")).invalid("type"),
        new_issue("type", json!("bug")).invalid("type"),
        new_issue("type", json!("Task")).invalid("type"),
        new_issue("status", json!("open")).invalid("status"),
        new_issue("status", json!("closed")).invalid("status"),
        // Issues: ranges and lengths.
        new_issue("priority", json!(-1)).invalid("priority"),
        new_issue("priority", json!(5)).invalid("priority"),
        new_issue("priority", json!(1e20)).invalid("priority"),
        new_issue("priority", json!(u64::MAX)).invalid("priority"),
        new_issue("title", long(501)).invalid("title"),
        new_issue("description", long(100_001)).invalid("description"),
        new_issue("signalSource", long(201)).invalid("signalSource"),
        // Issue patches.
        patch("issues", &fx.issue, json!({"priority": 7})).invalid("priority"),
        patch("issues", &fx.issue, json!({"status": "open"})).invalid("status"),
        patch("issues", &fx.issue, json!({"title": 5})).invalid("title"),
        patch("issues", &fx.issue, json!({"title": ""})).invalid("title"),
        patch("issues", &fx.issue, json!({"title": "x".repeat(501)})).invalid("title"),
        patch("issues", &fx.issue, json!({"commits": [{"message": "no sha"}]})).invalid("sha"),
        patch("issues", &fx.issue, json!({"pullRequests": [{"number": -1}]})).invalid("pullRequests"),
        patch("issues", &fx.issue, json!({"description": 5})).invalid("description"),
        patch("issues", &fx.issue, json!({"parentId": 5})).invalid("parentId"),
        // Relations.
        relation(json!("parent"), json!(fx.other_issue)).invalid("type"),
        relation(json!("blocks"), json!(5)).invalid("relatedIssueId"),
        // Comments.
        post(&format!("/api/issues/{}/comments", fx.issue), json!({"body": "x", "authorType": "robot"}))
            .invalid("authorType"),
        post(&format!("/api/issues/{}/comments", fx.issue), json!({"body": "x".repeat(100_001)})).invalid("body"),
        post(&format!("/api/issues/{}/comments", fx.issue), json!({"body": "a", "content": "b"})).invalid("body"),
        // Projects and goals.
        post("/api/projects", json!({"name": "p", "status": "done"})).invalid("status"),
        post("/api/projects", json!({"name": "p", "health": "green"})).invalid("health"),
        post("/api/projects", json!({"name": "x".repeat(501)})).invalid("name"),
        post("/api/goals", json!({"title": "g", "status": "done"})).invalid("status"),
        post("/api/goals", json!({"title": "g", "targetValue": "100"})).invalid("targetValue"),
        patch("goals", &fx.goal, json!({"currentValue": "3"})).invalid("currentValue"),
        // Labels.
        post("/api/labels", json!({"name": "x".repeat(101), "color": "red"})).invalid("name"),
        post("/api/labels", json!({"name": "n", "color": "x".repeat(51)})).invalid("color"),
        post("/api/labels", json!({"name": "n", "color": ""})).invalid("color"),
        patch("labels", &fx.label, json!({"name": ""})).invalid("name"),
        // Templates and versions.
        post("/api/templates", json!({"slug": "Bad Slug", "name": "n"})).invalid("slug"),
        post("/api/templates", json!({"slug": "s", "name": "n", "specificity": 101})).invalid("specificity"),
        post("/api/templates", json!({"slug": "s", "name": "n", "conditions": {"type": "bug"}}))
            .invalid("conditions.type"),
        post("/api/templates", json!({"slug": "s", "name": "n", "conditions": "type=task"})).invalid("conditions"),
        post("/api/templates", json!({"slug": "s", "name": "n", "conditions": {"hypothesisConfidence": 1.5}}))
            .invalid("conditions.hypothesisConfidence"),
        post("/api/templates", json!({"slug": "s", "name": "n", "conditions": {"hypothesisConfidence": -0.1}}))
            .invalid("conditions.hypothesisConfidence"),
        patch("templates", &fx.template, json!({"specificity": 2.5})).invalid("specificity"),
        post(&format!("/api/templates/{}/versions", fx.template), json!({"content": "c", "status": "published"}))
            .invalid("status"),
        post(&format!("/api/templates/{}/versions", fx.template), json!({"content": "c", "status": "retired"}))
            .expect(422, "invalid_status")
            .naming("status"),
        post(&format!("/api/templates/{}/versions", fx.template), json!({"content": ""})).invalid("content"),
        // Reviews.
        review("clarity", json!(6)).invalid("clarity"),
        review("completeness", json!(0)).invalid("completeness"),
        review("relevance", json!(4.5)).invalid("relevance"),
        review("clarity", json!("5")).invalid("clarity"),
        review("authorType", json!("bot")).invalid("authorType"),
        review("feedback", long(10_001)).invalid("feedback"),
    ]
}

/// Bodies without a required field.
fn missing_field_cases(fx: &Fx) -> Vec<Case> {
    let post = |path: &str, body: Value, field: &str| Case::json(Method::POST, path, body).invalid(field);
    let relations = format!("/api/issues/{}/relations", fx.issue);
    let comments = format!("/api/issues/{}/comments", fx.issue);
    let versions = format!("/api/templates/{}/versions", fx.template);
    vec![
        post("/api/issues", json!({}), "title"),
        post("/api/issues", json!({"title": "t"}), "type"),
        post("/api/issues", json!({"type": "task"}), "title"),
        post(&relations, json!({"type": "blocks"}), "relatedIssueId"),
        post(&relations, json!({"relatedIssueId": fx.other_issue}), "type"),
        post(&comments, json!({}), "body"),
        post(&comments, json!({"authorName": "a"}), "body"),
        post("/api/projects", json!({}), "name"),
        post("/api/goals", json!({"metric": "m"}), "title"),
        post("/api/labels", json!({"name": "n"}), "color"),
        post("/api/labels", json!({"color": "red"}), "name"),
        post("/api/templates", json!({"slug": "s"}), "name"),
        post("/api/templates", json!({"name": "n"}), "slug"),
        post(&versions, json!({"changelog": "c"}), "content"),
        post(
            "/api/prompt-reviews",
            json!({"versionId": fx.version, "issueId": fx.issue, "clarity": 3, "completeness": 3}),
            "relevance",
        ),
        post(
            "/api/prompt-reviews",
            json!({"issueId": fx.issue, "clarity": 3, "completeness": 3, "relevance": 3}),
            "versionId",
        ),
    ]
}

/// `{}` on every PATCH route.
fn empty_patch_cases(fx: &Fx) -> Vec<Case> {
    [
        ("issues", &fx.issue),
        ("projects", &fx.project),
        ("goals", &fx.goal),
        ("labels", &fx.label),
        ("templates", &fx.template),
    ]
    .into_iter()
    .map(|(resource, id)| {
        Case::json(Method::PATCH, &format!("/api/{resource}/{id}"), json!({})).expect(422, "empty_patch")
    })
    .collect()
}

/// Bad query parameters on every list route.
fn query_cases(fx: &Fx) -> Vec<Case> {
    let mut cases = Vec::new();
    let lists = [
        "/api/issues".to_owned(),
        format!("/api/issues/{}/events", fx.issue),
        "/api/projects".to_owned(),
        "/api/goals".to_owned(),
        "/api/labels".to_owned(),
        "/api/templates".to_owned(),
        format!("/api/templates/{}/versions", fx.template),
        format!("/api/templates/{}/reviews", fx.template),
        "/api/dispatch/queue".to_owned(),
        "/api/sessions".to_owned(),
    ];
    for list in &lists {
        for (query, param) in [
            ("limit=abc", "limit"),
            ("limit=0", "limit"),
            ("limit=500", "limit"),
            ("limit=", "limit"),
            ("limit=1.5", "limit"),
            ("limit=99999999999999999999", "limit"),
            ("offset=-1", "offset"),
            ("offset=x", "offset"),
        ] {
            cases.push(Case::get(&format!("{list}?{query}")).expect(400, "invalid_query").naming(param));
        }
    }
    for (query, param) in [
        ("priority=9", "priority"),
        ("priority=-1", "priority"),
        ("priority=high", "priority"),
        ("status=bogus", "status"),
        ("status=todo,bogus", "status"),
        ("status=OPEN", "status"),
        ("type=bug", "type"),
        ("type=task,feature", "type"),
    ] {
        cases.push(Case::get(&format!("/api/issues?{query}")).expect(400, "invalid_query").naming(param));
    }
    // Each search word is a condition: SQLite refuses very long patterns and deep expressions.
    for q in ["a".repeat(50_000), vec!["a"; 1000].join("+")] {
        cases.push(Case::get(&format!("/api/issues?q={q}")).expect(400, "invalid_query").naming("q"));
    }
    for (path, param) in [
        ("/api/dispatch/next?wait=61", "wait"),
        ("/api/dispatch/next?wait=-1", "wait"),
        ("/api/dispatch/next?wait=soon", "wait"),
        ("/api/sessions?open=maybe", "open"),
        ("/api/sessions?outcome=bogus", "outcome"),
        ("/api/issues?status=todo&status=backlog", "status"),
        ("/api/issues?limit=1&limit=2", "limit"),
    ] {
        cases.push(Case::get(path).expect(400, "invalid_query").naming(param));
    }
    cases
}

/// Half a megabyte where a short value belongs: the error says what is wrong without sending
/// the value back.
fn huge_value_cases(fx: &Fx) -> Vec<Case> {
    let huge = "X".repeat(500_000);
    // A request line is bounded far lower than a body.
    let long = "X".repeat(50_000);
    let post = |path: &str, body: Value, field: &str| Case::json(Method::POST, path, body).invalid(field);
    vec![
        post("/api/templates", json!({"slug": huge, "name": "n"}), "slug"),
        post("/api/issues", json!({"title": "t", "type": huge}), "type"),
        post("/api/issues", json!({"title": "t", "type": "task", "status": huge}), "status"),
        post("/api/issues", json!({"title": "t", "type": "task", "priority": huge}), "priority"),
        post("/api/goals", json!({"title": "t", "status": huge}), "status"),
        Case::json(Method::PATCH, &format!("/api/issues/{}", fx.issue), json!({"status": huge})).invalid("status"),
        Case::get(&format!("/api/issues?sort={long}")).expect(400, "invalid_query").naming("sort"),
        Case::get(&format!("/api/issues?limit={long}")).expect(400, "invalid_query").naming("limit"),
        Case::get(&format!("/api/sessions?open={long}")).expect(400, "invalid_query").naming("open"),
    ]
}

/// JSON nested far deeper than any real payload.
fn deep_nesting_cases() -> Vec<Case> {
    let nest = |depth: usize, open: &str, close: &str| {
        format!(
            r#"{{"title":"t","type":"task","signalPayload":{{"a":{}1{}}}}}"#,
            open.repeat(depth),
            close.repeat(depth)
        )
    };
    [
        nest(10_000, "[", "]"),
        nest(10_000, r#"{"a":"#, "}"),
        // Just under the body limit.
        nest(500_000, "[", "]"),
    ]
    .iter()
    .map(|body| Case::raw(Method::POST, "/api/issues", Some("application/json"), body))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// "No partial writes": everything a client can read, before and after.

async fn snapshot(s: &TestServer, fx: &Fx) -> Vec<(String, Value)> {
    let paths = [
        "/api/issues?limit=200".to_owned(),
        format!("/api/issues/{}", fx.issue),
        format!("/api/issues/{}", fx.other_issue),
        format!("/api/issues/{}/events?limit=200", fx.issue),
        format!("/api/issues/{}/events?limit=200", fx.other_issue),
        format!("/api/issues/{}/comments", fx.issue),
        "/api/projects?limit=200".to_owned(),
        format!("/api/projects/{}", fx.project),
        "/api/goals?limit=200".to_owned(),
        format!("/api/goals/{}", fx.goal),
        "/api/labels?limit=200".to_owned(),
        format!("/api/labels/{}", fx.label),
        "/api/templates?limit=200".to_owned(),
        format!("/api/templates/{}", fx.template),
        format!("/api/templates/{}/versions", fx.template),
        format!("/api/templates/{}/reviews", fx.template),
    ];
    let mut out = Vec::new();
    for path in paths {
        let r = s.client.raw(Method::GET, &path, None).await.unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        out.push((path, r.body));
    }
    out
}

async fn totals(s: &TestServer) -> [u64; 5] {
    let c = &s.client;
    [
        c.list_issues("").await.unwrap().total,
        c.list_projects("").await.unwrap().total,
        c.list_goals("").await.unwrap().total,
        c.list_labels("").await.unwrap().total,
        c.list_templates("").await.unwrap().total,
    ]
}

async fn assert_alive(s: &TestServer) {
    let r = s.anon.raw(Method::GET, "/health", None).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["ok"], true);
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn the_bad_input_sweep_is_all_4xx_json_errors_and_writes_nothing() {
    let s = start().await;
    let fx = fixtures(&s).await;
    let before = snapshot(&s, &fx).await;
    let totals_before = totals(&s).await;
    assert_eq!(totals_before[..4], [2, 1, 1, 1]);

    let cases: Vec<Case> = [
        shape_cases(&fx),
        content_type_cases(&fx),
        unknown_key_cases(&fx),
        field_cases(&fx),
        missing_field_cases(&fx),
        empty_patch_cases(&fx),
        query_cases(&fx),
        huge_value_cases(&fx),
        deep_nesting_cases(),
    ]
    .concat();
    assert!(cases.len() > 300, "{} cases", cases.len());
    sweep(&s, &cases).await;

    assert_alive(&s).await;
    assert_eq!(totals(&s).await, totals_before, "nothing was created");
    let after = snapshot(&s, &fx).await;
    for ((path, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{path} changed");
    }
}

#[tokio::test]
async fn deeply_nested_json_is_refused_and_the_server_keeps_answering() {
    let s = start().await;
    sweep(&s, &deep_nesting_cases()).await;
    assert_alive(&s).await;
    assert_eq!(s.issue_count().await, 0);
}

#[tokio::test]
async fn messages_name_the_field_in_the_error_details() {
    let s = start().await;
    let r = s
        .client
        .raw(
            Method::POST,
            "/api/issues",
            Some(("application/json", r#"{"title":"t","type":"task","hypothesis":{"statement":"s","confidence":2}}"#)),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.body["code"], "validation_failed");
    assert_eq!(r.body["details"]["field"], "hypothesis.confidence");
    assert!(r.body["error"].as_str().unwrap().starts_with("hypothesis.confidence:"), "{}", r.body);

    let long = "x".repeat(501);
    let m = assert_api_error(
        s.client.create_issue(&json!({"title": long, "type": "task"})).await,
        422,
        "validation_failed",
    );
    assert!(m.starts_with("title:") && m.contains("500"), "{m}");
}

#[tokio::test]
async fn json_media_type_variants_are_accepted() {
    let s = start().await;
    for ct in ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"] {
        let r = s.client.raw(Method::POST, "/api/issues", Some((ct, r#"{"title":"t","type":"task"}"#))).await.unwrap();
        assert_eq!(r.status, 201, "{ct}: {}", r.text);
    }
    assert_eq!(s.issue_count().await, 3);
}

/// A body well over 1 MiB on every kind of body route.
fn oversized_cases(fx: &Fx) -> Vec<Case> {
    let huge = "x".repeat(1024 * 1024 + 1);
    body_routes(fx)
        .into_iter()
        .map(|(method, path, body)| {
            let key = body.as_object().unwrap().keys().next().unwrap().clone();
            Case::json(method, &path, with(body, &key, json!(huge))).expect(413, "body_too_large")
        })
        .collect()
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused_with_413() {
    let s = start().await;
    let fx = fixtures(&s).await;
    let before = snapshot(&s, &fx).await;
    for case in oversized_cases(&fx) {
        let body = case.body.as_deref().map(|b| ("application/json", b));
        let r = s.client.raw(case.method.clone(), &case.path, body).await.unwrap();
        assert_eq!(r.status, 413, "{}", case.label());
    }
    assert_alive(&s).await;
    assert_eq!(snapshot(&s, &fx).await, before);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_get_the_json_error_shape() {
    let s = start().await;
    let fx = fixtures(&s).await;
    sweep(&s, &oversized_cases(&fx)).await;
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_a_json_4xx() {
    let s = start().await;
    let fx = fixtures(&s).await;
    let promote = format!("/api/templates/{}/versions/%C3%28/promote", fx.template);
    let cases = [
        Case::get("/api/issues/%FF"),
        Case::get("/api/issues/%FF/comments"),
        Case::get("/api/labels/%C0%AF"),
        Case { method: Method::POST, ..Case::get(&promote) },
    ];
    sweep(&s, &cases).await;
}

#[tokio::test]
async fn a_patch_with_null_for_a_non_nullable_field_is_rejected() {
    let s = start().await;
    let fx = fixtures(&s).await;
    let before = snapshot(&s, &fx).await;
    let patch =
        |resource: &str, id: &str, body: Value| Case::json(Method::PATCH, &format!("/api/{resource}/{id}"), body);
    let cases = [
        patch("issues", &fx.issue, json!({"title": null, "priority": 1})).invalid("title"),
        patch("issues", &fx.issue, json!({"status": null, "priority": 1})).invalid("status"),
        patch("issues", &fx.issue, json!({"type": null, "priority": 1})).invalid("type"),
        patch("issues", &fx.issue, json!({"priority": null, "title": "x"})).invalid("priority"),
        patch("projects", &fx.project, json!({"name": null, "health": "at_risk"})).invalid("name"),
        patch("goals", &fx.goal, json!({"title": null, "status": "achieved"})).invalid("title"),
        patch("labels", &fx.label, json!({"name": null, "color": "blue"})).invalid("name"),
        patch("templates", &fx.template, json!({"name": null, "specificity": 5})).invalid("name"),
    ];
    sweep(&s, &cases).await;
    assert_eq!(snapshot(&s, &fx).await, before);
}

#[tokio::test]
async fn an_unknown_label_id_rejects_the_whole_issue_and_duplicates_collapse() {
    let s = start().await;
    let label = s.client.create_label(&json!({"name": "ui", "color": "blue"})).await.unwrap();

    let m = assert_api_error(
        s.client.create_issue(&json!({"title": "t", "type": "task", "labelIds": [label.id, "nope"]})).await,
        422,
        "label_not_found",
    );
    assert!(m.starts_with("labelIds:") && m.contains("nope"), "{m}");
    assert_eq!(s.issue_count().await, 0, "no issue was created");

    let deleted = s.client.create_label(&json!({"name": "old", "color": "grey"})).await.unwrap();
    s.client.delete_label(&deleted.id).await.unwrap();
    assert_api_error(
        s.client.create_issue(&json!({"title": "t", "type": "task", "labelIds": [deleted.id]})).await,
        422,
        "label_not_found",
    );
    assert_eq!(s.issue_count().await, 0);

    let i = s.issue_with(json!({"title": "t", "type": "task", "labelIds": [label.id, label.id]})).await;
    assert_eq!(i.number, 1, "failed creates used no number");
    let d = s.client.issue(&i.id).await.unwrap();
    assert_eq!(d.labels.len(), 1);
    assert_eq!(d.labels[0].id, label.id);
    assert_eq!(s.issue_count().await, 1);

    // The same holds on PATCH: an unknown label changes nothing.
    assert_api_error(
        s.client.update_issue(&i.id, &json!({"title": "renamed", "labelIds": ["nope"]})).await,
        422,
        "label_not_found",
    );
    let after = s.client.issue(&i.id).await.unwrap();
    assert_eq!(after.issue.title, "t");
    assert_eq!(after.labels.len(), 1);
}

#[tokio::test]
async fn trailing_garbage_after_the_json_body_is_malformed() {
    let s = start().await;
    let fx = fixtures(&s).await;
    let before = snapshot(&s, &fx).await;
    let cases: Vec<Case> = body_routes(&fx)
        .into_iter()
        .flat_map(|(method, path, body)| {
            ["x", "{}", ",", "]"].map(|tail| {
                Case::raw(method.clone(), &path, Some("application/json"), &format!("{body} {tail}"))
                    .expect(400, "malformed_json")
            })
        })
        .collect();
    sweep(&s, &cases).await;
    assert_eq!(snapshot(&s, &fx).await, before, "nothing was written");
}

#[tokio::test]
async fn a_json_array_is_not_an_object_body() {
    let s = start().await;
    let fx = fixtures(&s).await;
    let before = snapshot(&s, &fx).await;
    let case =
        |method: Method, path: &str, body: Value| Case::json(method, path, body).expect(422, "validation_failed");
    let cases = [
        case(Method::POST, "/api/labels", json!(["n", "red"])),
        case(Method::POST, "/api/projects", json!(["p"])),
        case(Method::POST, "/api/goals", json!(["g"])),
        case(Method::POST, "/api/issues", json!(["t", null, "task"])),
        case(Method::PATCH, &format!("/api/labels/{}", fx.label), json!(["renamed"])),
        case(Method::PATCH, &format!("/api/issues/{}", fx.issue), json!(["renamed"])),
        case(Method::PATCH, &format!("/api/goals/{}", fx.goal), json!([])),
        case(Method::POST, "/api/templates", json!({"slug": "s", "name": "n", "conditions": []})),
        case(Method::POST, "/api/issues", json!({"title": "t", "type": "hypothesis", "hypothesis": ["s", 0.5]})),
    ];
    sweep(&s, &cases).await;
    assert_eq!(snapshot(&s, &fx).await, before, "nothing was written");
}

#[tokio::test]
async fn malformed_json_is_400_even_after_an_unknown_key() {
    let s = start().await;
    let fx = fixtures(&s).await;
    let cases: Vec<Case> = body_routes(&fx)
        .into_iter()
        .flat_map(|(method, path, _)| {
            [r#"{"bogusKey":"#, r#"{"a" 1}"#, r#"{"zzz":1,"#].map(|text| {
                Case::raw(method.clone(), &path, Some("application/json"), text).expect(400, "malformed_json")
            })
        })
        .collect();
    sweep(&s, &cases).await;
}

#[tokio::test]
async fn an_enum_of_the_wrong_json_type_is_a_422_naming_the_field() {
    let s = start().await;
    let fx = fixtures(&s).await;
    let post = |path: &str, body: Value| Case::json(Method::POST, path, body);
    let cases = [
        post("/api/issues", json!({"title": "t", "type": 5})).invalid("type"),
        post("/api/issues", json!({"title": "t", "type": null})).invalid("type"),
        post("/api/issues", json!({"title": "t", "type": "task", "status": true})).invalid("status"),
        post(&format!("/api/issues/{}/relations", fx.issue), json!({"type": null, "relatedIssueId": fx.other_issue}))
            .invalid("type"),
        post(&format!("/api/issues/{}/comments", fx.issue), json!({"body": "b", "authorType": 1}))
            .invalid("authorType"),
        post("/api/projects", json!({"name": "p", "status": ["active"]})).invalid("status"),
        post("/api/goals", json!({"title": "g", "status": 0})).invalid("status"),
        post("/api/templates", json!({"slug": "s", "name": "n", "conditions": {"type": 1}})).invalid("conditions.type"),
        Case::json(Method::PATCH, &format!("/api/projects/{}", fx.project), json!({"health": 1})).invalid("health"),
        Case::json(Method::PATCH, &format!("/api/issues/{}", fx.issue), json!({"status": 3})).invalid("status"),
    ];
    sweep(&s, &cases).await;
}
