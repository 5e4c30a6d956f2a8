//! Relations (`POST /api/issues/:id/relations`, `DELETE /api/relations/:id`) and threaded
//! comments (`GET|POST /api/issues/:id/comments`) over HTTP.

mod common;

use std::collections::BTreeSet;

use common::{TestServer, assert_api_error, start};
use reqwest::Method;
use serde_json::{Value, json};

/// POSTs a JSON body and returns the status and the parsed body.
async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let r = s.client.raw(Method::POST, path, Some(("application/json", &body.to_string()))).await.unwrap();
    (r.status.as_u16(), r.body)
}

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    let r = s.client.raw(Method::GET, path, None).await.unwrap();
    (r.status.as_u16(), r.body)
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

// ---------------------------------------------------------------------------------------------
// Relations

#[tokio::test]
async fn relation_create_returns_201_with_exactly_the_contract_fields() {
    let s = start().await;
    let a = s.task("a").await;
    let b = s.task("b").await;
    let (status, body) =
        post(&s, &format!("/api/issues/{}/relations", a.id), json!({"type": "blocks", "relatedIssueId": b.id})).await;
    assert_eq!(status, 201, "{body}");
    let d = &body["data"];
    assert_eq!(keys(d), set(&["id", "type", "issueId", "relatedIssueId", "createdAt"]));
    assert_eq!(d["type"], "blocks");
    assert_eq!(d["issueId"], a.id.as_str());
    assert_eq!(d["relatedIssueId"], b.id.as_str());
    assert!(!d["id"].as_str().unwrap().is_empty());
    assert!(d["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn relation_rejects_unknown_source_self_and_unknown_related() {
    let s = start().await;
    let a = s.task("a").await;

    assert_api_error(
        s.client.create_relation("nope", &json!({"type": "related", "relatedIssueId": a.id})).await,
        404,
        "not_found",
    );
    let m = assert_api_error(
        s.client.create_relation(&a.id, &json!({"type": "blocks", "relatedIssueId": a.id})).await,
        422,
        "self_relation",
    );
    assert!(m.starts_with("relatedIssueId:"), "{m}");
    let m = assert_api_error(
        s.client.create_relation(&a.id, &json!({"type": "blocks", "relatedIssueId": "missing"})).await,
        422,
        "related_issue_not_found",
    );
    assert!(m.starts_with("relatedIssueId:"), "{m}");

    // A deleted issue is gone from either end.
    let gone = s.task("gone").await;
    s.client.delete_issue(&gone.id).await.unwrap();
    assert_api_error(
        s.client.create_relation(&a.id, &json!({"type": "related", "relatedIssueId": gone.id})).await,
        422,
        "related_issue_not_found",
    );
    assert_api_error(
        s.client.create_relation(&gone.id, &json!({"type": "related", "relatedIssueId": a.id})).await,
        404,
        "not_found",
    );
    assert!(s.client.issue(&a.id).await.unwrap().relations.is_empty());
}

#[tokio::test]
async fn duplicates_and_inverse_twins_conflict() {
    let s = start().await;
    let a = s.task("a").await;
    let b = s.task("b").await;
    let rel = |from: &str, kind: &str, to: &str| {
        let (c, from, body) = (s.client.clone(), from.to_owned(), json!({"type": kind, "relatedIssueId": to}));
        async move { c.create_relation(&from, &body).await }
    };

    rel(&a.id, "blocks", &b.id).await.unwrap();
    // The same relation again, and its twin seen from the other end.
    assert_api_error(rel(&a.id, "blocks", &b.id).await, 409, "duplicate_relation");
    assert_api_error(rel(&b.id, "blocked_by", &a.id).await, 409, "duplicate_relation");
    // `related` is symmetric too.
    rel(&a.id, "related", &b.id).await.unwrap();
    assert_api_error(rel(&b.id, "related", &a.id).await, 409, "duplicate_relation");
    // The opposite direction of `blocks` would be a loop; of `duplicate`, it is another edge.
    let m = assert_api_error(rel(&b.id, "blocks", &a.id).await, 422, "blocking_cycle");
    assert!(m.starts_with("relatedIssueId: ") && m.contains("already waits for"), "{m}");
    rel(&a.id, "duplicate", &b.id).await.unwrap();
    rel(&b.id, "duplicate", &a.id).await.unwrap();

    assert_eq!(s.client.issue(&a.id).await.unwrap().relations.len(), 4);
}

#[tokio::test]
async fn delete_relation_is_204_then_404_and_frees_the_edge() {
    let s = start().await;
    let a = s.task("a").await;
    let b = s.task("b").await;
    let body = json!({"type": "blocked_by", "relatedIssueId": b.id});
    let r = s.client.create_relation(&a.id, &body).await.unwrap();

    let raw = s.client.raw(Method::DELETE, &format!("/api/relations/{}", r.id), None).await.unwrap();
    assert_eq!(raw.status, 204);
    assert!(raw.text.is_empty(), "204 has no body: {:?}", raw.text);
    assert_api_error(s.client.delete_relation(&r.id).await, 404, "not_found");
    assert_api_error(s.client.delete_relation("nope").await, 404, "not_found");

    assert!(s.client.issue(&a.id).await.unwrap().relations.is_empty());
    s.client.create_relation(&a.id, &body).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Comments

#[tokio::test]
async fn comment_create_returns_201_with_the_comment_shape() {
    let s = start().await;
    let i = s.task("t").await;
    let (status, body) = post(
        &s,
        &format!("/api/issues/{}/comments", i.id),
        json!({"body": "hello", "authorName": "Ada", "authorType": "human"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let d = &body["data"];
    assert_eq!(keys(d), set(&["id", "body", "issueId", "authorName", "authorType", "parentId", "createdAt"]));
    assert_eq!(d["body"], "hello");
    assert_eq!(d["issueId"], i.id.as_str());
    assert_eq!(d["authorName"], "Ada");
    assert_eq!(d["authorType"], "human");
    assert_eq!(d["parentId"], Value::Null);
    assert!(d["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn content_is_an_alias_of_body_and_author_type_defaults_to_agent() {
    let s = start().await;
    let i = s.task("t").await;
    let c = s.client.create_comment(&i.id, &json!({"content": "from the polling guide"})).await.unwrap();
    assert_eq!(c.body, "from the polling guide");
    assert_eq!(c.author_type.as_str(), "agent");
    assert!(!c.author_name.is_empty());

    // An empty body is still refused, under either name.
    for body in [json!({"body": ""}), json!({"content": "  "}), json!({})] {
        let r = s.client.create_comment(&i.id, &body).await;
        assert_eq!(r.unwrap_err().status(), Some(422), "{body}");
    }
}

#[tokio::test]
async fn replies_to_replies_are_kept_in_the_thread() {
    let s = start().await;
    let i = s.task("t").await;
    let comment = |body: &str, parent: Option<&str>| {
        let (c, id) = (s.client.clone(), i.id.clone());
        let body = json!({"body": body, "parentId": parent});
        async move { c.create_comment(&id, &body).await.unwrap() }
    };
    let top = comment("top", None).await;
    let reply = comment("reply", Some(&top.id)).await;
    let nested = comment("reply to reply", Some(&reply.id)).await;
    let second = comment("second top", None).await;

    let (status, body) = get(&s, &format!("/api/issues/{}/comments", i.id)).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&body), set(&["data"]), "no `total` on comments");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], top.id.as_str());
    assert_eq!(data[0]["replies"][0]["id"], reply.id.as_str());
    assert_eq!(data[0]["replies"][0]["parentId"], top.id.as_str());
    assert_eq!(data[0]["replies"][0]["replies"][0]["id"], nested.id.as_str());
    assert_eq!(data[0]["replies"][0]["replies"][0]["replies"], json!([]), "leaves have an empty replies list");
    assert_eq!(data[1]["id"], second.id.as_str());
    assert_eq!(data[1]["replies"], json!([]));
}

#[tokio::test]
async fn a_parent_comment_must_exist_on_the_same_issue() {
    let s = start().await;
    let a = s.task("a").await;
    let b = s.task("b").await;
    let on_b = s.client.create_comment(&b.id, &json!({"body": "on b"})).await.unwrap();

    for parent in [on_b.id.as_str(), "missing"] {
        let r = s.client.create_comment(&a.id, &json!({"body": "reply", "parentId": parent})).await;
        let Err(loop_client::ClientError::Api { status, message, body, .. }) = r else {
            panic!("expected an API error, got {r:?}");
        };
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["details"]["field"], "parentId", "{body}");
        assert!(message.starts_with("parentId:"), "{message}");
    }
    assert!(s.client.comments(&a.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn comments_on_an_unknown_issue_are_404() {
    let s = start().await;
    assert_api_error(s.client.comments("nope").await, 404, "not_found");
    assert_api_error(s.client.create_comment("nope", &json!({"body": "x"})).await, 404, "not_found");
    let i = s.task("t").await;
    let (status, body) = get(&s, &format!("/api/issues/{}/comments", i.id)).await;
    assert_eq!((status, body), (200, json!({"data": []})));
}
