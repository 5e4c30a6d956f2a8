//! Rules shared by every PATCH: an empty patch is rejected, an unknown id is NotFound.

use loop_core::goal::GoalPatch;
use loop_core::issue::IssuePatch;
use loop_core::label::LabelPatch;
use loop_core::project::ProjectPatch;
use loop_core::template::TemplatePatch;
use serde_json::json;

use crate::Harness;
use crate::support::*;

/// An empty patch is `Invalid { field: "body", code: "empty_patch" }` and changes nothing; a
/// patch, get or delete of an unknown id is NotFound. For issues, projects, goals, labels and
/// templates alike.
pub async fn empty_patch_and_unknown_ids(h: &Harness) {
    let issue = task(h, "i").await;
    let project = ok(h.store.create_project(input(json!({ "name": "p" }))).await);
    let goal = ok(h.store.create_goal(input(json!({ "title": "g" }))).await);
    let lbl = label(h, "l").await;
    let template = ok(h.store.create_template(input(json!({ "slug": "t", "name": "t" }))).await);
    h.clock.advance_millis(1_000);

    expect_invalid(h.store.update_issue(&issue.id, IssuePatch::default(), &bot()).await, "body", "empty_patch");
    expect_invalid(h.store.update_project(&project.id, ProjectPatch::default()).await, "body", "empty_patch");
    expect_invalid(h.store.update_goal(&goal.id, GoalPatch::default()).await, "body", "empty_patch");
    expect_invalid(h.store.update_label(&lbl.id, LabelPatch::default()).await, "body", "empty_patch");
    expect_invalid(h.store.update_template(&template.id, TemplatePatch::default()).await, "body", "empty_patch");

    // Nothing was touched, not even updatedAt, and no history was written.
    assert_eq!(ok(h.store.get_issue(&issue.id).await), issue);
    assert_eq!(ok(h.store.issue_events(&issue.id, all()).await).total, 1, "only the created event");
    assert_eq!(ok(h.store.project_detail(&project.id).await).project, project);
    assert_eq!(ok(h.store.get_goal(&goal.id).await), goal);
    assert_eq!(ok(h.store.get_label(&lbl.id).await), lbl);
    assert_eq!(ok(h.store.template_detail(&template.id).await).template, template);

    let missing = "no-such-id";
    expect_not_found(h.store.update_issue(missing, input(json!({ "title": "x" })), &bot()).await);
    expect_not_found(h.store.update_issue("999", input(json!({ "title": "x" })), &bot()).await);
    expect_not_found(h.store.update_project(missing, input(json!({ "name": "x" }))).await);
    expect_not_found(h.store.update_goal(missing, input(json!({ "title": "x" }))).await);
    expect_not_found(h.store.update_label(missing, input(json!({ "name": "x" }))).await);
    expect_not_found(h.store.update_template(missing, input(json!({ "name": "x" }))).await);

    expect_not_found(h.store.get_issue(missing).await);
    expect_not_found(h.store.project_detail(missing).await);
    expect_not_found(h.store.get_goal(missing).await);
    expect_not_found(h.store.get_label(missing).await);
    expect_not_found(h.store.template_detail(missing).await);

    expect_not_found(h.store.delete_issue(missing, &bot()).await);
    expect_not_found(h.store.delete_project(missing).await);
    expect_not_found(h.store.delete_goal(missing).await);
    expect_not_found(h.store.delete_label(missing).await);
    expect_not_found(h.store.delete_template(missing).await);

    expect_not_found(h.store.issue_events(missing, all()).await);
    expect_not_found(h.store.list_comments(missing).await);
    expect_not_found(h.store.list_versions(missing, all()).await);
    expect_not_found(h.store.list_reviews(missing, all()).await);
    expect_not_found(h.store.delete_relation(missing, &bot()).await);
}
