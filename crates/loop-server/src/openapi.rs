//! The OpenAPI document, generated from the handlers' annotations so it describes what the
//! server really does.

use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::MAX_BODY_BYTES;

#[derive(OpenApi)]
#[openapi(
    info(title = "Loop API", description = "Issues, dispatch and prompts for autonomous agents."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "issues"), (name = "relations"), (name = "comments"), (name = "projects"),
        (name = "goals"), (name = "labels"), (name = "templates"), (name = "dispatch"),
        (name = "sessions"), (name = "questions"), (name = "landing"), (name = "signals"), (name = "tokens"), (name = "system"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("loop_<64 hex>").build(),
            ),
        );
    }
}

/// The document as served: what the handlers declare, completed with what every route shares
/// (see [`complete`]).
pub fn document(api: utoipa::openapi::OpenApi) -> String {
    let mut doc = serde_json::to_value(&api).expect("the OpenAPI document serialises");
    complete(&mut doc);
    serde_json::to_string_pretty(&doc).expect("JSON serialises")
}

/// Adds what the handlers share rather than declare one by one, so that every status code a
/// route can answer is listed with the error body, and every parameter with the bounds the
/// server enforces:
///
/// - 401 wherever a Bearer token is needed; 503 `busy` and 507 `insufficient_storage` on every
///   route that reaches the database;
/// - 400 where there are query parameters or headers to get wrong; 400, 408, 413, 415 and 422
///   where there is a body; 404 where the path names something;
/// - the bounds of the shared parameters (`limit`, `offset`, `wait`, `priority`, the agent
///   headers), and `minProperties: 1` on PATCH bodies (an empty patch is refused).
fn complete(doc: &mut Value) {
    doc["components"]["schemas"]["Error"] = json!({
        "type": "object",
        "description": "Every failure: what to fix, a stable code, and the field at fault when there is one.",
        "required": ["error", "code", "message"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong and what to fix."},
            "code": {"type": "string", "description": "Stable and machine-readable, e.g. validation_failed."},
            "message": {"type": "string", "description": "The same text as error."},
            "details": {"type": "object", "description": "The field at fault (field), and more."}
        }
    });
    let mut patched_bodies = Vec::new();
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "patch" | "delete" | "put") {
                continue;
            }
            let public = op.get("security") == Some(&json!([{}]));
            let params: Vec<Value> = op["parameters"].as_array().cloned().unwrap_or_default();
            let asks = |place: &str| params.iter().any(|p| p["in"] == place);
            let has_body = op.get("requestBody").is_some();
            let responses = op["responses"].as_object_mut().expect("every operation has responses");
            let mut add = |code: &str, description: &str| {
                let r = responses.entry(code).or_insert_with(|| json!({}));
                if r.get("description").and_then(Value::as_str).is_none_or(str::is_empty) {
                    r["description"] = json!(description);
                }
                if r.get("content").is_none() {
                    r["content"] = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
                }
            };
            if !public {
                add("401", "No valid Bearer token (or a claim's token that has ended)");
                add("403", "A claim's token may not do this");
            }
            if asks("query") || asks("header") {
                add("400", "A query parameter or header breaks its rule (invalid_query, invalid_header)");
            }
            if has_body {
                add("400", "The body is not JSON (malformed_json)");
                add("408", "The body stopped arriving (body_timeout)");
                add("413", &format!("The body is over {MAX_BODY_BYTES} bytes"));
                add("415", "The body is not sent as application/json");
                add("422", "A field breaks a rule: `details.field` names it");
            }
            if path.contains('{') {
                add("404", "Nothing by that id (or number)");
            }
            add("503", "The database is busy or unreachable; nothing was written, retry (Retry-After)");
            add("507", "The database's disk is full; nothing was written");
            if let Some(r) = responses.get_mut("503") {
                r["headers"] =
                    json!({"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}});
            }
            for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(schema) = parameter_schema(path, p["name"].as_str().unwrap_or_default()) {
                    p["schema"] = schema;
                }
            }
            if method == "patch"
                && let Some(name) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .and_then(|r| r.rsplit('/').next())
            {
                patched_bodies.push(name.to_owned());
            }
        }
    }
    let schemas: &mut Map<String, Value> = doc["components"]["schemas"].as_object_mut().expect("schemas");
    for name in patched_bodies {
        if let Some(schema) = schemas.get_mut(&name) {
            schema["minProperties"] = json!(1);
        }
    }
}

/// The rules the server enforces on query parameters and headers (lists are comma-separated;
/// an empty value is the same as none).
fn parameter_schema(path: &str, name: &str) -> Option<Value> {
    let one_of = |words: &str| json!({"type": "string", "pattern": format!(r"^\s*(?:{words})?\s*$")});
    let list_of = |words: &str| {
        let item = format!(r"(?:(?:{words})\s*)?");
        json!({"type": "string", "pattern": format!(r"^\s*{item}(?:,\s*{item})*$")})
    };
    Some(match (path, name) {
        (_, "limit") => json!({"type": "integer", "minimum": 1, "maximum": loop_core::page::MAX_LIMIT}),
        (_, "offset") => json!({"type": "integer", "format": "int64", "minimum": 0}),
        (_, "wait") => json!({"type": "integer", "minimum": 0, "maximum": crate::routes::dispatch::MAX_WAIT_SECS}),
        (_, "priority") => json!({"type": "integer", "minimum": 0, "maximum": 4}),
        (_, "X-Loop-Agent" | "Idempotency-Key") => json!({
            "type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[ -~]*[!-~][ -~]*$",
            "description": "1–200 visible ASCII characters (spaces inside allowed)"
        }),
        ("/api/issues", "status") => list_of("triage|backlog|todo|in_progress|done|canceled|open"),
        ("/api/issues", "type") => list_of("signal|hypothesis|plan|task|monitor"),
        ("/api/issues", "sort") => one_of("-?(?:number|created|updated|priority|title)"),
        ("/api/issues", "q") => json!({"type": "string", "maxLength": 200, "pattern": r"^\s*(?:\S+\s+){0,19}\S*\s*$",
            "description": "At most 200 characters and 20 words"}),
        ("/api/goals", "status") => one_of("active|achieved|abandoned"),
        ("/api/sessions", "outcome") => one_of("done|canceled|failed|expired|released"),
        _ => return None,
    })
}
