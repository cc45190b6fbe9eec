//! The store conformance suite and the lock contract on a real Redis server (Debian's
//! `redis-server`, started by the testkit on 127.0.0.1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use atoauth_redis::{RedisStore, RedisStoreError};
use atoauth_testkit::conformance::{
    Abandoned, browser_store_contract, lock_contract, replay_store_contract,
    session_store_contract, state_store_contract,
};
use atoauth_testkit::servers::redis_url;

fn prefix(name: &str) -> String {
    format!("test-{name}-{}:", std::process::id())
}

#[tokio::test]
async fn redis_meets_the_store_contracts() {
    let store = Arc::new(
        RedisStore::connect(&redis_url(), &prefix("stores"))
            .await
            .unwrap(),
    );
    state_store_contract(store.clone()).await;
    browser_store_contract(store.clone()).await;
    replay_store_contract(store.clone()).await;
    session_store_contract(store).await;
}

#[tokio::test]
async fn the_redis_lock_meets_the_lock_contract() {
    let lease = Duration::from_millis(400);
    let store = RedisStore::connect(&redis_url(), &prefix("lock"))
        .await
        .unwrap()
        .with_lock_lease(lease);
    lock_contract(Arc::new(store), Abandoned::LeaseExpires(lease)).await;
}

#[tokio::test]
async fn prefixes_are_checked() {
    let error = RedisStore::connect(&redis_url(), "has space")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RedisStoreError::InvalidPrefix(_)),
        "{error}"
    );
}
