//! The storage conformance suite against PostgreSQL: a fresh database per case, on the server
//! `LOOP_TEST_POSTGRES_URL` names or on a throwaway one (see `loop_store::postgres::testing`).

use std::sync::Arc;

use loop_store::postgres::{PgConfig, PgStore, testing};
use loop_store_tests::Harness;

async fn postgres() -> Harness {
    let database = testing::database().await;
    let clock = loop_store_tests::manual_clock();
    let store = PgStore::open(PgConfig::new(&database.url), clock.clone()).await.expect("open PostgreSQL store");
    Harness::new(Arc::new(store), clock, database)
}

loop_store_tests::conformance_suite!(postgres);

/// Several nodes starting at once on an empty database: migrations run once, and every node
/// comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let database = testing::database().await;
    let mut nodes = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = database.url.clone();
        nodes.spawn(async move { PgStore::open(PgConfig::new(url), loop_store_tests::manual_clock()).await });
    }
    while let Some(node) = nodes.join_next().await {
        node.expect("node task").expect("node opened");
    }
    let store = PgStore::open(PgConfig::new(&database.url), loop_store_tests::manual_clock()).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0, "nothing left to apply");
}
