//! Refresh storms across OS processes against the official PDS (issue #9): 4 processes share
//! one store (PostgreSQL, then Redis, then one SQLite file) and make 250 concurrent calls each
//! on the same expired session. Exactly one `refresh_token` grant in total, no failed call, and
//! the session alive afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use atoauth_testkit::storm::cross_process_storm;

/// One storm at a time: three at once put 3,000 concurrent calls on the one PDS process of this
/// test binary, which then answers some after the client's 10 s timeout. That measures the
/// PDS's capacity, not the refresh coordination these tests are about.
static ONE_STORM_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn check(
    db: &str,
    prefix: &str,
    store: Arc<impl atoauth::store::SessionStore + atoauth::store::RefreshLock + 'static>,
    name: &str,
) {
    let _turn = ONE_STORM_AT_A_TIME.lock().await;
    let report = cross_process_storm(
        Path::new(env!("CARGO_BIN_EXE_storm-worker")),
        db,
        prefix,
        store.clone(),
        store,
        4,
        250,
    )
    .await;
    eprintln!("storm across 4 processes on {name}: {report:?}");
    assert_eq!(
        report.refresh_grants, 1,
        "{name}: exactly one refresh in total"
    );
    assert_eq!(report.failed, 0, "{name}: no call failed");
    assert!(report.survived, "{name}: the session survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_across_processes_on_postgres() {
    let db = atoauth_testkit::servers::postgres_database("storm");
    let store = Arc::new(atoauth_sqlx::PostgresStore::connect(&db).await.unwrap());
    check(&db, "", store, "PostgreSQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_across_processes_on_redis() {
    let db = atoauth_testkit::servers::redis_url();
    let prefix = format!("storm-{}:", std::process::id());
    let store = Arc::new(
        atoauth_redis::RedisStore::connect(&db, &prefix)
            .await
            .unwrap(),
    );
    check(&db, &prefix, store, "Redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_across_processes_on_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let store = Arc::new(atoauth_sqlx::SqliteStore::open(&path).await.unwrap());
    check(path.to_str().unwrap(), "", store, "SQLite").await;
}
