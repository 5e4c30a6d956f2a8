//! `/api/templates`, their versions (one active at a time) and `/api/prompt-reviews`.

mod common;

use common::{TestServer, assert_api_error, start};
use loop_core::template::{PromptTemplate, PromptVersion};
use reqwest::Method;
use serde_json::{Value, json};

async fn send(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let r = s.client.raw(method, path, text.as_deref().map(|t| ("application/json", t))).await.unwrap();
    (r.status.as_u16(), r.body)
}

/// The default templates every new server starts with.
const SEEDED: u64 = 11;

async fn template(s: &TestServer, slug: &str) -> PromptTemplate {
    s.client.create_template(&json!({"slug": slug, "name": slug})).await.expect("create template")
}

async fn version(s: &TestServer, template_id: &str, body: Value) -> PromptVersion {
    s.client.create_version(template_id, &body).await.expect("create version")
}

/// `(version number, status)` of every version, newest first.
async fn statuses(s: &TestServer, template_id: &str) -> Vec<(i64, String)> {
    s.client
        .list_versions(template_id, "")
        .await
        .unwrap()
        .data
        .iter()
        .map(|v| (v.version, v.status.to_string()))
        .collect()
}

/// A template with one (active) version and an issue to review it against.
async fn reviewable(s: &TestServer) -> (PromptTemplate, PromptVersion, String) {
    let t = template(s, "task-execute").await;
    let v = version(s, &t.id, json!({"content": "Do {{issue.title}}"})).await;
    let issue = s.task("reviewed").await;
    (t, v, issue.id)
}

// ---------------------------------------------------------------------------------------------
// Templates

