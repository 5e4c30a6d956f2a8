//! Projects and goals.

use std::collections::BTreeMap;

use loop_core::goal::{GoalPatch, GoalStatus};
use loop_core::issue::IssueStatus;
use loop_core::project::{ProjectHealth, ProjectStatus};
use serde_json::json;

use crate::Harness;
use crate::support::*;

/// A project's goal must exist; its detail carries the goal and per-status counts of its live
/// issues (only the statuses present); lists page in creation order; deletion is soft.
pub async fn project_crud_and_detail(h: &Harness) {
    expect_invalid(
        h.store.create_project(input(json!({ "name": "p", "goalId": "no-such-goal" }))).await,
        "goalId",
        "goal_not_found",
    );
    assert_eq!(ok(h.store.list_projects(all()).await).total, 0, "a rejected create writes nothing");

    let goal = ok(h.store.create_goal(input(json!({ "title": "ship it", "metric": "users" }))).await);
    h.clock.advance_millis(1_000);
    let p = ok(h.store.create_project(input(json!({ "name": "alpha", "goalId": goal.id }))).await);
    assert_eq!(p.name, "alpha");
    assert_eq!(p.status, ProjectStatus::Backlog, "status defaults to backlog");
    assert_eq!(p.health, ProjectHealth::OnTrack, "health defaults to on_track");
    assert_eq!(p.goal_id.as_deref(), Some(goal.id.as_str()));
    assert_eq!(p.description, None);
    assert_eq!((p.created_at, p.updated_at, p.deleted_at), (at(1_000), at(1_000), None));

    let d = ok(h.store.project_detail(&p.id).await);
    assert_eq!(d.project, p);
    assert_eq!(d.goal.as_ref(), Some(&goal));
    assert!(d.issue_counts.is_empty(), "no issues, no counts: {:?}", d.issue_counts);

    let other = ok(h
        .store
        .create_project(input(json!({
            "name": "beta", "description": "second", "status": "active", "health": "at_risk",
        })))
        .await);
    assert_eq!(
        (other.status, other.health, other.description.as_deref()),
        (ProjectStatus::Active, ProjectHealth::AtRisk, Some("second"))
    );
    assert_eq!(ok(h.store.project_detail(&other.id).await).goal, None);

    for (title, status, project) in
        [("a", "triage", &p.id), ("b", "triage", &p.id), ("c", "done", &p.id), ("d", "todo", &other.id)]
    {
        create_issue(h, json!({ "title": title, "type": "task", "status": status, "projectId": project })).await;
    }
    let gone = create_issue(h, json!({ "title": "gone", "type": "task", "status": "todo", "projectId": p.id })).await;
    ok(h.store.delete_issue(&gone.id, &bot()).await);
    create_issue(h, json!({ "title": "loose", "type": "task", "status": "backlog" })).await;
    let counts = ok(h.store.project_detail(&p.id).await).issue_counts;
    assert_eq!(counts, BTreeMap::from([(IssueStatus::Triage, 2), (IssueStatus::Done, 1)]));
    let counts = ok(h.store.project_detail(&other.id).await).issue_counts;
    assert_eq!(counts, BTreeMap::from([(IssueStatus::Todo, 1)]));

    // Updates.
    h.clock.advance_millis(1_000);
    expect_invalid(
        h.store.update_project(&p.id, input(json!({ "goalId": "no-such-goal" }))).await,
        "goalId",
        "goal_not_found",
    );
    let updated = ok(h
        .store
        .update_project(&p.id, input(json!({ "name": "alpha 2", "description": "desc", "status": "paused" })))
        .await);
    assert_eq!((updated.name.as_str(), updated.description.as_deref()), ("alpha 2", Some("desc")));
    assert_eq!(updated.status, ProjectStatus::Paused);
    assert_eq!(updated.goal_id.as_deref(), Some(goal.id.as_str()), "absent fields are left alone");
    assert_eq!((updated.created_at, updated.updated_at), (at(1_000), at(2_000)));
    let cleared = ok(h.store.update_project(&p.id, input(json!({ "description": null, "goalId": null }))).await);
    assert_eq!((&cleared.description, &cleared.goal_id), (&None, &None));
    let d = ok(h.store.project_detail(&p.id).await);
    assert_eq!(d.project, cleared, "the update is what is stored");
    assert_eq!(d.goal, None);

    // Paging, in creation order.
    let mut names = vec!["alpha 2".to_owned(), "beta".to_owned()];
    for n in 0..3 {
        h.clock.advance_millis(1_000);
        let name = format!("extra {n}");
        ok(h.store.create_project(input(json!({ "name": name }))).await);
        names.push(name);
    }
    let listed = ok(h.store.list_projects(all()).await);
    assert_eq!(listed.total, 5);
    assert_eq!(listed.data.iter().map(|p| p.name.clone()).collect::<Vec<_>>(), names);
    let p2 = ok(h.store.list_projects(page(2, 2)).await);
    assert_eq!(p2.total, 5);
    assert_eq!(p2.data.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["extra 0", "extra 1"]);
    let p3 = ok(h.store.list_projects(page(2, 4)).await);
    assert_eq!(p3.data.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["extra 2"]);

    // Soft delete.
    ok(h.store.delete_project(&p.id).await);
    expect_not_found(h.store.project_detail(&p.id).await);
    expect_not_found(h.store.update_project(&p.id, input(json!({ "name": "x" }))).await);
    expect_not_found(h.store.delete_project(&p.id).await);
    let listed = ok(h.store.list_projects(all()).await);
    assert_eq!(listed.total, 4);
    assert!(listed.data.iter().all(|q| q.id != p.id));
    expect_invalid(
        h.store.create_issue(input(json!({ "title": "x", "type": "task", "projectId": p.id })), &bot()).await,
        "projectId",
        "project_not_found",
    );
    expect_invalid(
        h.store.create_goal(input(json!({ "title": "x", "projectId": p.id }))).await,
        "projectId",
        "project_not_found",
    );
}

