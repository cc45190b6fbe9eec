//! In-memory stores: for tests, single-process apps, and as the reference for the contracts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::time::Instant;

use super::{
    BrowserSession, BrowserSessionStore, PendingAuthorization, SessionData, SessionStore,
    StateStore, StoreError, browser_key,
};
use crate::secret::{SessionId, State};
use crate::syntax::Did;

/// A [`StateStore`] in a map; expired entries are dropped on every write.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    entries: Mutex<HashMap<String, (Instant, PendingAuthorization)>>,
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl StateStore for MemoryStateStore {
    async fn create(
        &self,
        state: &State,
        value: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut entries = lock(&self.entries);
        let now = Instant::now();
        entries.retain(|_, (deadline, _)| *deadline > now);
        if entries.contains_key(state.secret()) {
            return Err(StoreError::Conflict);
        }
        entries.insert(state.secret().to_owned(), (now + ttl, value.clone()));
        Ok(())
    }

    async fn take(&self, state: &State) -> Result<Option<PendingAuthorization>, StoreError> {
        let entry = lock(&self.entries).remove(state.secret());
        Ok(entry
            .filter(|(deadline, _)| *deadline > Instant::now())
            .map(|(_, value)| value))
    }
}

/// A [`SessionStore`] in a map.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    sessions: Mutex<HashMap<(String, String), SessionData>>,
}

fn key(did: &Did, id: &SessionId) -> (String, String) {
    (did.to_string(), id.secret().to_owned())
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl SessionStore for MemorySessionStore {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        Ok(lock(&self.sessions).get(&key(did, id)).cloned())
    }

    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError> {
        lock(&self.sessions).insert(key(&session.did, &session.session_id), session.clone());
        Ok(())
    }

    async fn delete(&self, did: &Did, id: &SessionId) -> Result<bool, StoreError> {
        Ok(lock(&self.sessions).remove(&key(did, id)).is_some())
    }

    async fn list_by_did(&self, did: &Did) -> Result<Vec<SessionData>, StoreError> {
        Ok(lock(&self.sessions)
            .values()
            .filter(|session| &session.did == did)
            .cloned()
            .collect())
    }

    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError> {
        Ok(lock(&self.sessions).values().cloned().collect())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(lock(&self.sessions).len())
    }
}

/// A [`BrowserSessionStore`] in a map; expired entries are dropped on every write.
#[derive(Debug, Default)]
pub struct MemoryBrowserStore {
    entries: Mutex<HashMap<String, (Instant, BrowserSession)>>,
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BrowserSessionStore for MemoryBrowserStore {
    async fn put_browser(
        &self,
        id: &SessionId,
        session: &BrowserSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut entries = lock(&self.entries);
        let now = Instant::now();
        entries.retain(|_, (deadline, _)| *deadline > now);
        entries.insert(browser_key(id), (now + ttl, session.clone()));
        Ok(())
    }

    async fn get_browser(&self, id: &SessionId) -> Result<Option<BrowserSession>, StoreError> {
        Ok(lock(&self.entries)
            .get(&browser_key(id))
            .filter(|(deadline, _)| *deadline > Instant::now())
            .map(|(_, session)| session.clone()))
    }

    async fn delete_browser(&self, id: &SessionId) -> Result<(), StoreError> {
        lock(&self.entries).remove(&browser_key(id));
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: every update is one insert/remove.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
