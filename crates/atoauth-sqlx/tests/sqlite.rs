//! The store conformance suite on a real SQLite file, plus what only a file can show: mode
//! 0600, sessions surviving a reopen, and several processes' worth of pools on one file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth::store::SessionStore;
use atoauth_sqlx::{SqliteStore, SqlxStoreError};
use atoauth_testkit::conformance::{
    Abandoned, browser_store_contract, lock_contract, replay_store_contract, sample_session,
    session_store_contract, state_store_contract,
};

#[tokio::test]
async fn sqlite_meets_the_store_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("a.db")).await.unwrap());
    state_store_contract(store.clone()).await;
    browser_store_contract(store.clone()).await;
    replay_store_contract(store.clone()).await;
    session_store_contract(store).await;
}

#[tokio::test]
async fn the_sqlite_file_lock_meets_the_lock_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("lock.db"))
        .await
        .unwrap();
    lock_contract(Arc::new(store), Abandoned::WithProcess).await;
    // Two stores on one file are two openers: they exclude each other too.
    let path = dir.path().join("two.db");
    let (a, b) = (
        SqliteStore::open(&path).await.unwrap(),
        SqliteStore::open(&path)
            .await
            .unwrap()
            .with_lock_timeout(std::time::Duration::from_millis(200)),
    );
    let held = atoauth::store::RefreshLock::lock(&a, "k").await.unwrap();
    assert!(atoauth::store::RefreshLock::lock(&b, "k").await.is_err());
    held.release().await;
    atoauth::store::RefreshLock::lock(&b, "k").await.unwrap();
}

#[tokio::test]
async fn an_in_memory_sqlite_store_uses_lease_rows_that_meet_the_lock_contract() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let lease = std::time::Duration::from_millis(400);
    let store = SqliteStore::from_pool(pool, "")
        .await
        .unwrap()
        .with_lock_lease(lease);
    lock_contract(Arc::new(store), Abandoned::LeaseExpires(lease)).await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_file_is_private_even_if_it_existed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/sessions.db");
    SqliteStore::open(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let loose = dir.path().join("loose.db");
    std::fs::write(&loose, b"").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    SqliteStore::open(&loose).await.unwrap();
    assert_eq!(
        std::fs::metadata(&loose).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn sessions_survive_a_reopen_and_two_stores_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let session = sample_session("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "s1");
    {
        let first = SqliteStore::open(&path).await.unwrap();
        first.upsert(&session).await.unwrap();
        first.pool().close().await;
    }
    let (a, b) = tokio::join!(SqliteStore::open(&path), SqliteStore::open(&path));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        b.get(&session.did, &session.session_id).await.unwrap(),
        Some(session.clone())
    );
    assert!(a.delete(&session.did, &session.session_id).await.unwrap());
    assert_eq!(
        b.get(&session.did, &session.session_id).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn table_prefixes_are_checked_and_isolate_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
    let error = SqliteStore::from_pool(store.pool().clone(), "bad; DROP")
        .await
        .unwrap_err();
    assert!(matches!(error, SqlxStoreError::InvalidPrefix(_)), "{error}");
    let other = SqliteStore::from_pool(store.pool().clone(), "app2_")
        .await
        .unwrap();
    store
        .upsert(&sample_session("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "x"))
        .await
        .unwrap();
    assert!(other.list_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_corrupt_row_is_a_typed_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("c.db")).await.unwrap();
    sqlx_insert_garbage(&store).await;
    let error = store.list_all().await.unwrap_err();
    assert!(
        matches!(error, atoauth::store::StoreError::Corrupt(_)),
        "{error}"
    );
}

async fn sqlx_insert_garbage(store: &SqliteStore) {
    atoauth_sqlx::sqlx::query(
        "INSERT INTO oauth_sessions (did, session_id, value, updated_at) VALUES ('did:plc:x', 'y', '{not json', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn expiry_cleanup_uses_an_index_not_a_table_scan() {
    // #15 finding 4: each browser-session insert ran a cleanup that scanned the whole table.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("plan.db"))
        .await
        .unwrap();
    for table in ["oauth_browser_sessions", "oauth_states"] {
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN DELETE FROM {table} WHERE expires_at <= 1"
        )))
        .fetch_all(store.pool())
        .await
        .unwrap();
        let detail: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert!(
            detail
                .iter()
                .any(|d| d.contains("USING") && d.contains("INDEX")),
            "{table}: {detail:?}"
        );
    }
}
