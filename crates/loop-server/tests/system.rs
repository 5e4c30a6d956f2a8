//! Public routes (`/health`, `/`, `/api/openapi.json`), Bearer auth on every `/api` route,
//! CORS, the JSON 404, and the SDK's `Idempotency-Key` header.

mod common;

use common::{KEY, TestServer, start};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// Every authenticated route, with a method it answers to. Path parameters are placeholders:
/// auth runs before any lookup, so they never need to exist.
const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/issues"),
    ("POST", "/api/issues"),
    ("GET", "/api/issues/x"),
    ("PATCH", "/api/issues/x"),
    ("DELETE", "/api/issues/x"),
    ("GET", "/api/issues/x/events"),
    ("POST", "/api/issues/x/relations"),
    ("DELETE", "/api/relations/x"),
    ("GET", "/api/issues/x/comments"),
    ("POST", "/api/issues/x/comments"),
    ("GET", "/api/projects"),
    ("POST", "/api/projects"),
    ("GET", "/api/projects/x"),
    ("PATCH", "/api/projects/x"),
    ("DELETE", "/api/projects/x"),
    ("GET", "/api/goals"),
    ("POST", "/api/goals"),
    ("GET", "/api/goals/x"),
    ("PATCH", "/api/goals/x"),
    ("DELETE", "/api/goals/x"),
    ("GET", "/api/labels"),
    ("POST", "/api/labels"),
    ("GET", "/api/labels/x"),
    ("PATCH", "/api/labels/x"),
    ("DELETE", "/api/labels/x"),
    ("GET", "/api/templates"),
    ("POST", "/api/templates"),
    ("GET", "/api/templates/x"),
    ("PATCH", "/api/templates/x"),
    ("DELETE", "/api/templates/x"),
    ("GET", "/api/templates/x/versions"),
    ("POST", "/api/templates/x/versions"),
    ("POST", "/api/templates/x/versions/y/promote"),
    ("GET", "/api/templates/x/reviews"),
    ("POST", "/api/prompt-reviews"),
];

/// The OpenAPI paths every route above must be documented under.
const DOCUMENTED_PATHS: &[&str] = &[
    "/api/issues",
    "/api/issues/{id}",
    "/api/issues/{id}/events",
    "/api/issues/{id}/relations",
    "/api/relations/{id}",
    "/api/issues/{id}/comments",
    "/api/projects",
    "/api/projects/{id}",
    "/api/goals",
    "/api/goals/{id}",
    "/api/labels",
    "/api/labels/{id}",
    "/api/templates",
    "/api/templates/{id}",
    "/api/templates/{id}/versions",
    "/api/templates/{id}/versions/{version_id}/promote",
    "/api/templates/{id}/reviews",
    "/api/prompt-reviews",
];

/// A request with exactly the given headers (no client defaults besides the user agent).
async fn request(s: &TestServer, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
    let mut req =
        reqwest::Client::new().request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", s.url));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(b) = body {
        req = req.body(b.to_owned());
    }
    req.send().await.expect("server reachable")
}

/// Reads a JSON body, asserting the content type says so.
async fn json_body(r: Response) -> Value {
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = r.text().await.unwrap();
    assert!(ct.starts_with("application/json"), "content-type {ct:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn health_needs_no_auth_and_checks_the_database() {
    let s = start().await;
    let r = request(&s, "GET", "/health", &[], None).await;
    assert_eq!(r.status(), 200);
    let body = json_body(r).await;
    assert_eq!(body["ok"], true);
    assert_eq!(body["service"], "loop-api");
    assert_eq!(body["database"], "ok");
    let ts = body["timestamp"].as_str().expect("timestamp string");
    assert!(ts.ends_with('Z') && ts.contains('T') && ts.contains('.'), "ISO-8601 with millis: {ts}");
}

#[tokio::test]
async fn root_names_the_api_and_its_version() {
    let s = start().await;
    let r = request(&s, "GET", "/", &[], None).await;
    assert_eq!(r.status(), 200);
    let body = json_body(r).await;
    assert_eq!(body["name"], "Loop API");
    assert!(!body["version"].as_str().unwrap_or("").is_empty(), "{body}");
}

#[tokio::test]
async fn openapi_document_is_public_and_lists_every_route() {
    let s = start().await;
    let r = request(&s, "GET", "/api/openapi.json", &[], None).await;
    assert_eq!(r.status(), 200);
    let doc = json_body(r).await;
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3.1"), "{}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths object");
    let missing: Vec<&&str> = DOCUMENTED_PATHS.iter().filter(|p| !paths.contains_key(**p)).collect();
    assert!(missing.is_empty(), "undocumented: {missing:?}; documented: {:?}", paths.keys().collect::<Vec<_>>());
    // Every method the server answers to is documented under its path.
    for (method, path) in API_ROUTES {
        let templated = DOCUMENTED_PATHS
            .iter()
            .find(|p| matches_template(p, path))
            .unwrap_or_else(|| panic!("{path} has no documented template"));
        assert!(paths[*templated].get(method.to_ascii_lowercase()).is_some(), "{method} {templated} is not documented");
    }

    let schemes = &doc["components"]["securitySchemes"];
    let bearer = schemes
        .as_object()
        .and_then(|m| m.values().find(|v| v["scheme"] == "bearer"))
        .unwrap_or_else(|| panic!("no bearer scheme in {schemes}"));
    assert_eq!(bearer["type"], "http");
    assert!(doc["security"].is_array(), "a global security requirement");
}

/// Every `(METHOD, path)` the OpenAPI document lists under `/api/` as needing the Bearer key
/// (webhooks are documented with an empty `security` list: their providers sign instead), with
/// `x` for each path parameter.
async fn documented_routes(s: &TestServer) -> Vec<(String, String)> {
    let doc = json_body(request(s, "GET", "/api/openapi.json", &[], None).await).await;
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        if !template.starts_with("/api/") {
            continue;
        }
        let path: Vec<&str> = template.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect();
        for method in ["get", "post", "patch", "put", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let unauthenticated = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|o| o.is_empty())));
            if !unauthenticated {
                out.push((method.to_ascii_uppercase(), path.join("/")));
            }
        }
    }
    out
}

fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

#[tokio::test]
async fn every_api_route_refuses_missing_or_wrong_credentials() {
    let s = start().await;
    let lowercase = format!("bearer {KEY}");
    let wrong = format!("Bearer {}", KEY.replace('1', "2"));
    let basic = format!("Basic {KEY}");
    let doubled = format!("Bearer  {KEY}");
    let credentials: [Option<&str>; 6] =
        [None, Some(&lowercase), Some(&wrong), Some(&basic), Some(&doubled), Some("Bearer ")];
    // The routes listed here plus whatever else the OpenAPI document says exists (dispatch,
    // sessions, routes added later), so a new route cannot silently skip auth.
    let mut routes: Vec<(String, String)> = API_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    for route in documented_routes(&s).await {
        if !routes.contains(&route) {
            routes.push(route);
        }
    }
    assert!(routes.len() > API_ROUTES.len(), "the document lists the dispatch routes too");
    for (method, path) in &routes {
        let method = method.as_str();
        for auth in &credentials {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(a) = auth {
                headers.push(("authorization", a));
            }
            let body = (method != "GET" && method != "DELETE").then_some("{}");
            let r = request(&s, method, path, &headers, body).await;
            let status = r.status();
            let body = json_body(r).await;
            let what = format!("{method} {path} with {auth:?}");
            assert_eq!(status, 401, "{what}: {body}");
            assert_eq!(body["code"], "unauthorized", "{what}: {body}");
            assert!(!body["error"].as_str().unwrap_or("").is_empty(), "{what}: {body}");
            assert_eq!(body["message"], body["error"], "{what}");
        }
    }
    // Nothing above reached a handler.
    assert_eq!(s.issue_count().await, 0);
}

#[tokio::test]
async fn the_right_key_is_accepted() {
    let s = start().await;
    let auth = format!("Bearer {KEY}");
    let r = request(&s, "GET", "/api/issues", &[("authorization", &auth)], None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await, json!({"data": [], "total": 0}));
}

#[tokio::test]
async fn cors_preflight_allows_the_dashboard_origin_and_the_sdk_headers() {
    let s = start().await;
    let r = request(
        &s,
        "OPTIONS",
        "/api/issues",
        &[
            ("origin", "http://localhost:5668"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization,content-type,idempotency-key"),
        ],
        None,
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), Some("http://localhost:5668"));
    let allowed = header(&r, "access-control-allow-headers").unwrap_or("").to_ascii_lowercase();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(h), "{h} not in {allowed:?}");
    }
    let methods = header(&r, "access-control-allow-methods").unwrap_or("").to_ascii_uppercase();
    for m in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{m} not in {methods:?}");
    }

    // A simple request from the same origin is answered with the header too.
    let auth = format!("Bearer {KEY}");
    let r =
        request(&s, "GET", "/api/issues", &[("origin", "http://localhost:5668"), ("authorization", &auth)], None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("http://localhost:5668"));
}

