//! Single-use marks: a DPoP proof's `jti` seen by a client-assertion backend (U3) must not be
//! accepted twice, by this process or by another sharing the store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::StoreError;
use crate::platform::{MaybeSend, MaybeSync};
use crate::time::Instant;

/// Remembers keys for a while.
///
/// # Contract
/// `first_use` is atomic across every process sharing the store: of two calls with the same
/// key within `ttl`, exactly one gets `true`. Expired marks may be dropped at any time.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait ReplayStore: MaybeSend + MaybeSync + std::fmt::Debug {
    /// Marks `key` for `ttl`: `true` the first time, `false` while the mark lasts.
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
}

/// Marks in this process's memory: for one instance, and for tests.
#[derive(Debug, Default)]
pub struct MemoryReplayStore {
    marks: Mutex<HashMap<String, Instant>>,
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl ReplayStore for MemoryReplayStore {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut marks = self
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        marks.retain(|_, until| *until > now);
        if marks.contains_key(key) {
            return Ok(false);
        }
        marks.insert(key.to_owned(), now + ttl);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mark_is_single_use_until_it_expires() {
        let store = MemoryReplayStore::default();
        assert!(
            store
                .first_use("a", Duration::from_millis(50))
                .await
                .unwrap()
        );
        assert!(
            !store
                .first_use("a", Duration::from_millis(50))
                .await
                .unwrap()
        );
        assert!(
            store
                .first_use("b", Duration::from_millis(50))
                .await
                .unwrap()
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            store
                .first_use("a", Duration::from_millis(50))
                .await
                .unwrap()
        );
    }
}
