//! [`Store`]: one value that is every store an app needs, so setup passes it once
//! (`OAuthClientBuilder::store`, and the web layer's browser sessions). The SQLite,
//! PostgreSQL, Redis and [`MemoryStore`] stores are each one.

use std::time::Duration;

use super::{
    BrowserSession, BrowserSessionStore, MemoryBrowserStore, MemoryRefreshLock, MemorySessionStore,
    MemoryStateStore, PendingAuthorization, RefreshGuard, RefreshLock, SessionData, SessionStore,
    StateStore, StoreError,
};
use crate::secret::{SessionId, State};
use crate::syntax::Did;

/// Pending authorizations, sessions, browser sessions and the refresh lock in one store. Any
/// type that implements the four traits is a `Store`.
///
/// # Examples
/// One store for the OAuth client and, in a web app, for the browsers' sessions as well:
///
/// ```
/// use std::sync::Arc;
///
/// use atoauth::{LoopbackClient, MemoryStore, OAuthClient, Store};
///
/// # fn demo() -> Result<(), atoauth::OAuthError> {
/// // atoauth_sqlx::SqliteStore, PostgresStore or atoauth_redis::RedisStore in production.
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
/// let client = OAuthClient::builder()
///     .loopback(LoopbackClient::with_scope("atproto")?)
///     .store(Arc::clone(&store))
///     .build()?;
/// // …and `AtoauthWeb::builder(client, url).store(store)` in atoauth-axum.
/// # Ok(()) }
/// ```
pub trait Store: StateStore + SessionStore + BrowserSessionStore + RefreshLock + 'static {}

impl<T> Store for T where T: StateStore + SessionStore + BrowserSessionStore + RefreshLock + 'static {}

/// Every store in memory: for tests and single-process development. Everything is lost when
/// the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    states: MemoryStateStore,
    sessions: MemorySessionStore,
    browsers: MemoryBrowserStore,
    lock: MemoryRefreshLock,
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl StateStore for MemoryStore {
    async fn create(
        &self,
        state: &State,
        value: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.states.create(state, value, ttl).await
    }

    async fn take(&self, state: &State) -> Result<Option<PendingAuthorization>, StoreError> {
        self.states.take(state).await
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl SessionStore for MemoryStore {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        self.sessions.get(did, id).await
    }

    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError> {
        self.sessions.upsert(session).await
    }

    async fn delete(&self, did: &Did, id: &SessionId) -> Result<bool, StoreError> {
        self.sessions.delete(did, id).await
    }

    async fn list_by_did(&self, did: &Did) -> Result<Vec<SessionData>, StoreError> {
        self.sessions.list_by_did(did).await
    }

    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError> {
        self.sessions.list_all().await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        self.sessions.count().await
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BrowserSessionStore for MemoryStore {
    async fn put_browser(
        &self,
        id: &SessionId,
        session: &BrowserSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.browsers.put_browser(id, session, ttl).await
    }

    async fn get_browser(&self, id: &SessionId) -> Result<Option<BrowserSession>, StoreError> {
        self.browsers.get_browser(id).await
    }

    async fn delete_browser(&self, id: &SessionId) -> Result<(), StoreError> {
        self.browsers.delete_browser(id).await
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl RefreshLock for MemoryStore {
    async fn lock(&self, key: &str) -> Result<Box<dyn RefreshGuard>, StoreError> {
        self.lock.lock(key).await
    }
}
