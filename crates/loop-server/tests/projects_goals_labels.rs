//! `/api/projects`, `/api/goals` and `/api/labels` over HTTP: CRUD, references, paging,
//! null-clearing, and name reuse.

mod common;

use common::{TestServer, assert_api_error, start};
use reqwest::Method;
use serde_json::{Value, json};

async fn send(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let r = s.client.raw(method, path, text.as_deref().map(|t| ("application/json", t))).await.unwrap();
    (r.status.as_u16(), r.body)
}

/// Asserts a 422 whose message starts with `<field>:`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: loop_client::Result<T>, code: &str, field: &str) {
    let m = assert_api_error(r, 422, code);
    assert!(m.starts_with(&format!("{field}:")), "{m}");
}

// ---------------------------------------------------------------------------------------------
// Projects

#[tokio::test]
async fn project_create_has_defaults_and_checks_the_goal() {
    let s = start().await;
    let (status, body) = send(&s, Method::POST, "/api/projects", Some(json!({"name": "Launch"}))).await;
    assert_eq!(status, 201, "{body}");
    let p = &body["data"];
    assert_eq!(p["name"], "Launch");
    assert_eq!(p["status"], "backlog");
    assert_eq!(p["health"], "on_track");
    assert_eq!(p["description"], Value::Null);
    assert_eq!(p["goalId"], Value::Null);
    assert_eq!(p["deletedAt"], Value::Null);
    for key in ["id", "createdAt", "updatedAt"] {
        assert!(p[key].is_string(), "{key} in {p}");
    }

    assert_invalid(s.client.create_project(&json!({"name": "X", "goalId": "nope"})).await, "goal_not_found", "goalId");
    let g = s.client.create_goal(&json!({"title": "G"})).await.unwrap();
    s.client.delete_goal(&g.id).await.unwrap();
    assert_invalid(s.client.create_project(&json!({"name": "X", "goalId": g.id})).await, "goal_not_found", "goalId");
    assert_eq!(s.client.list_projects("").await.unwrap().total, 1);
}

#[tokio::test]
async fn project_detail_has_its_goal_and_counts_only_present_statuses() {
    let s = start().await;
    let g = s.client.create_goal(&json!({"title": "Grow", "metric": "signups", "targetValue": 100})).await.unwrap();
    let p = s.client.create_project(&json!({"name": "P", "goalId": g.id, "status": "active"})).await.unwrap();
    let other = s.client.create_project(&json!({"name": "Other"})).await.unwrap();
    let issue = |title: &str, status: &str, project: &str| json!({"title": title, "type": "task", "status": status, "projectId": project});
    s.issue_with(issue("a", "todo", &p.id)).await;
    s.issue_with(issue("b", "todo", &p.id)).await;
    s.issue_with(issue("elsewhere", "done", &other.id)).await;
    let deleted = s.issue_with(issue("deleted", "backlog", &p.id)).await;
    s.client.delete_issue(&deleted.id).await.unwrap();

    let (status, body) = send(&s, Method::GET, &format!("/api/projects/{}", p.id), None).await;
    assert_eq!(status, 200);
    let d = &body["data"];
    assert_eq!(d["id"], p.id.as_str());
    assert_eq!(d["status"], "active");
    assert_eq!(d["goal"]["id"], g.id.as_str());
    assert_eq!(d["goal"]["metric"], "signups");
    assert_eq!(d["issueCounts"], json!({"todo": 2}));

    s.issue_with(issue("c", "done", &p.id)).await;
    let detail = s.client.project(&p.id).await.unwrap();
    let counts: Vec<(String, u64)> = detail.issue_counts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(counts, [("todo".into(), 2), ("done".into(), 1)]);

    let (_, empty) = send(&s, Method::GET, &format!("/api/projects/{}", other.id), None).await;
    assert_eq!(empty["data"]["goal"], Value::Null);
    assert_eq!(empty["data"]["issueCounts"], json!({"done": 1}));
}

#[tokio::test]
async fn project_list_is_paged_with_a_total() {
    let s = start().await;
    for name in ["one", "two", "three"] {
        s.client.create_project(&json!({"name": name})).await.unwrap();
    }
    let (status, body) = send(&s, Method::GET, "/api/projects?limit=2&offset=1", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 3);
    let names: Vec<&str> = body["data"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["two", "three"]);
    let past_end = s.client.list_projects("offset=10").await.unwrap();
    assert_eq!((past_end.data.len(), past_end.total), (0, 3));
}

