//! Where pending authorizations and sessions live (section Q): two traits with written contracts,
//! and an in-memory implementation. SQLite, PostgreSQL and Redis implementations live in their own
//! crates (`atoauth-sqlx`, `atoauth-redis`).

mod browser;
mod lock;
mod memory;
mod records;
mod replay;
mod umbrella;

use std::time::Duration;

pub use browser::{BrowserSession, BrowserSessionStore, browser_key};
#[cfg(not(target_arch = "wasm32"))]
pub use lock::poll_for_lease;
pub use lock::{MemoryRefreshLock, RefreshGuard, RefreshLock};
pub use memory::{MemoryBrowserStore, MemorySessionStore, MemoryStateStore};
pub use records::{ClientAuthBinding, PendingAuthorization, SessionData};
pub use replay::{MemoryReplayStore, ReplayStore};
pub use umbrella::{MemoryStore, Store};

use crate::platform::{MaybeSend, MaybeSync};
use crate::secret::{SessionId, State};
use crate::syntax::Did;

/// A store failed. Wraps the backend's error with its source chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `create` found an entry under the same key (a `state` collision; never overwrite).
    #[error("an entry with this key already exists")]
    Conflict,
    /// A stored value could not be read back (corrupt or from an incompatible version).
    #[error("a stored value is unreadable: {0}")]
    Corrupt(String),
    /// The backend failed (I/O, connection, timeout).
    #[error("the store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// Pending authorizations, keyed by `state` (G7, K2, Q1).
///
/// # Contract
/// - `create` never overwrites: an existing key gives [`StoreError::Conflict`].
/// - `take` returns the entry at most once, whatever the concurrency (get-and-delete in one
///   atomic step), and never returns an entry older than its `ttl`.
/// - The store removes expired entries by itself (lazily or on a schedule).
/// - Safe for concurrent use from many tasks (and, for shared backends, many processes).
///
/// # Examples
/// A store of your own: a map for a single process (what [`MemoryStateStore`] does). A
/// database implements `take` as one `DELETE … RETURNING`, so that two callbacks with the same
/// `state` cannot both succeed.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::{Duration, Instant};
///
/// use atoauth::secret::State;
/// use atoauth::store::{PendingAuthorization, StateStore, StoreError};
///
/// #[derive(Debug, Default)]
/// struct MapStates(Mutex<HashMap<String, (Instant, PendingAuthorization)>>);
///
/// #[async_trait::async_trait]
/// impl StateStore for MapStates {
///     async fn create(
///         &self,
///         state: &State,
///         value: &PendingAuthorization,
///         ttl: Duration,
///     ) -> Result<(), StoreError> {
///         let mut map = self.0.lock().map_err(|_| StoreError::backend(std::io::Error::other("poisoned")))?;
///         map.retain(|_, (expires, _)| *expires > Instant::now());
///         if map.contains_key(state.secret()) {
///             return Err(StoreError::Conflict);
///         }
///         map.insert(state.secret().to_owned(), (Instant::now() + ttl, value.clone()));
///         Ok(())
///     }
///
///     async fn take(&self, state: &State) -> Result<Option<PendingAuthorization>, StoreError> {
///         let mut map = self.0.lock().map_err(|_| StoreError::backend(std::io::Error::other("poisoned")))?;
///         Ok(map
///             .remove(state.secret())
///             .filter(|(expires, _)| *expires > Instant::now())
///             .map(|(_, value)| value))
///     }
/// }
/// ```
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait StateStore: MaybeSend + MaybeSync + std::fmt::Debug {
    /// Saves `value` under `state` for `ttl`.
    async fn create(
        &self,
        state: &State,
        value: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Removes and returns the entry under `state`, if present and not expired.
    async fn take(&self, state: &State) -> Result<Option<PendingAuthorization>, StoreError>;
}

/// Sessions, keyed by DID and session id (Q1).
///
/// # Contract
/// - `upsert` replaces the whole record atomically: a reader sees the old or the new record,
///   never a mix (N3: new tokens are stored as one unit).
/// - `delete` of a missing key is not an error; it returns `false`.
/// - `list_by_did` and `list_all` return records in no particular order.
/// - Sessions do not expire in the store; the client deletes them (sign-out, dead refresh).
/// - Safe for concurrent use.
///
/// # Examples
/// An account page listing where the user is signed in, from the app's store:
///
/// ```
/// use atoauth::{Did, SessionStore};
///
/// # async fn demo(store: &dyn SessionStore, did: &Did) -> Result<(), atoauth::store::StoreError> {
/// for session in store.list_by_did(did).await? {
///     println!("since {} on {}, granted {}", session.created_at, session.issuer, session.scope);
/// }
/// # Ok(()) }
/// ```
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait SessionStore: MaybeSend + MaybeSync + std::fmt::Debug {
    /// The session, if stored.
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError>;
    /// Inserts or replaces the session.
    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError>;
    /// Deletes the session; whether it existed.
    async fn delete(&self, did: &Did, id: &SessionId) -> Result<bool, StoreError>;
    /// Every session of `did`.
    async fn list_by_did(&self, did: &Did) -> Result<Vec<SessionData>, StoreError>;
    /// Every session.
    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError>;
    /// How many sessions are stored (for an active-sessions gauge). The default reads them
    /// all; stores override it with a count that reads none.
    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.list_all().await?.len())
    }
}