#[tokio::test]
async fn cors_ignores_other_origins() {
    let s = start().await;
    let r = request(
        &s,
        "OPTIONS",
        "/api/issues",
        &[
            ("origin", "http://evil.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization"),
        ],
        None,
    )
    .await;
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    let auth = format!("Bearer {KEY}");
    let r =
        request(&s, "GET", "/api/issues", &[("origin", "http://evil.example"), ("authorization", &auth)], None).await;
    assert_eq!(header(&r, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn unknown_routes_are_a_json_404() {
    let s = start().await;
    let auth = format!("Bearer {KEY}");
    for path in ["/nope", "/api/nope", "/api/issues/", "/api/issues/x/y/z", "/api"] {
        for headers in [vec![], vec![("authorization", auth.as_str())]] {
            let r = request(&s, "GET", path, &headers, None).await;
            assert_eq!(r.status(), 404, "{path}");
            let body = json_body(r).await;
            assert_eq!(body["code"], "route_not_found", "{path}: {body}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_known_route_is_a_json_error() {
    let s = start().await;
    let auth = format!("Bearer {KEY}");
    for (method, path) in [
        ("PUT", "/api/issues"),
        ("DELETE", "/api/issues"),
        ("POST", "/api/issues/x"),
        ("GET", "/api/prompt-reviews"),
        ("POST", "/health"),
    ] {
        let r = request(&s, method, path, &[("authorization", &auth)], None).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 405, "{method} {path}");
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: HTTP {status} with a non-JSON body {text:?}"));
        assert!(body["code"].is_string(), "{method} {path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn the_sdk_idempotency_key_header_is_accepted() {
    let s = start().await;
    let auth = format!("Bearer {KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("idempotency-key", "0b8f6a52-3f7e-4b8e-9f43-6a1f2e0c9d11"),
        ("x-loop-agent", "sdk-test"),
    ];
    let r = request(&s, "POST", "/api/issues", &headers, Some(r#"{"title":"via sdk","type":"task"}"#)).await;
    assert_eq!(r.status(), 201);
    assert_eq!(json_body(r).await["data"]["title"], "via sdk");
    let r = request(&s, "PATCH", &format!("/api/issues/{}", 1), &headers, Some(r#"{"status":"todo"}"#)).await;
    assert_eq!(r.status(), 200);
}

/// A client that opens a connection and never finishes its headers is dropped, rather than
/// holding the connection (and a file descriptor) for ever.
#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = common::start_with(|c| loop_server::ServerConfig { header_timeout: Duration::from_millis(300), ..c }).await;
    let mut socket = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://")).await.unwrap();
    socket.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), socket.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "still open after 3 s");
    // A request sent in time is answered as usual.
    let health = reqwest::get(format!("{}/health", s.url)).await.unwrap();
    assert_eq!(health.status(), 200);
}

/// A body that stops arriving gets a 408 once the body timeout passes, instead of holding the
/// request for ever; nothing is written.
#[tokio::test]
async fn a_body_that_stops_arriving_is_a_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = common::start_with(|c| loop_server::ServerConfig { body_timeout: Duration::from_millis(300), ..c }).await;
    let mut socket = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /api/issues HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\": \"half"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), socket.read(&mut answer))
        .await
        .expect("no answer within 3 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"body_timeout""#), "{answer}");
    assert_eq!(s.issue_count().await, 0);
}

/// The document says which PATCH fields take `null` (to clear them) exactly as the server
/// treats them: a nullable field is cleared, any other is refused with a 422 naming it.
#[tokio::test]
async fn patch_fields_are_nullable_in_the_document_exactly_when_null_is_accepted() {
    let s = start().await;
    let c = &s.client;
    let id = |v: Value| v["data"]["id"].as_str().unwrap().to_owned();
    let project = id(c.post("/api/projects", &json!({ "name": "P" })).await.unwrap());
    let goal = id(c.post("/api/goals", &json!({ "title": "G" })).await.unwrap());
    let label = id(c.post("/api/labels", &json!({ "name": "L", "color": "#ff0000" })).await.unwrap());
    let template = id(c.post("/api/templates", &json!({ "slug": "t", "name": "T" })).await.unwrap());
    let issue = s.task("I").await.id;
    let doc = json_body(request(&s, "GET", "/api/openapi.json", &[], None).await).await;
    let mut checked = 0;
    for (schema, path) in [
        ("IssuePatch", format!("/api/issues/{issue}")),
        ("ProjectPatch", format!("/api/projects/{project}")),
        ("GoalPatch", format!("/api/goals/{goal}")),
        ("LabelPatch", format!("/api/labels/{label}")),
        ("TemplatePatch", format!("/api/templates/{template}")),
    ] {
        let properties = doc["components"]["schemas"][schema]["properties"].as_object().expect(schema);
        for (field, property) in properties {
            let text = property.to_string();
            let nullable = text.contains(r#""null""#);
            let body = json!({ field: null }).to_string();
            let r = c.raw(Method::PATCH, &path, Some(("application/json", &body))).await.unwrap();
            if nullable {
                assert_eq!(r.status, 200, "{schema}.{field} is documented nullable: {}", r.text);
            } else {
                assert_eq!(r.status, 422, "{schema}.{field} is documented as not nullable: {}", r.text);
                assert_eq!(r.body["details"]["field"], field.as_str(), "{}", r.text);
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked} fields");
}