/// Goals: create with every field, read back, clear nullable fields with null, a project
/// reference must exist, list and soft delete.
pub async fn goal_crud(h: &Harness) {
    let project = ok(h.store.create_project(input(json!({ "name": "p" }))).await);
    expect_invalid(
        h.store.create_goal(input(json!({ "title": "g", "projectId": "no-such-project" }))).await,
        "projectId",
        "project_not_found",
    );
    assert_eq!(ok(h.store.list_goals(None, all()).await).total, 0, "a rejected create writes nothing");

    h.clock.advance_millis(1_000);
    let g = ok(h
        .store
        .create_goal(input(json!({
            "title": "adoption",
            "description": "more users",
            "metric": "weekly actives",
            "targetValue": 1000.0,
            "currentValue": 12.5,
            "unit": "users",
            "projectId": project.id,
        })))
        .await);
    assert_eq!(g.title, "adoption");
    assert_eq!(g.description.as_deref(), Some("more users"));
    assert_eq!(g.metric.as_deref(), Some("weekly actives"));
    assert_eq!((g.target_value, g.current_value), (Some(1000.0), Some(12.5)));
    assert_eq!(g.unit.as_deref(), Some("users"));
    assert_eq!(g.status, GoalStatus::Active, "status defaults to active");
    assert_eq!(g.project_id.as_deref(), Some(project.id.as_str()));
    assert_eq!((g.created_at, g.updated_at, g.deleted_at), (at(1_000), at(1_000), None));
    assert_eq!(ok(h.store.get_goal(&g.id).await), g);

    let bare = ok(h.store.create_goal(input(json!({ "title": "bare" }))).await);
    assert_eq!(
        (bare.description, bare.metric, bare.target_value, bare.current_value, bare.unit, bare.project_id),
        (None, None, None, None, None, None)
    );

    h.clock.advance_millis(1_000);
    let moved = ok(h.store.update_goal(&g.id, input(json!({ "currentValue": 500, "status": "achieved" }))).await);
    assert_eq!((moved.current_value, moved.status), (Some(500.0), GoalStatus::Achieved));
    assert_eq!(moved.target_value, Some(1000.0), "absent fields are left alone");
    assert_eq!((moved.created_at, moved.updated_at), (at(1_000), at(2_000)));

    expect_invalid(
        h.store.update_goal(&g.id, input(json!({ "projectId": "no-such-project" }))).await,
        "projectId",
        "project_not_found",
    );
    let clear_all: GoalPatch = input(json!({
        "description": null, "metric": null, "targetValue": null,
        "currentValue": null, "unit": null, "projectId": null,
    }));
    let cleared = ok(h.store.update_goal(&g.id, clear_all).await);
    assert_eq!(
        (
            &cleared.description,
            &cleared.metric,
            cleared.target_value,
            cleared.current_value,
            &cleared.unit,
            &cleared.project_id
        ),
        (&None, &None, None, None, &None, &None)
    );
    assert_eq!((cleared.title.as_str(), cleared.status), ("adoption", GoalStatus::Achieved));
    assert_eq!(ok(h.store.get_goal(&g.id).await), cleared, "the update is what is stored");

    let relinked =
        ok(h.store.update_goal(&g.id, input(json!({ "projectId": project.id, "title": "adoption 2" }))).await);
    assert_eq!(relinked.project_id.as_deref(), Some(project.id.as_str()));
    assert_eq!(relinked.title, "adoption 2");

    let listed = ok(h.store.list_goals(None, all()).await);
    assert_eq!(listed.total, 2);
    assert_eq!(listed.data.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), vec![g.id.as_str(), bare.id.as_str()]);
    let achieved = ok(h.store.list_goals(Some(GoalStatus::Achieved), all()).await);
    assert_eq!((achieved.total, achieved.data[0].id.as_str()), (1, g.id.as_str()), "a status filter");
    let active = ok(h.store.list_goals(Some(GoalStatus::Active), all()).await);
    assert_eq!((active.total, active.data[0].id.as_str()), (1, bare.id.as_str()));
    assert_eq!(ok(h.store.list_goals(Some(GoalStatus::Abandoned), all()).await).total, 0);
    let second = ok(h.store.list_goals(None, page(1, 1)).await);
    assert_eq!((second.total, second.data.len()), (2, 1));
    assert_eq!(second.data[0].id, bare.id);

    ok(h.store.delete_goal(&g.id).await);
    expect_not_found(h.store.get_goal(&g.id).await);
    expect_not_found(h.store.update_goal(&g.id, input(json!({ "title": "x" }))).await);
    expect_not_found(h.store.delete_goal(&g.id).await);
    assert_eq!(ok(h.store.list_goals(None, all()).await).total, 1);
    expect_invalid(
        h.store.create_project(input(json!({ "name": "x", "goalId": g.id }))).await,
        "goalId",
        "goal_not_found",
    );
}