#[tokio::test]
async fn project_patch_changes_and_clears_fields() {
    let s = start().await;
    let g = s.client.create_goal(&json!({"title": "G"})).await.unwrap();
    let p = s.client.create_project(&json!({"name": "P", "description": "d", "goalId": g.id})).await.unwrap();

    let changed = s
        .client
        .update_project(&p.id, &json!({"name": "Renamed", "health": "at_risk", "status": "paused"}))
        .await
        .unwrap();
    assert_eq!(changed.name, "Renamed");
    assert_eq!(changed.health.as_str(), "at_risk");
    assert_eq!(changed.status.as_str(), "paused");
    assert_eq!(changed.description.as_deref(), Some("d"), "absent = unchanged");
    assert!(changed.updated_at >= p.updated_at);

    let cleared = s.client.update_project(&p.id, &json!({"description": null, "goalId": null})).await.unwrap();
    assert_eq!((cleared.description, cleared.goal_id), (None, None));
    let again = s.client.project(&p.id).await.unwrap();
    assert_eq!(again.project.name, "Renamed");
    assert_eq!(again.project.goal_id, None);

    assert_invalid(s.client.update_project(&p.id, &json!({"goalId": "nope"})).await, "goal_not_found", "goalId");
    assert_api_error(s.client.update_project("nope", &json!({"name": "x"})).await, 404, "not_found");
}

#[tokio::test]
async fn project_delete_is_204_then_404() {
    let s = start().await;
    let p = s.client.create_project(&json!({"name": "P"})).await.unwrap();
    let (status, _) = send(&s, Method::DELETE, &format!("/api/projects/{}", p.id), None).await;
    assert_eq!(status, 204);
    assert_api_error(s.client.project(&p.id).await, 404, "not_found");
    assert_api_error(s.client.delete_project(&p.id).await, 404, "not_found");
    assert_api_error(s.client.update_project(&p.id, &json!({"name": "x"})).await, 404, "not_found");
    assert_eq!(s.client.list_projects("").await.unwrap().total, 0);
    // A deleted project cannot be referenced any more.
    assert_invalid(
        s.client.create_issue(&json!({"title": "t", "type": "task", "projectId": p.id})).await,
        "project_not_found",
        "projectId",
    );
}

// ---------------------------------------------------------------------------------------------
// Goals

