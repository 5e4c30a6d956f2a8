//! Prompt templates, their versions, and reviews of those versions.

use std::sync::Arc;

use loop_core::comment::AuthorType;
use loop_core::template::{PromptVersion, VersionStatus};
use serde_json::json;
use tokio::task::JoinSet;

use crate::Harness;
use crate::support::*;

async fn versions(h: &Harness, template_id: &str) -> Vec<PromptVersion> {
    let p = ok(h.store.list_versions(template_id, all()).await);
    assert_eq!(p.total as usize, p.data.len());
    p.data
}

fn statuses(vs: &[PromptVersion]) -> Vec<(i64, VersionStatus)> {
    vs.iter().map(|v| (v.version, v.status)).collect()
}

/// Slugs are unique among live templates; the first version becomes active by itself, later
/// ones are drafts unless created active; promoting retires the old active version; there is
/// always exactly one active version; versions list newest first.
pub async fn template_and_version_lifecycle(h: &Harness) {
    h.clock.advance_millis(1_000);
    let t = ok(h
        .store
        .create_template(input(json!({
            "slug": "task-execute",
            "name": "Execute a task",
            "description": "d",
            "conditions": { "type": "task", "labels": ["x"] },
            "specificity": 40,
        })))
        .await);
    assert_eq!(
        (t.slug.as_str(), t.name.as_str(), t.description.as_deref()),
        ("task-execute", "Execute a task", Some("d"))
    );
    assert_eq!(t.specificity.value(), 40);
    assert_eq!(serde_json::to_value(&t.conditions).unwrap(), json!({ "type": "task", "labels": ["x"] }));
    assert_eq!(t.active_version_id, None);
    assert_eq!((t.created_at, t.updated_at, t.deleted_at), (at(1_000), at(1_000), None));
    let d = ok(h.store.template_detail(&t.id).await);
    assert_eq!((d.template.clone(), d.active_version), (t.clone(), None));

    expect_conflict(
        h.store.create_template(input(json!({ "slug": "task-execute", "name": "again" }))).await,
        "template_slug_taken",
    );
    assert_eq!(ok(h.store.list_templates(all()).await).total, 1);

    h.clock.advance_millis(1_000);
    let v1 = ok(h.store.create_version(&t.id, input(json!({ "content": "one", "changelog": "first" })), &bot()).await);
    assert_eq!((v1.version, v1.status), (1, VersionStatus::Active), "the first version is active");
    assert_eq!((v1.content.as_str(), v1.changelog.as_deref()), ("one", Some("first")));
    assert_eq!((v1.author_type, v1.author_name.as_str()), (AuthorType::Agent, "bot-1"));
    assert_eq!((v1.template_id.as_str(), v1.usage_count, v1.created_at), (t.id.as_str(), 0, at(2_000)));
    let d = ok(h.store.template_detail(&t.id).await);
    assert_eq!(d.template.active_version_id.as_deref(), Some(v1.id.as_str()));
    assert_eq!(d.active_version.as_ref(), Some(&v1));

    h.clock.advance_millis(1_000);
    let v2 = ok(h
        .store
        .create_version(&t.id, input(json!({ "content": "two", "authorType": "human", "authorName": "Ann" })), &human())
        .await);
    assert_eq!((v2.version, v2.status), (2, VersionStatus::Draft), "later versions are drafts");
    assert_eq!((v2.author_type, v2.author_name.as_str()), (AuthorType::Human, "Ann"));
    let d = ok(h.store.template_detail(&t.id).await);
    assert_eq!(d.template.active_version_id.as_deref(), Some(v1.id.as_str()), "a draft does not take over");

    expect_invalid(
        h.store.create_version(&t.id, input(json!({ "content": "x", "status": "retired" })), &bot()).await,
        "status",
        "invalid_status",
    );

    h.clock.advance_millis(1_000);
    let v3 = ok(h.store.create_version(&t.id, input(json!({ "content": "three", "status": "active" })), &bot()).await);
    assert_eq!((v3.version, v3.status), (3, VersionStatus::Active));
    let vs = versions(h, &t.id).await;
    assert_eq!(
        statuses(&vs),
        vec![(3, VersionStatus::Active), (2, VersionStatus::Draft), (1, VersionStatus::Retired)],
        "newest first; creating an active version retires the old one"
    );
    let d = ok(h.store.template_detail(&t.id).await);
    assert_eq!(d.template.active_version_id.as_deref(), Some(v3.id.as_str()));
    assert_eq!(d.active_version.map(|v| v.id), Some(v3.id.clone()));

    let promoted = ok(h.store.promote_version(&t.id, &v2.id).await);
    assert_eq!((promoted.id.as_str(), promoted.status), (v2.id.as_str(), VersionStatus::Active));
    let vs = versions(h, &t.id).await;
    assert_eq!(
        statuses(&vs),
        vec![(3, VersionStatus::Retired), (2, VersionStatus::Active), (1, VersionStatus::Retired)]
    );
    let d = ok(h.store.template_detail(&t.id).await);
    assert_eq!(d.template.active_version_id.as_deref(), Some(v2.id.as_str()));
    assert_eq!(
        d.active_version.as_ref().map(|v| (v.id.as_str(), v.status)),
        Some((v2.id.as_str(), VersionStatus::Active))
    );

    expect_invalid(h.store.promote_version(&t.id, &v2.id).await, "versionId", "already_active");
    // A retired version can come back.
    ok(h.store.promote_version(&t.id, &v1.id).await);
    assert_eq!(
        statuses(&versions(h, &t.id).await),
        vec![(3, VersionStatus::Retired), (2, VersionStatus::Retired), (1, VersionStatus::Active)]
    );

    let page2 = ok(h.store.list_versions(&t.id, page(1, 1)).await);
    assert_eq!((page2.total, page2.data.iter().map(|v| v.version).collect::<Vec<_>>()), (3, vec![2]));

    // Versions belong to their template.
    let other = ok(h.store.create_template(input(json!({ "slug": "other", "name": "Other" }))).await);
    expect_not_found(h.store.promote_version(&other.id, &v2.id).await);
    expect_not_found(h.store.promote_version(&t.id, "no-such-version").await);
    expect_not_found(h.store.promote_version("no-such-template", &v2.id).await);
    expect_not_found(h.store.create_version("no-such-template", input(json!({ "content": "x" })), &bot()).await);
    assert!(versions(h, &other.id).await.is_empty());
    let o1 = ok(h.store.create_version(&other.id, input(json!({ "content": "o" })), &bot()).await);
    assert_eq!((o1.version, o1.status), (1, VersionStatus::Active), "numbering is per template");

    // Update, then soft delete and slug reuse.
    h.clock.advance_millis(1_000);
    let renamed = ok(h.store.update_template(&t.id, input(json!({ "name": "Renamed", "description": null }))).await);
    assert_eq!((renamed.name.as_str(), renamed.description.as_deref()), ("Renamed", None));
    assert_eq!(renamed.slug, "task-execute");
    assert_eq!(renamed.updated_at, now(h));
    assert_eq!(ok(h.store.template_detail(&t.id).await).template, renamed);

    let listed = ok(h.store.list_templates(all()).await);
    assert_eq!(listed.total, 2);
    assert_eq!(listed.data.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(), vec!["task-execute", "other"]);

    ok(h.store.delete_template(&t.id).await);
    expect_not_found(h.store.template_detail(&t.id).await);
    expect_not_found(h.store.delete_template(&t.id).await);
    expect_not_found(h.store.list_versions(&t.id, all()).await);
    expect_not_found(h.store.create_version(&t.id, input(json!({ "content": "x" })), &bot()).await);
    expect_not_found(h.store.update_template(&t.id, input(json!({ "name": "x" }))).await);
    assert_eq!(ok(h.store.list_templates(all()).await).total, 1);
    let again = ok(h.store.create_template(input(json!({ "slug": "task-execute", "name": "Fresh" }))).await);
    assert_ne!(again.id, t.id);
    assert_eq!(again.active_version_id, None);
    assert!(versions(h, &again.id).await.is_empty(), "a new template starts with no versions");
}

