//! Relations: validity, the direction-free duplicate rule, and where they show.

use loop_core::relation::{NewRelation, RelationType};
use serde_json::json;

use crate::Harness;
use crate::support::*;

fn rel(kind: &str, related: &str) -> NewRelation {
    input(json!({ "type": kind, "relatedIssueId": related }))
}

async fn relation_ids(h: &Harness, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = ok(h.store.issue_detail(key).await).relations.into_iter().map(|r| r.id).collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// No self relations, the related issue must exist, one relation per edge (`A blocks B` is
/// `B blocked_by A`; `related` is symmetric; `duplicate` is directed); both ends list it;
/// deleting it twice is NotFound.
pub async fn relation_rules(h: &Harness) {
    let a = task(h, "a").await;
    let b = task(h, "b").await;
    let c = task(h, "c").await;

    expect_invalid(
        h.store.create_relation(&a.id, rel("blocks", &a.id), &bot()).await,
        "relatedIssueId",
        "self_relation",
    );
    expect_invalid(
        h.store.create_relation(&a.id, rel("related", "1"), &bot()).await,
        "relatedIssueId",
        "self_relation",
    );
    expect_invalid(
        h.store.create_relation(&a.id, rel("blocks", "no-such-issue"), &bot()).await,
        "relatedIssueId",
        "related_issue_not_found",
    );
    expect_not_found(h.store.create_relation("no-such-issue", rel("blocks", &a.id), &bot()).await);

    h.clock.advance_millis(1_000);
    let blocks = ok(h.store.create_relation(&a.id, rel("blocks", &b.id), &bot()).await);
    assert_eq!(blocks.relation_type, RelationType::Blocks);
    assert_eq!(blocks.issue_id, a.id);
    assert_eq!(blocks.related_issue_id, b.id);
    assert_eq!(blocks.created_at, at(1_000));

    expect_conflict(h.store.create_relation(&a.id, rel("blocks", &b.id), &bot()).await, "duplicate_relation");
    expect_conflict(h.store.create_relation(&b.id, rel("blocked_by", &a.id), &bot()).await, "duplicate_relation");
    // The related issue may be named by number, and still is the same edge.
    expect_conflict(h.store.create_relation("1", rel("blocks", "2"), &bot()).await, "duplicate_relation");

    let related = ok(h.store.create_relation(&a.id, rel("related", &c.id), &bot()).await);
    expect_conflict(h.store.create_relation(&c.id, rel("related", &a.id), &bot()).await, "duplicate_relation");
    expect_conflict(h.store.create_relation(&a.id, rel("related", &c.id), &bot()).await, "duplicate_relation");

    // Different kinds of edge between the same issues coexist; `duplicate` keeps its direction.
    let dup_ab = ok(h.store.create_relation(&a.id, rel("duplicate", &b.id), &bot()).await);
    let dup_ba = ok(h.store.create_relation(&b.id, rel("duplicate", &a.id), &bot()).await);
    expect_conflict(h.store.create_relation(&a.id, rel("duplicate", &b.id), &bot()).await, "duplicate_relation");

    // By number on both sides, resolved to ids.
    let by_number = ok(h.store.create_relation("3", rel("blocked_by", "2"), &bot()).await);
    assert_eq!(by_number.issue_id, c.id);
    assert_eq!(by_number.related_issue_id, b.id);
    assert_eq!(by_number.relation_type, RelationType::BlockedBy);

    // Both ends list every relation they take part in, outgoing and incoming.
    assert_eq!(relation_ids(h, &a.id).await, sorted(&[&blocks.id, &related.id, &dup_ab.id, &dup_ba.id]));
    assert_eq!(relation_ids(h, &b.id).await, sorted(&[&blocks.id, &dup_ab.id, &dup_ba.id, &by_number.id]));
    assert_eq!(relation_ids(h, &c.id).await, sorted(&[&related.id, &by_number.id]));
    let a_detail = ok(h.store.issue_detail(&a.id).await);
    let listed = a_detail.relations.iter().find(|r| r.id == blocks.id).unwrap();
    assert_eq!(listed, &blocks, "the detail shows the relation as created");

    ok(h.store.delete_relation(&blocks.id, &human()).await);
    assert_eq!(relation_ids(h, &a.id).await, sorted(&[&related.id, &dup_ab.id, &dup_ba.id]));
    assert_eq!(relation_ids(h, &b.id).await, sorted(&[&dup_ab.id, &dup_ba.id, &by_number.id]));
    expect_not_found(h.store.delete_relation(&blocks.id, &human()).await);
    expect_not_found(h.store.delete_relation("no-such-relation", &human()).await);

    // The edge is free again, from either end.
    let again = ok(h.store.create_relation(&b.id, rel("blocked_by", &a.id), &bot()).await);
    assert_ne!(again.id, blocks.id);
    assert!(relation_ids(h, &a.id).await.contains(&again.id));
}

/// A block that would close a loop (`a` blocks `b` blocks … blocks `a`) is refused: every
/// issue in it would wait for ever. Other relations may go in circles.
pub async fn blocking_loops_are_refused(h: &Harness) {
    let a = task(h, "a").await;
    let b = task(h, "b").await;
    let c = task(h, "c").await;
    ok(h.store.create_relation(&a.id, rel("blocks", &b.id), &bot()).await);
    let message = expect_invalid(
        h.store.create_relation(&b.id, rel("blocks", &a.id), &bot()).await,
        "relatedIssueId",
        "blocking_cycle",
    );
    assert!(message.contains(&format!("#{} already waits for #{}", b.number, a.number)), "{message}");
    expect_invalid(
        h.store.create_relation(&a.id, rel("blocked_by", &b.id), &bot()).await,
        "relatedIssueId",
        "blocking_cycle",
    );
    ok(h.store.create_relation(&b.id, rel("blocks", &c.id), &bot()).await);
    expect_invalid(
        h.store.create_relation(&c.id, rel("blocks", &a.id), &bot()).await,
        "relatedIssueId",
        "blocking_cycle",
    );
    ok(h.store.create_relation(&a.id, rel("blocks", &c.id), &bot()).await);
    ok(h.store.create_relation(&c.id, rel("related", &a.id), &bot()).await);
    ok(h.store.create_relation(&c.id, rel("duplicate", &a.id), &bot()).await);
    assert_eq!(relation_ids(h, &c.id).await.len(), 4, "b and a block it; related; duplicate");
}

/// Four blocks that would close a loop, added at the same moment by different requests: at
/// most three of them are accepted, whatever the timing. (Four, because blocks on opposite
/// sides of the ring share no issue, so locking the two ends of each does not order them.)
pub async fn concurrent_blocks_never_close_a_loop(h: &Harness) {
    const RING: usize = 4;
    for round in 0..20 {
        let mut ring = Vec::new();
        for n in 0..RING {
            ring.push(task(h, &format!("ring {round}.{n}")).await);
        }
        let mut set = tokio::task::JoinSet::new();
        for n in 0..RING {
            let store = std::sync::Arc::clone(&h.store);
            let (from, to) = (ring[n].id.clone(), ring[(n + 1) % RING].id.clone());
            set.spawn(async move { store.create_relation(&from, rel("blocks", &to), &bot()).await });
        }
        let mut accepted = 0;
        while let Some(joined) = set.join_next().await {
            match joined.expect("task panicked") {
                Ok(_) => accepted += 1,
                Err(loop_core::Error::Invalid { code: "blocking_cycle", .. } | loop_core::Error::Busy(_)) => {}
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert!(accepted < RING, "round {round}: every block was accepted, a loop nothing can ever leave");
    }
}

/// The same when the new blocks join existing chains: a ring of six with every other block
/// already there, and the other three added at once, each linking the end of one chain to the
/// start of the next.
pub async fn concurrent_blocks_joining_chains_never_close_a_loop(h: &Harness) {
    const RING: usize = 6;
    for round in 0..15 {
        let mut ring = Vec::new();
        for n in 0..RING {
            ring.push(task(h, &format!("chain {round}.{n}")).await);
        }
        let edge = |n: usize| (ring[n].id.clone(), ring[(n + 1) % RING].id.clone());
        for n in (0..RING).step_by(2) {
            let (from, to) = edge(n);
            ok(h.store.create_relation(&from, rel("blocks", &to), &bot()).await);
        }
        let mut set = tokio::task::JoinSet::new();
        for n in (1..RING).step_by(2) {
            let store = std::sync::Arc::clone(&h.store);
            let (from, to) = edge(n);
            set.spawn(async move { store.create_relation(&from, rel("blocks", &to), &bot()).await });
        }
        let mut accepted = 0;
        while let Some(joined) = set.join_next().await {
            match joined.expect("task panicked") {
                Ok(_) => accepted += 1,
                Err(loop_core::Error::Invalid { code: "blocking_cycle", .. }) => {}
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert_eq!(accepted, RING / 2 - 1, "round {round}: all but the block that would close the ring");
    }
}
