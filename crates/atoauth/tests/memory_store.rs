//! The store conformance suite on the in-memory stores.

use std::sync::Arc;

use atoauth::store::{MemoryBrowserStore, MemorySessionStore, MemoryStateStore};
use atoauth_testkit::conformance::{
    browser_store_contract, replay_store_contract, session_store_contract, state_store_contract,
};

#[tokio::test]
async fn memory_state_store_meets_the_contract() {
    state_store_contract(Arc::new(MemoryStateStore::default())).await;
}

#[tokio::test]
async fn memory_replay_store_meets_the_contract() {
    replay_store_contract(Arc::new(atoauth::store::MemoryReplayStore::default())).await;
}

#[tokio::test]
async fn memory_session_store_meets_the_contract() {
    session_store_contract(Arc::new(MemorySessionStore::default())).await;
}

#[tokio::test]
async fn memory_browser_store_meets_the_contract() {
    browser_store_contract(Arc::new(MemoryBrowserStore::default())).await;
}