/// Twenty simultaneous new versions get the numbers 1 to 20, and exactly one of them is
/// active, the one the template points at.
pub async fn template_concurrent_versions(h: &Harness) {
    let t = ok(h.store.create_template(input(json!({ "slug": "busy", "name": "Busy" }))).await);
    let mut set = JoinSet::new();
    for n in 0..20 {
        let store = Arc::clone(&h.store);
        let id = t.id.clone();
        set.spawn(async move {
            let body = if n % 5 == 4 {
                json!({ "content": format!("v{n}"), "status": "active" })
            } else {
                json!({ "content": format!("v{n}") })
            };
            store.create_version(&id, input(body), &bot()).await
        });
    }
    while let Some(joined) = set.join_next().await {
        ok(joined.expect("task panicked"));
    }
    let vs = versions(h, &t.id).await;
    assert_eq!(vs.iter().map(|v| v.version).collect::<Vec<_>>(), (1..=20).rev().collect::<Vec<i64>>());
    let active: Vec<&PromptVersion> = vs.iter().filter(|v| v.status == VersionStatus::Active).collect();
    assert_eq!(active.len(), 1, "exactly one active version: {:?}", statuses(&vs));
    let d = ok(h.store.template_detail(&t.id).await);
    assert_eq!(d.template.active_version_id.as_deref(), Some(active[0].id.as_str()));
    assert_eq!(d.active_version.as_ref(), Some(active[0]));

    // Promotions racing each other still leave exactly one active version.
    let mut set = JoinSet::new();
    for v in vs.iter().filter(|v| v.status != VersionStatus::Active).take(6) {
        let store = Arc::clone(&h.store);
        let (tid, vid) = (t.id.clone(), v.id.clone());
        set.spawn(async move { store.promote_version(&tid, &vid).await });
    }
    while let Some(joined) = set.join_next().await {
        ok(joined.expect("task panicked"));
    }
    let vs = versions(h, &t.id).await;
    let active: Vec<&PromptVersion> = vs.iter().filter(|v| v.status == VersionStatus::Active).collect();
    assert_eq!(active.len(), 1, "exactly one active version: {:?}", statuses(&vs));
    let d = ok(h.store.template_detail(&t.id).await);
    assert_eq!(d.template.active_version_id.as_deref(), Some(active[0].id.as_str()));
}