#[tokio::test]
async fn template_create_returns_201_without_an_active_version() {
    let s = start().await;
    let (status, body) = send(
        &s,
        Method::POST,
        "/api/templates",
        Some(json!({
            "slug": "my-signal-triage",
            "name": "Signal triage",
            "conditions": {"type": "signal", "hasFailedSessions": false},
            "specificity": 40,
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let t = &body["data"];
    assert_eq!(t["slug"], "my-signal-triage");
    assert_eq!(t["activeVersionId"], Value::Null);
    assert_eq!(t["specificity"], 40);
    assert_eq!(t["conditions"], json!({"type": "signal", "hasFailedSessions": false}));

    let defaults = template(&s, "plain").await;
    assert_eq!(defaults.specificity.value(), 10);
    let detail = s.client.template(&defaults.id).await.unwrap();
    assert_eq!(detail.active_version, None);
    assert_eq!(s.client.list_templates("").await.unwrap().total, SEEDED + 2);
}

#[tokio::test]
async fn template_input_is_validated() {
    let s = start().await;
    let cases = [
        (json!({"slug": "Bad Slug", "name": "n"}), "slug"),
        (json!({"slug": "double--hyphen", "name": "n"}), "slug"),
        (json!({"slug": "-lead", "name": "n"}), "slug"),
        (json!({"slug": "", "name": "n"}), "slug"),
        (json!({"slug": "ok", "name": "n", "conditions": {"colour": "red"}}), "colour"),
        (json!({"slug": "ok", "name": "n", "conditions": {"type": "bug"}}), "conditions.type"),
        (json!({"slug": "ok", "name": "n", "specificity": 101}), "specificity"),
        (json!({"slug": "ok", "name": "n", "specificity": -1}), "specificity"),
        (json!({"slug": "ok", "name": ""}), "name"),
        (json!({"slug": "ok", "name": "n", "projectId": "nope"}), "projectId"),
    ];
    for (body, field) in cases {
        let r = s.client.create_template(&body).await;
        let Err(loop_client::ClientError::Api { status, message, .. }) = &r else {
            panic!("{body} was accepted: {r:?}");
        };
        assert_eq!(*status, 422, "{body}: {message}");
        assert!(message.contains(field), "{body}: {message}");
    }
    assert_eq!(s.client.list_templates("").await.unwrap().total, SEEDED);
}

#[tokio::test]
async fn slugs_conflict_until_the_template_is_deleted() {
    let s = start().await;
    let first = template(&s, "my-task").await;
    assert_api_error(
        s.client.create_template(&json!({"slug": "my-task", "name": "again"})).await,
        409,
        "template_slug_taken",
    );
    let (status, _) = send(&s, Method::DELETE, &format!("/api/templates/{}", first.id), None).await;
    assert_eq!(status, 204);
    assert_api_error(s.client.template(&first.id).await, 404, "not_found");
    assert_api_error(s.client.delete_template(&first.id).await, 404, "not_found");

    let second = template(&s, "my-task").await;
    assert_ne!(second.id, first.id);
    assert_eq!(s.client.list_templates("").await.unwrap().total, SEEDED + 1);
}

#[tokio::test]
async fn template_patch_changes_fields_but_not_the_slug() {
    let s = start().await;
    let t = template(&s, "t").await;
    let changed = s
        .client
        .update_template(&t.id, &json!({"name": "New", "specificity": 90, "conditions": {"labels": ["ui"]}}))
        .await
        .unwrap();
    assert_eq!((changed.name.as_str(), changed.specificity.value()), ("New", 90));
    assert_eq!(changed.conditions.labels, Some(vec!["ui".to_owned()]));
    let r = s.client.update_template(&t.id, &json!({"slug": "u"})).await;
    assert_eq!(r.unwrap_err().status(), Some(422), "the slug is immutable");
    assert_eq!(s.client.template(&t.id).await.unwrap().template.slug, "t");
}

// ---------------------------------------------------------------------------------------------
// Versions

#[tokio::test]
async fn the_first_version_becomes_active_and_later_ones_are_drafts() {
    let s = start().await;
    let t = template(&s, "t").await;
    let (status, body) = send(
        &s,
        Method::POST,
        &format!("/api/templates/{}/versions", t.id),
        Some(json!({"content": "v1", "changelog": "first"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let v1 = &body["data"];
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["status"], "active");
    assert_eq!(v1["templateId"], t.id.as_str());
    assert_eq!(v1["usageCount"], 0);
    let v1_id = v1["id"].as_str().unwrap();

    let detail = s.client.template(&t.id).await.unwrap();
    assert_eq!(detail.template.active_version_id.as_deref(), Some(v1_id));
    assert_eq!(detail.active_version.unwrap().content, "v1");

    let v2 = version(&s, &t.id, json!({"content": "v2"})).await;
    assert_eq!((v2.version, v2.status.as_str()), (2, "draft"));
    let detail = s.client.template(&t.id).await.unwrap();
    assert_eq!(detail.template.active_version_id.as_deref(), Some(v1_id));

    let (status, list) = send(&s, Method::GET, &format!("/api/templates/{}/versions", t.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 2);
    let numbers: Vec<i64> = list["data"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [2, 1], "newest first");
}

#[tokio::test]
async fn promote_makes_exactly_one_version_active() {
    let s = start().await;
    let t = template(&s, "t").await;
    let v1 = version(&s, &t.id, json!({"content": "v1"})).await;
    let v2 = version(&s, &t.id, json!({"content": "v2"})).await;

    let path = format!("/api/templates/{}/versions/{}/promote", t.id, v2.id);
    let (status, body) = send(&s, Method::POST, &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], v2.id.as_str());
    assert_eq!(body["data"]["status"], "active");
    assert_eq!(statuses(&s, &t.id).await, [(2, "active".into()), (1, "retired".into())]);
    assert_eq!(s.client.template(&t.id).await.unwrap().template.active_version_id, Some(v2.id.clone()));

    let m = assert_api_error(s.client.promote_version(&t.id, &v2.id).await, 422, "already_active");
    assert!(m.contains("already active"), "{m}");

    // Rolling back: a retired version can be promoted again.
    s.client.promote_version(&t.id, &v1.id).await.unwrap();
    assert_eq!(statuses(&s, &t.id).await, [(2, "retired".into()), (1, "active".into())]);
}

#[tokio::test]
async fn promote_of_an_unknown_or_foreign_version_is_404() {
    let s = start().await;
    let t = template(&s, "t").await;
    let other = template(&s, "other").await;
    let foreign = version(&s, &other.id, json!({"content": "x"})).await;
    version(&s, &t.id, json!({"content": "mine"})).await;

    assert_api_error(s.client.promote_version(&t.id, "nope").await, 404, "not_found");
    assert_api_error(s.client.promote_version(&t.id, &foreign.id).await, 404, "not_found");
    assert_api_error(s.client.promote_version("nope", &foreign.id).await, 404, "not_found");
    assert_eq!(statuses(&s, &other.id).await, [(1, "active".into())]);
}

#[tokio::test]
async fn a_version_created_active_retires_the_previous_one() {
    let s = start().await;
    let t = template(&s, "t").await;
    version(&s, &t.id, json!({"content": "v1"})).await;
    version(&s, &t.id, json!({"content": "v2"})).await;
    let v3 = version(&s, &t.id, json!({"content": "v3", "status": "active"})).await;
    assert_eq!(v3.status.as_str(), "active");
    assert_eq!(statuses(&s, &t.id).await, [(3, "active".into()), (2, "draft".into()), (1, "retired".into())]);
    let detail = s.client.template(&t.id).await.unwrap();
    assert_eq!(detail.template.active_version_id, Some(v3.id));
}

#[tokio::test]
async fn versions_of_an_unknown_template_are_404() {
    let s = start().await;
    assert_api_error(s.client.list_versions("nope", "").await, 404, "not_found");
    assert_api_error(s.client.create_version("nope", &json!({"content": "x"})).await, 404, "not_found");
    let t = template(&s, "t").await;
    let r = s.client.create_version(&t.id, &json!({"content": ""})).await;
    assert_eq!(r.unwrap_err().status(), Some(422));
    assert_eq!(s.client.list_versions(&t.id, "").await.unwrap().total, 0);
}

/// Handlebars recurses without a limit: a partial that calls itself would overflow the stack
/// and abort the server on the first preview or claim. Such a version is refused instead.
#[tokio::test]
async fn a_version_whose_partials_recurse_is_refused() {
    let s = start().await;
    let t = template(&s, "t").await;
    for content in ["{{#*inline \"p\"}}x{{> p}}{{/inline}}{{> p}}", "{{> no_such_partial}}"] {
        let m = assert_api_error(
            s.client.create_version(&t.id, &json!({ "content": content })).await,
            422,
            "template_compile_error",
        );
        assert!(m.contains("p → p") || m.contains("no partial named"), "{m}");
    }
    assert_eq!(s.client.list_versions(&t.id, "").await.unwrap().total, 0);
}

// ---------------------------------------------------------------------------------------------
// Reviews

#[tokio::test]
async fn a_review_is_created_with_agent_as_the_default_author() {
    let s = start().await;
    let (_, v, issue_id) = reviewable(&s).await;
    let (status, body) = send(
        &s,
        Method::POST,
        "/api/prompt-reviews",
        Some(json!({
            "versionId": v.id, "issueId": issue_id,
            "clarity": 4, "completeness": 5, "relevance": 3, "feedback": "fine",
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let r = &body["data"];
    assert_eq!(r["authorType"], "agent");
    assert_eq!(r["authorName"], "agent", "the master key speaking for an unnamed agent");
    assert_eq!(r["versionId"], v.id.as_str());
    assert_eq!(r["issueId"], issue_id.as_str());
    assert_eq!((&r["clarity"], &r["completeness"], &r["relevance"]), (&json!(4), &json!(5), &json!(3)));
    assert_eq!(r["feedback"], "fine");
}

#[tokio::test]
async fn review_input_is_checked() {
    let s = start().await;
    let (t, v, issue_id) = reviewable(&s).await;
    let review = |version: &str, issue: &str, clarity: i64| json!({"versionId": version, "issueId": issue, "clarity": clarity, "completeness": 3, "relevance": 3});

    let m = assert_api_error(s.client.create_review(&review(&v.id, &issue_id, 6)).await, 422, "validation_failed");
    assert!(m.contains("clarity"), "{m}");
    let r = s.client.create_review(&review(&v.id, &issue_id, 0)).await;
    assert_eq!(r.unwrap_err().status(), Some(422));
    assert_api_error(s.client.create_review(&review("nope", &issue_id, 3)).await, 404, "not_found");
    let m = assert_api_error(s.client.create_review(&review(&v.id, "nope", 3)).await, 422, "issue_not_found");
    assert!(m.starts_with("issueId:"), "{m}");

    assert_eq!(s.client.list_reviews(&t.id, "").await.unwrap().total, 0);
}

#[tokio::test]
async fn template_reviews_list_every_version_newest_first() {
    let s = start().await;
    let (t, v1, issue_id) = reviewable(&s).await;
    let v2 = version(&s, &t.id, json!({"content": "v2"})).await;
    let other = template(&s, "other").await;
    let v_other = version(&s, &other.id, json!({"content": "x"})).await;
    let review = |version: &str, feedback: &str| {
        json!({"versionId": version, "issueId": issue_id, "clarity": 3, "completeness": 3,
               "relevance": 3, "feedback": feedback, "authorType": "human"})
    };
    for (v, feedback) in [(&v1, "first"), (&v2, "second"), (&v_other, "elsewhere")] {
        s.client.create_review(&review(&v.id, feedback)).await.unwrap();
    }

    let (status, body) = send(&s, Method::GET, &format!("/api/templates/{}/reviews", t.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 2);
    let feedback: Vec<&str> =
        body["data"].as_array().unwrap().iter().map(|r| r["feedback"].as_str().unwrap()).collect();
    assert_eq!(feedback, ["second", "first"]);
    assert_eq!(body["data"][0]["authorType"], "human");

    let empty = template(&s, "empty").await;
    let none = s.client.list_reviews(&empty.id, "").await.unwrap();
    assert_eq!((none.data.len(), none.total), (0, 0));
    assert_api_error(s.client.list_reviews("nope", "").await, 404, "not_found");
}
