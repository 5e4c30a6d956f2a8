//! Labels: names unique among live labels, soft delete, and what issues show.

use std::collections::BTreeSet;

use serde_json::json;

use crate::Harness;
use crate::support::*;

/// A live name is taken (on create and on rename); a deleted label frees its name, leaves
/// every issue detail, and cannot be deleted twice.
pub async fn label_crud(h: &Harness) {
    h.clock.advance_millis(1_000);
    let bug = ok(h.store.create_label(input(json!({ "name": "bug", "color": "#ff0000" }))).await);
    assert_eq!((bug.name.as_str(), bug.color.as_str()), ("bug", "#ff0000"));
    assert_eq!((bug.created_at, bug.deleted_at), (at(1_000), None));
    assert_eq!(ok(h.store.get_label(&bug.id).await), bug);

    expect_conflict(h.store.create_label(input(json!({ "name": "bug", "color": "blue" }))).await, "label_name_taken");
    let feature = ok(h.store.create_label(input(json!({ "name": "feature", "color": "green" }))).await);
    expect_conflict(h.store.update_label(&feature.id, input(json!({ "name": "bug" }))).await, "label_name_taken");
    assert_eq!(ok(h.store.get_label(&feature.id).await), feature, "a refused rename changes nothing");

    let recoloured = ok(h.store.update_label(&feature.id, input(json!({ "color": "teal" }))).await);
    assert_eq!((recoloured.name.as_str(), recoloured.color.as_str()), ("feature", "teal"));
    assert_eq!(ok(h.store.get_label(&feature.id).await), recoloured);
    // Renaming a label to its own name is no clash.
    ok(h.store.update_label(&feature.id, input(json!({ "name": "feature" }))).await);

    let listed = ok(h.store.list_labels(all()).await);
    assert_eq!(listed.total, 2);
    let names: BTreeSet<&str> = listed.data.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["bug", "feature"]));
    let one = ok(h.store.list_labels(page(1, 1)).await);
    assert_eq!((one.total, one.data.len()), (2, 1));

    let issue = create_issue(h, json!({ "title": "i", "type": "task", "labelIds": [bug.id, feature.id] })).await;
    let shown: Vec<(String, String)> = ok(h.store.issue_detail(&issue.id).await)
        .labels
        .into_iter()
        .filter(|l| l.id == feature.id)
        .map(|l| (l.name, l.color))
        .collect();
    assert_eq!(shown, vec![("feature".to_owned(), "teal".to_owned())], "issue details show current colours");

    ok(h.store.delete_label(&bug.id).await);
    expect_not_found(h.store.get_label(&bug.id).await);
    expect_not_found(h.store.delete_label(&bug.id).await);
    expect_not_found(h.store.update_label(&bug.id, input(json!({ "color": "red" }))).await);
    assert_eq!(ok(h.store.list_labels(all()).await).total, 1);
    let labels: Vec<String> = ok(h.store.issue_detail(&issue.id).await).labels.into_iter().map(|l| l.id).collect();
    assert_eq!(labels, vec![feature.id.clone()], "a deleted label leaves issue details");

    let reborn = ok(h.store.create_label(input(json!({ "name": "bug", "color": "#00ff00" }))).await);
    assert_ne!(reborn.id, bug.id);
    assert_eq!(ok(h.store.get_label(&reborn.id).await), reborn);
    let labels: Vec<String> = ok(h.store.issue_detail(&issue.id).await).labels.into_iter().map(|l| l.id).collect();
    assert_eq!(labels, vec![feature.id.clone()], "the new label is a different label");
    ok(h.store.update_label(&feature.id, input(json!({ "name": "was-feature" }))).await);
    let taken_back = ok(h.store.create_label(input(json!({ "name": "feature", "color": "x" }))).await);
    assert_eq!(taken_back.name, "feature", "a renamed label frees its old name");
}