#[tokio::test]
async fn goal_crud_round_trip() {
    let s = start().await;
    let p = s.client.create_project(&json!({"name": "P"})).await.unwrap();
    let (status, body) = send(
        &s,
        Method::POST,
        "/api/goals",
        Some(json!({
            "title": "Signups",
            "description": "more of them",
            "metric": "signups/week",
            "targetValue": 100,
            "currentValue": 12.5,
            "unit": "users",
            "projectId": p.id,
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let g = &body["data"];
    assert_eq!(g["status"], "active");
    assert_eq!(g["targetValue"], 100.0);
    assert_eq!(g["currentValue"], 12.5);
    assert_eq!(g["projectId"], p.id.as_str());
    let id = g["id"].as_str().unwrap().to_owned();

    let fetched = s.client.goal(&id).await.unwrap();
    assert_eq!(fetched.title, "Signups");
    assert_eq!(fetched.unit.as_deref(), Some("users"));

    let listed = s.client.list_goals("").await.unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.data[0].id, id);

    let patched = s.client.update_goal(&id, &json!({"currentValue": 40, "status": "achieved"})).await.unwrap();
    assert_eq!(patched.current_value, Some(40.0));
    assert_eq!(patched.status.as_str(), "achieved");
    assert_eq!(patched.target_value, Some(100.0));

    let (status, _) = send(&s, Method::DELETE, &format!("/api/goals/{id}"), None).await;
    assert_eq!(status, 204);
    assert_api_error(s.client.goal(&id).await, 404, "not_found");
    assert_api_error(s.client.delete_goal(&id).await, 404, "not_found");
    assert_eq!(s.client.list_goals("").await.unwrap().total, 0);
}

#[tokio::test]
async fn goal_patch_null_clears_and_absent_keeps() {
    let s = start().await;
    let p = s.client.create_project(&json!({"name": "P"})).await.unwrap();
    let g = s
        .client
        .create_goal(&json!({
            "title": "G", "description": "d", "metric": "m", "targetValue": 10,
            "currentValue": 3, "unit": "u", "projectId": p.id,
        }))
        .await
        .unwrap();

    let one = s.client.update_goal(&g.id, &json!({"currentValue": null})).await.unwrap();
    assert_eq!(one.current_value, None);
    assert_eq!(one.target_value, Some(10.0));
    assert_eq!(one.metric.as_deref(), Some("m"));

    let all = s
        .client
        .update_goal(
            &g.id,
            &json!({"description": null, "metric": null, "targetValue": null, "unit": null, "projectId": null}),
        )
        .await
        .unwrap();
    assert_eq!(
        (all.description, all.metric, all.target_value, all.unit, all.project_id),
        (None, None, None, None, None)
    );
    let stored = s.client.goal(&g.id).await.unwrap();
    assert_eq!((stored.title.as_str(), stored.current_value), ("G", None));

    // The title is not nullable.
    let r = s.client.update_goal(&g.id, &json!({"title": null})).await;
    assert_eq!(r.unwrap_err().status(), Some(422));
}

#[tokio::test]
async fn goal_project_must_exist() {
    let s = start().await;
    assert_invalid(
        s.client.create_goal(&json!({"title": "G", "projectId": "nope"})).await,
        "project_not_found",
        "projectId",
    );
    let g = s.client.create_goal(&json!({"title": "G"})).await.unwrap();
    assert_invalid(s.client.update_goal(&g.id, &json!({"projectId": "nope"})).await, "project_not_found", "projectId");
    assert_eq!(s.client.goal(&g.id).await.unwrap().project_id, None);
    assert_eq!(s.client.list_goals("").await.unwrap().total, 1);
}

// ---------------------------------------------------------------------------------------------
// Labels

#[tokio::test]
async fn label_create_get_and_duplicate_name() {
    let s = start().await;
    let (status, body) = send(&s, Method::POST, "/api/labels", Some(json!({"name": "bug", "color": "#f00"}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["name"], "bug");
    assert_eq!(body["data"]["color"], "#f00");
    let id = body["data"]["id"].as_str().unwrap().to_owned();

    let got = s.client.label(&id).await.unwrap();
    assert_eq!((got.name.as_str(), got.color.as_str()), ("bug", "#f00"));
    assert_api_error(s.client.label("nope").await, 404, "not_found");

    assert_api_error(s.client.create_label(&json!({"name": "bug", "color": "blue"})).await, 409, "label_name_taken");
    // The spaces around a name are not part of it.
    assert_api_error(s.client.create_label(&json!({"name": " bug\t", "color": "blue"})).await, 409, "label_name_taken");
    let ui = s.client.create_label(&json!({"name": "  ui ", "color": "blue"})).await.unwrap();
    assert_eq!(ui.name, "ui");
    let renamed = s.client.update_label(&ui.id, &json!({"name": " ux "})).await.unwrap();
    assert_eq!(renamed.name, "ux");
    assert_eq!(s.client.list_labels("").await.unwrap().total, 2);
}

#[tokio::test]
async fn a_deleted_label_name_is_reusable_and_deleting_twice_is_404() {
    let s = start().await;
    let old = s.client.create_label(&json!({"name": "ui", "color": "blue"})).await.unwrap();
    let (status, _) = send(&s, Method::DELETE, &format!("/api/labels/{}", old.id), None).await;
    assert_eq!(status, 204);
    assert_api_error(s.client.delete_label(&old.id).await, 404, "not_found");
    assert_api_error(s.client.label(&old.id).await, 404, "not_found");

    let (status, body) = send(&s, Method::POST, "/api/labels", Some(json!({"name": "ui", "color": "green"}))).await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["data"]["id"], old.id.as_str());
    let list = s.client.list_labels("").await.unwrap();
    assert_eq!(list.total, 1);
    assert_eq!(list.data[0].color, "green");
}

#[tokio::test]
async fn label_patch_renames_and_keeps_names_unique() {
    let s = start().await;
    let a = s.client.create_label(&json!({"name": "a", "color": "red"})).await.unwrap();
    s.client.create_label(&json!({"name": "b", "color": "red"})).await.unwrap();

    let renamed = s.client.update_label(&a.id, &json!({"name": "frontend"})).await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.color.as_str()), ("frontend", "red"));
    assert_eq!(s.client.label(&a.id).await.unwrap().name, "frontend");

    let recolored = s.client.update_label(&a.id, &json!({"color": "#00ff00"})).await.unwrap();
    assert_eq!((recolored.name.as_str(), recolored.color.as_str()), ("frontend", "#00ff00"));

    assert_api_error(s.client.update_label(&a.id, &json!({"name": "b"})).await, 409, "label_name_taken");
    assert_api_error(s.client.update_label("nope", &json!({"name": "c"})).await, 404, "not_found");
    // The old name is free again.
    s.client.create_label(&json!({"name": "a", "color": "red"})).await.unwrap();
}

/// A blank reference (`""`, which some clients send for "none") means none on every resource,
/// as it does on issues: on create it is left unset, in a PATCH it clears.
#[tokio::test]
async fn a_blank_reference_means_none_everywhere() {
    let s = start().await;
    let p = s.client.create_project(&json!({"name": "P"})).await.unwrap();
    let g = s.client.create_goal(&json!({"title": "G", "projectId": p.id})).await.unwrap();
    for (path, field, id) in [
        ("/api/goals", "projectId", p.id.clone()),
        ("/api/projects", "goalId", g.id.clone()),
        ("/api/templates", "projectId", p.id.clone()),
    ] {
        let body = match path {
            "/api/goals" => json!({"title": "blank", field: ""}),
            "/api/projects" => json!({"name": "blank", field: ""}),
            _ => json!({"slug": "blank", "name": "blank", field: "  "}),
        };
        let (status, created) = send(&s, Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {created}");
        assert_eq!(created["data"][field], Value::Null, "{path}: {created}");
        let item = format!("{path}/{}", created["data"]["id"].as_str().unwrap());
        let (status, set) = send(&s, Method::PATCH, &item, Some(json!({ field: id }))).await;
        assert_eq!((status, &set["data"][field]), (200, &json!(id)), "{item}: {set}");
        let (status, cleared) = send(&s, Method::PATCH, &item, Some(json!({ field: "" }))).await;
        assert_eq!((status, &cleared["data"][field]), (200, &Value::Null), "{item}: {cleared}");
    }
}