/// A project's skills are versioned: new and changed files get a version, unchanged ones keep
/// theirs, missing ones are retired (and come back as their next version); prompts of the
/// project's issues carry the current ones.
pub async fn project_skills_are_versioned_and_reach_prompts(h: &Harness) {
    use loop_core::skill::SkillSync;
    let sync = |files: serde_json::Value| -> SkillSync { input(json!({ "files": files })) };
    let p = ok(h.store.create_project(input(json!({ "name": "web" }))).await);
    let first = ok(h
        .store
        .sync_skills(
            &p.id,
            sync(json!([
                { "name": "AGENTS.md", "content": "Run the tests." },
                { "name": ".loop/skills/style.md", "content": "Names say why." },
            ])),
        )
        .await);
    assert_eq!((first.added.len(), first.changed.len(), first.unchanged.len(), first.removed.len()), (2, 0, 0, 0));
    h.clock.advance_millis(1_000);
    let second =
        ok(h.store.sync_skills(&p.id, sync(json!([{ "name": "AGENTS.md", "content": "Run all the tests." }]))).await);
    assert_eq!(
        (second.changed, second.removed),
        (vec!["AGENTS.md".to_owned()], vec![".loop/skills/style.md".to_owned()])
    );
    let current = ok(h.store.project_skills(&p.id).await);
    assert_eq!(current.len(), 1);
    assert_eq!(
        (current[0].name.as_str(), current[0].content.as_str(), current[0].version),
        ("AGENTS.md", "Run all the tests.", 2)
    );
    let back = ok(h
        .store
        .sync_skills(
            &p.id,
            sync(json!([
                { "name": "AGENTS.md", "content": "Run all the tests." },
                { "name": ".loop/skills/style.md", "content": "Names say why." },
            ])),
        )
        .await);
    assert_eq!((back.added, back.unchanged), (vec![".loop/skills/style.md".to_owned()], vec!["AGENTS.md".to_owned()]));
    let style = ok(h.store.project_skills(&p.id).await).into_iter().find(|s| s.name.ends_with("style.md")).unwrap();
    assert_eq!(style.version, 3, "v1, retired as v2, back as v3");

    // The prompt inputs of the project's issues carry them; other issues have none.
    let issue = create_issue(h, json!({ "title": "in web", "type": "task", "projectId": p.id })).await;
    let inputs = ok(h.store.prompt_inputs(&issue.id).await);
    assert_eq!(
        inputs.skills.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        [".loop/skills/style.md", "AGENTS.md"]
    );
    let elsewhere = create_issue(h, json!({ "title": "nowhere", "type": "task" })).await;
    assert!(ok(h.store.prompt_inputs(&elsewhere.id).await).skills.is_empty());

    assert!(matches!(
        h.store.sync_skills("no-such-project", sync(json!([]))).await,
        Err(loop_core::Error::NotFound { .. })
    ));
    let twice = sync(json!([{ "name": "A.md", "content": "" }, { "name": "A.md", "content": "" }]));
    expect_invalid(h.store.sync_skills(&p.id, twice).await, "files[1].name", "duplicate");
}
