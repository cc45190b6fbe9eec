//! The store conformance suite and the lock contract on a real PostgreSQL server (Debian's
//! `postgresql`, started by the testkit on 127.0.0.1 with a throwaway data directory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth_sqlx::{PostgresStore, SqlxStoreError};
use atoauth_testkit::conformance::{
    Abandoned, browser_store_contract, lock_contract, replay_store_contract,
    session_store_contract, state_store_contract,
};
use atoauth_testkit::servers::postgres_database;

#[tokio::test]
async fn postgres_meets_the_store_contracts_and_the_lock_contract() {
    let store = Arc::new(
        PostgresStore::connect(&postgres_database("contracts"))
            .await
            .unwrap(),
    );
    state_store_contract(store.clone()).await;
    browser_store_contract(store.clone()).await;
    replay_store_contract(store.clone()).await;
    session_store_contract(store.clone()).await;
    lock_contract(store, Abandoned::WithConnection).await;
}

#[tokio::test]
async fn concurrent_migrations_and_prefixes() {
    let url = postgres_database("migrations");
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(&url),
        PostgresStore::connect(&url),
        PostgresStore::connect(&url)
    );
    let store = a.unwrap();
    b.unwrap();
    c.unwrap();
    let error = PostgresStore::from_pool(store.pool().clone(), "x; DROP TABLE y")
        .await
        .unwrap_err();
    assert!(matches!(error, SqlxStoreError::InvalidPrefix(_)), "{error}");
    let other = PostgresStore::from_pool(store.pool().clone(), "other_")
        .await
        .unwrap();
    use atoauth::store::SessionStore;
    store
        .upsert(&atoauth_testkit::conformance::sample_session(
            "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
            "p",
        ))
        .await
        .unwrap();
    assert!(other.list_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn expiry_cleanup_has_an_index() {
    // #15 finding 4: each browser-session insert ran a cleanup that scanned the whole table.
    let store = PostgresStore::connect(&postgres_database("indexes"))
        .await
        .unwrap();
    for table in ["oauth_browser_sessions", "oauth_states"] {
        let definitions: Vec<String> =
            sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE tablename = $1")
                .bind(table)
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert!(
            definitions.iter().any(|d| d.contains("(expires_at)")),
            "{table}: {definitions:?}"
        );
    }
}
