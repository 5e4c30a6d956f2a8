//! Comments: threads of any depth, authors, and parents from the same issue only.

use loop_core::comment::{AuthorType, ThreadedComment};
use serde_json::json;

use crate::Harness;
use crate::support::*;

fn ids(thread: &[ThreadedComment]) -> Vec<&str> {
    thread.iter().map(|t| t.comment.id.as_str()).collect()
}

/// Replies to replies are kept in the tree; roots and replies come oldest first; the author
/// defaults from the caller (type agent); a parent comment must belong to the same issue.
pub async fn comment_threads(h: &Harness) {
    let x = task(h, "x").await;
    let y = task(h, "y").await;
    assert!(ok(h.store.list_comments(&x.id).await).is_empty());

    h.clock.advance_millis(1_000);
    let c1 = ok(h.store.create_comment(&x.id, input(json!({ "body": "root" })), &bot()).await);
    assert_eq!(c1.body, "root");
    assert_eq!(c1.issue_id, x.id);
    assert_eq!(c1.parent_id, None);
    assert_eq!(c1.author_type, AuthorType::Agent, "authorType defaults to agent");
    assert_eq!(c1.author_name, "bot-1", "an agent's comment is signed with its name");
    assert_eq!(c1.created_at, at(1_000));

    h.clock.advance_millis(1_000);
    let c2 = ok(h.store.create_comment(&x.id, input(json!({ "body": "reply", "parentId": c1.id })), &bot()).await);
    assert_eq!(c2.parent_id.as_deref(), Some(c1.id.as_str()));
    h.clock.advance_millis(1_000);
    let c3 = ok(h
        .store
        .create_comment(&x.id, input(json!({ "body": "reply to reply", "parentId": c2.id })), &human())
        .await);
    h.clock.advance_millis(1_000);
    let c4 = ok(h
        .store
        .create_comment(
            "1",
            input(json!({ "body": "second root", "authorType": "human", "authorName": "Ann" })),
            &human(),
        )
        .await);
    assert_eq!((c4.author_name.as_str(), c4.author_type), ("Ann", AuthorType::Human));
    assert_eq!(c4.issue_id, x.id, "the issue may be named by number");
    h.clock.advance_millis(1_000);
    let c5 = ok(h
        .store
        .create_comment(
            &x.id,
            input(json!({ "body": "second reply", "parentId": c1.id, "authorType": "human" })),
            &human(),
        )
        .await);
    assert_eq!((c5.author_name.as_str(), c5.author_type), ("human", AuthorType::Human));

    let tree = ok(h.store.list_comments(&x.id).await);
    assert_eq!(ids(&tree), vec![c1.id.as_str(), c4.id.as_str()]);
    assert_eq!(tree[0].comment, c1, "comments read back as created");
    assert_eq!(ids(&tree[0].replies), vec![c2.id.as_str(), c5.id.as_str()]);
    assert_eq!(ids(&tree[0].replies[0].replies), vec![c3.id.as_str()], "third level kept");
    assert_eq!(tree[0].replies[0].replies[0].comment, c3);
    assert!(tree[0].replies[0].replies[0].replies.is_empty());
    assert!(tree[0].replies[1].replies.is_empty());
    assert!(tree[1].replies.is_empty());
    assert_eq!(ok(h.store.list_comments("1").await), tree);

    // A parent from another issue, or no comment at all, is refused.
    expect_invalid(
        h.store.create_comment(&y.id, input(json!({ "body": "stray", "parentId": c1.id })), &bot()).await,
        "parentId",
        "parent_comment_not_found",
    );
    expect_invalid(
        h.store.create_comment(&y.id, input(json!({ "body": "stray", "parentId": "no-such-comment" })), &bot()).await,
        "parentId",
        "parent_comment_not_found",
    );
    assert!(ok(h.store.list_comments(&y.id).await).is_empty(), "a refused comment is not written");
    expect_not_found(h.store.create_comment("no-such-issue", input(json!({ "body": "b" })), &bot()).await);
    expect_not_found(h.store.list_comments("no-such-issue").await);
}