/// A review needs an existing version (else NotFound) and a live issue (else Invalid
/// issueId); a template's reviews, across all its versions, list newest first.
pub async fn review_rules(h: &Harness) {
    let t = ok(h.store.create_template(input(json!({ "slug": "t", "name": "T" }))).await);
    let v1 = ok(h.store.create_version(&t.id, input(json!({ "content": "one" })), &bot()).await);
    let v2 = ok(h.store.create_version(&t.id, input(json!({ "content": "two" })), &bot()).await);
    let other = ok(h.store.create_template(input(json!({ "slug": "u", "name": "U" }))).await);
    let ov = ok(h.store.create_version(&other.id, input(json!({ "content": "other" })), &bot()).await);
    let issue = task(h, "reviewed").await;
    let review = |version: &str, issue: &str, score: i64| {
        input::<loop_core::template::NewReview>(json!({
            "versionId": version, "issueId": issue,
            "clarity": score, "completeness": score, "relevance": score,
        }))
    };

    expect_not_found(h.store.create_review(review("no-such-version", &issue.id, 3), &bot()).await);
    expect_invalid(
        h.store.create_review(review(&v1.id, "no-such-issue", 3), &bot()).await,
        "issueId",
        "issue_not_found",
    );
    assert_eq!(ok(h.store.list_reviews(&t.id, all()).await).total, 0, "rejected reviews write nothing");

    h.clock.advance_millis(1_000);
    let r1 = ok(h
        .store
        .create_review(
            input(json!({
                "versionId": v1.id, "issueId": issue.id, "clarity": 5, "completeness": 4, "relevance": 3,
                "feedback": "clear enough", "authorType": "human",
            })),
            &human(),
        )
        .await);
    assert_eq!((r1.version_id.as_str(), r1.issue_id.as_str()), (v1.id.as_str(), issue.id.as_str()));
    assert_eq!((r1.clarity.value(), r1.completeness.value(), r1.relevance.value()), (5, 4, 3));
    assert_eq!(
        (r1.feedback.as_deref(), r1.author_type, r1.created_at),
        (Some("clear enough"), AuthorType::Human, at(1_000))
    );
    h.clock.advance_millis(1_000);
    let r2 = ok(h.store.create_review(review(&v2.id, "1", 2), &bot()).await);
    assert_eq!(r2.issue_id, issue.id, "the issue may be named by number");
    assert_eq!((r2.author_type, r2.feedback.as_deref()), (AuthorType::Agent, None), "authorType defaults to agent");
    h.clock.advance_millis(1_000);
    let r3 = ok(h.store.create_review(review(&v1.id, &issue.id, 1), &bot()).await);
    h.clock.advance_millis(1_000);
    let r_other = ok(h.store.create_review(review(&ov.id, &issue.id, 4), &bot()).await);

    let listed = ok(h.store.list_reviews(&t.id, all()).await);
    assert_eq!(listed.total, 3);
    assert_eq!(listed.data, vec![r3.clone(), r2.clone(), r1.clone()], "newest first, across versions");
    let middle = ok(h.store.list_reviews(&t.id, page(1, 1)).await);
    assert_eq!((middle.total, middle.data), (3, vec![r2]));
    assert_eq!(ok(h.store.list_reviews(&other.id, all()).await).data, vec![r_other]);

    ok(h.store.delete_issue(&issue.id, &bot()).await);
    expect_invalid(h.store.create_review(review(&v1.id, &issue.id, 3), &bot()).await, "issueId", "issue_not_found");
}

