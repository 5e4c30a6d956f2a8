//! The storage conformance suite, run against a fresh SQLite file per case.

use std::sync::Arc;

use loop_store_sqlite::{SqliteConfig, SqliteStore};
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
