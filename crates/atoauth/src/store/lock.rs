//! Refresh locks (N4): one refresh at a time per session. The in-process lock serialises the
//! tasks of one process; shared stores implement [`RefreshLock`] so that processes on several
//! hosts serialise too. The client always takes its in-process lock first, then this one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::StoreError;
use crate::platform::{MaybeSend, MaybeSync};

/// Held while a session refreshes. The client calls [`RefreshGuard::release`] when done;
/// dropping an unreleased guard must release it too (best effort, e.g. on a spawned task).
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait RefreshGuard: MaybeSend {
    /// Releases the lock now, waiting for a remote release to complete. The default drops it.
    async fn release(self: Box<Self>) {}
}

impl RefreshGuard for tokio::sync::OwnedMutexGuard<()> {}

/// A lock keyed by session.
///
/// # Contract
/// - Mutual exclusion: while a guard for `key` is alive, `lock(key)` does not return another.
/// - A distributed lock has a lease longer than the token endpoint's timeout, so a holder that
///   dies cannot block a session for ever, and a live holder is not overtaken mid-refresh.
/// - Only the owner releases (by dropping its guard).
/// - After acquiring, the caller re-reads the session from the store: another holder may have
///   refreshed it (N4b).
///
/// # Examples
/// The client takes it around every refresh; an app that changes a session's record by itself
/// (an admin tool) takes it the same way:
///
/// ```
/// use atoauth::store::{MemoryRefreshLock, RefreshLock};
///
/// # async fn demo() -> Result<(), atoauth::store::StoreError> {
/// let lock = MemoryRefreshLock::default();
/// let guard = lock.lock("did:plc:abc/session-1").await?;
/// // … read the session again, change it, write it back …
/// guard.release().await;
/// # Ok(()) }
/// ```
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait RefreshLock: MaybeSend + MaybeSync + std::fmt::Debug {
    /// Waits for the lock on `key` (bounded by the implementation's own timeout).
    async fn lock(&self, key: &str) -> Result<Box<dyn RefreshGuard>, StoreError>;
}

/// The in-process lock: a tokio mutex per key; unused entries are dropped as keys come and go.
#[derive(Debug, Default)]
pub struct MemoryRefreshLock {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl MemoryRefreshLock {
    fn entry(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(locks.entry(key.to_owned()).or_default())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl RefreshLock for MemoryRefreshLock {
    async fn lock(&self, key: &str) -> Result<Box<dyn RefreshGuard>, StoreError> {
        Ok(Box::new(self.entry(key).lock_owned().await))
    }
}

/// For lease-based locks (natively; a browser has other locks): calls `attempt` (one try: `true` when this caller took the lease)
/// every 15 ms until it succeeds or `timeout` passes.
///
/// # Errors
/// The first error `attempt` returns, or a timeout naming `key`.
#[cfg(not(target_arch = "wasm32"))]
pub async fn poll_for_lease<F, Fut>(
    key: &str,
    timeout: std::time::Duration,
    mut attempt: F,
) -> Result<(), StoreError>
where
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future<Output = Result<bool, StoreError>> + Send,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if attempt().await? {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the refresh lock {key:?} is still held after {timeout:?}"),
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    }
}
