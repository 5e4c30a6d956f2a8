//! `/api/issues` over HTTP: shapes, filters, hierarchy, lifecycle, history.

mod common;

use common::{assert_api_error, start};
use serde_json::json;

#[tokio::test]
async fn create_returns_201_with_every_field_and_a_global_number() {
    let s = start().await;
    let raw = s
        .client
        .raw(reqwest::Method::POST, "/api/issues", Some(("application/json", r#"{"title":"A","type":"signal"}"#)))
        .await
        .unwrap();
    assert_eq!(raw.status, 201);
    let d = &raw.body["data"];
    for key in [
        "id",
        "number",
        "title",
        "description",
        "type",
        "status",
        "priority",
        "parentId",
        "projectId",
        "signalSource",
        "signalPayload",
        "hypothesis",
        "agentSessionId",
        "agentSummary",
        "commits",
        "pullRequests",
        "completedAt",
        "createdAt",
        "updatedAt",
        "deletedAt",
    ] {
        assert!(d.get(key).is_some(), "missing {key} in {d}");
    }
    assert_eq!(d["number"], 1);
    assert_eq!(d["status"], "triage");
    assert_eq!(d["priority"], 0);
    assert!(d["createdAt"].as_str().unwrap().ends_with('Z'));
    let second = s.task("B").await;
    assert_eq!(second.number, 2);
}

#[tokio::test]
async fn detail_has_parent_children_labels_and_relations_and_accepts_the_number() {
    let s = start().await;
    let label = s.client.create_label(&json!({"name": "frontend", "color": "#00f"})).await.unwrap();
    let root = s.issue_with(json!({"title": "root", "type": "signal"})).await;
    let child = s
        .issue_with(json!({"title": "child", "type": "task", "parentId": root.id, "labelIds": [label.id, label.id]}))
        .await;
    let other = s.task("other").await;
    s.client.create_relation(&other.id, &json!({"type": "blocks", "relatedIssueId": child.id})).await.unwrap();

    let d = s.client.issue(&child.id).await.unwrap();
    assert_eq!(d.parent.as_ref().unwrap().id, root.id);
    assert_eq!(d.labels.len(), 1, "duplicate labelIds are collapsed");
    assert_eq!(d.labels[0].name, "frontend");
    assert_eq!(d.relations.len(), 1, "incoming relations are listed too");
    let r = s.client.issue(&root.number.to_string()).await.unwrap();
    assert_eq!(r.issue.id, root.id);
    assert_eq!(r.children.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![child.id.clone()]);
}

#[tokio::test]
async fn list_filters_combine_and_total_counts_every_match() {
    let s = start().await;
    let p = s.client.create_project(&json!({"name": "P"})).await.unwrap();
    let l = s.client.create_label(&json!({"name": "bug", "color": "red"})).await.unwrap();
    let root = s.issue_with(json!({"title": "r", "type": "signal", "status": "todo", "priority": 1})).await;
    s.issue_with(json!({"title": "a", "type": "task", "status": "todo", "projectId": p.id, "labelIds": [l.id], "parentId": root.id})).await;
    s.issue_with(json!({"title": "b", "type": "task", "status": "done", "projectId": p.id})).await;
    s.issue_with(json!({"title": "c", "type": "plan", "status": "backlog", "priority": 1})).await;

    let total = |q: &'static str| {
        let c = s.client.clone();
        async move { c.list_issues(q).await.unwrap().total }
    };
    assert_eq!(total("").await, 4);
    assert_eq!(total("status=todo,done").await, 3);
    assert_eq!(total("status=open").await, 3);
    assert_eq!(total("type=task").await, 2);
    assert_eq!(total("type=task,plan&status=open").await, 2);
    assert_eq!(total("priority=1").await, 2);
    assert_eq!(total("labelId=none").await, 0);
    assert_eq!(s.client.list_issues(&format!("projectId={}", p.id)).await.unwrap().total, 2);
    assert_eq!(s.client.list_issues(&format!("labelId={}", l.id)).await.unwrap().total, 1);
    assert_eq!(s.client.list_issues(&format!("parentId={}", root.id)).await.unwrap().total, 1);

    let page = s.client.list_issues("limit=2&offset=1").await.unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(page.data.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
}

#[tokio::test]
async fn the_one_level_hierarchy_holds_on_create_and_on_update() {
    let s = start().await;
    let root = s.task("root").await;
    let child = s.issue_with(json!({"title": "child", "type": "task", "parentId": root.id})).await;
    let loose = s.task("loose").await;

    let m = assert_api_error(
        s.client.create_issue(&json!({"title": "grandchild", "type": "task", "parentId": child.id})).await,
        422,
        "hierarchy_depth",
    );
    assert!(m.starts_with("parentId:"), "{m}");
    assert_api_error(
        s.client.create_issue(&json!({"title": "x", "type": "task", "parentId": "nope"})).await,
        422,
        "parent_not_found",
    );
    assert_api_error(s.client.update_issue(&loose.id, &json!({"parentId": child.id})).await, 422, "hierarchy_depth");
    assert_api_error(s.client.update_issue(&root.id, &json!({"parentId": loose.id})).await, 422, "hierarchy_depth");
    assert_api_error(s.client.update_issue(&loose.id, &json!({"parentId": loose.id})).await, 422, "self_parent");

    s.client.delete_issue(&loose.id).await.unwrap();
    assert_api_error(
        s.client.create_issue(&json!({"title": "x", "type": "task", "parentId": loose.id})).await,
        422,
        "parent_not_found",
    );
    let moved = s.client.update_issue(&child.id, &json!({"parentId": null})).await.unwrap();
    assert_eq!(moved.parent_id, None);
}

#[tokio::test]
async fn patch_stores_agent_results_and_completed_at_follows_done() {
    let s = start().await;
    let i = s.task("work").await;
    let done = s
        .client
        .update_issue(
            &i.id,
            &json!({
                "status": "done",
                "agentSummary": "fixed it",
                "agentSessionId": "sess-1",
                "commits": [{"sha": "abc123", "message": "fix", "url": "https://example.test/c"}],
                "pullRequests": [{"number": 7, "title": "Fix", "state": "open", "merged": false}],
            }),
        )
        .await
        .unwrap();
    assert!(done.completed_at.is_some());
    assert_eq!(done.agent_summary.as_deref(), Some("fixed it"));
    let again = s.client.issue(&i.id).await.unwrap().issue;
    assert_eq!(again.commits.unwrap()[0].sha.as_str(), "abc123");
    let pr = &again.pull_requests.unwrap()[0];
    assert_eq!((pr.number, pr.extra["state"].as_str()), (7, Some("open")));

    let reopened = s.client.update_issue(&i.id, &json!({"status": "todo"})).await.unwrap();
    assert_eq!(reopened.completed_at, None);
    assert!(reopened.updated_at >= done.updated_at);
}

#[tokio::test]
async fn deleted_issues_are_invisible_everywhere() {
    let s = start().await;
    let root = s.task("root").await;
    let child = s.issue_with(json!({"title": "child", "type": "task", "parentId": root.id})).await;
    s.client.create_relation(&root.id, &json!({"type": "related", "relatedIssueId": child.id})).await.unwrap();
    s.client.delete_issue(&child.id).await.unwrap();

    assert_api_error(s.client.issue(&child.id).await, 404, "not_found");
    assert_api_error(s.client.comments(&child.id).await, 404, "not_found");
    assert_api_error(s.client.create_comment(&child.id, &json!({"body": "x"})).await, 404, "not_found");
    assert_api_error(s.client.delete_issue(&child.id).await, 404, "not_found");
    assert_eq!(s.issue_count().await, 1);
    let d = s.client.issue(&root.id).await.unwrap();
    assert!(d.children.is_empty());
    assert!(d.relations.is_empty());
}

#[tokio::test]
async fn history_records_every_change_with_its_actor() {
    let s = start().await;
    let l = s.client.create_label(&json!({"name": "ui", "color": "blue"})).await.unwrap();
    let i = s.task("first").await;
    let other = s.task("other").await;
    s.client.update_issue(&i.id, &json!({"title": "second", "status": "todo", "labelIds": [l.id]})).await.unwrap();
    s.client.create_relation(&i.id, &json!({"type": "blocked_by", "relatedIssueId": other.id})).await.unwrap();
    s.client.create_comment(&i.id, &json!({"body": "hello"})).await.unwrap();
    s.client.update_issue(&i.id, &json!({"labelIds": []})).await.unwrap();
    // A rejected change leaves no trace.
    assert_api_error(s.client.update_issue(&i.id, &json!({"parentId": "missing"})).await, 422, "parent_not_found");

    let events = s.client.issue_events(&i.id, "").await.unwrap();
    let kinds: Vec<String> = events.data.iter().map(|e| e.kind.to_string()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "field_changed",
            "status_changed",
            "label_added",
            "relation_added",
            "comment_added",
            "label_removed"
        ]
    );
    assert!(events.data.iter().all(|e| e.actor == "human"));
    assert_eq!(events.data[1].data, json!({"field": "title", "from": "first", "to": "second"}));
    assert_eq!(events.data[2].data, json!({"from": "triage", "to": "todo"}));
    let other_events = s.client.issue_events(&other.id, "").await.unwrap();
    assert_eq!(other_events.data.last().unwrap().kind.to_string(), "relation_added");
}