/// Shipped templates: created once with their fixed ids; a template still running a shipped
/// text gets a newer shipped text as its next, active, version; one running a version someone
/// else wrote, or deleted, is left as it is.
pub async fn shipped_templates_are_seeded_and_upgraded(h: &Harness) {
    use loop_core::template::{Seeded, TemplateSeed};

    let seed = |id: &str, content: &str| TemplateSeed {
        id: id.into(),
        version_id: format!("{id}_v1"),
        slug: id.replace('_', "-"),
        name: id.into(),
        description: "shipped".into(),
        conditions: input(json!({})),
        specificity: input(json!(10)),
        content: content.into(),
    };
    assert_eq!(ok(h.store.seed_template(seed("tpl_a", "first text")).await), Seeded::Created);
    assert_eq!(ok(h.store.seed_template(seed("tpl_a", "first text")).await), Seeded::Kept);
    h.clock.advance_millis(1000);
    assert_eq!(ok(h.store.seed_template(seed("tpl_a", "second text")).await), Seeded::Updated);
    let vs = versions(h, "tpl_a").await;
    assert_eq!(statuses(&vs), vec![(2, VersionStatus::Active), (1, VersionStatus::Retired)]);
    assert_eq!(vs[0].content, "second text");
    assert_eq!(vs[0].author_name, "loop");
    let detail = ok(h.store.template_detail("tpl_a").await);
    assert_eq!(detail.active_version.map(|v| v.content), Some("second text".into()));
    assert_eq!(ok(h.store.seed_template(seed("tpl_a", "second text")).await), Seeded::Kept);

    // Someone's own version is never replaced.
    let own = input(json!({ "content": "my text", "status": "active" }));
    ok(h.store.create_version("tpl_a", own, &human()).await);
    assert_eq!(ok(h.store.seed_template(seed("tpl_a", "third text")).await), Seeded::Kept);
    assert_eq!(versions(h, "tpl_a").await[0].content, "my text");

    // A deleted template stays deleted.
    assert_eq!(ok(h.store.seed_template(seed("tpl_b", "text")).await), Seeded::Created);
    ok(h.store.delete_template("tpl_b").await);
    assert_eq!(ok(h.store.seed_template(seed("tpl_b", "newer text")).await), Seeded::Kept);
    expect_not_found(h.store.template_detail("tpl_b").await);
}
