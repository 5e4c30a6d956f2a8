//! The storage conformance suite, run against a fresh SQLite file per case.

use std::sync::Arc;

use loop_store::sqlite::{SqliteConfig, SqliteStore};
use loop_store_tests::Harness;

async fn sqlite() -> Harness {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let clock = loop_store_tests::manual_clock();
    let path = dir.path().join("loop.db");
    let store =
        SqliteStore::open(SqliteConfig::new(path.to_string_lossy()), clock.clone()).await.expect("open SQLite store");
    Harness::new(Arc::new(store), clock, dir)
}

loop_store_tests::conformance_suite!(sqlite);

/// The claim engine opens the database a second time, so an in-memory database (one per
/// connection) is refused with a message that says what to do.
#[tokio::test]
async fn an_in_memory_database_is_refused() {
    for location in ["sqlite::memory:", "sqlite://loop.db?mode=memory", ":memory:"] {
        let err = SqliteStore::open(SqliteConfig::new(location), loop_store_tests::manual_clock())
            .await
            .err()
            .unwrap_or_else(|| panic!("{location} was accepted"));
        assert!(err.to_string().contains("give a file path"), "{location}: {err}");
    }
}
