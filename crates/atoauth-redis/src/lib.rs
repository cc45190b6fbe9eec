//! # atoauth-redis
//!
//! [`RedisStore`]: [`atoauth::store::StateStore`], [`atoauth::store::SessionStore`],
//! [`atoauth::store::BrowserSessionStore`] and [`atoauth::store::RefreshLock`] on Redis, for
//! apps with several instances. Pending authorizations and browser sessions expire by Redis TTL;
//! `take` is `GETDEL` (single use across all instances); the refresh lock is
//! `SET key token NX PX lease`, released by a compare-and-delete script, so only its owner frees
//! it, and a holder that dies blocks its session for one lease at most.
//!
//! ```no_run
//! # async fn demo() -> Result<(), atoauth_redis::RedisStoreError> {
//! let store = atoauth_redis::RedisStore::connect("redis://127.0.0.1:6379/", "myapp:").await?;
//! # Ok(()) }
//! ```
//!
//! # Security
//! The values are live credentials: use a Redis reachable by the app only, with authentication.

use std::time::Duration;

use atoauth::protocol::crypto::{OsRandomness, random_token};
use atoauth::secret::{SessionId, State};
use atoauth::store::{
    BrowserSession, BrowserSessionStore, PendingAuthorization, RefreshGuard, RefreshLock,
    ReplayStore, SessionData, SessionStore, StateStore, StoreError, browser_key, poll_for_lease,
};
use atoauth::syntax::Did;
pub use redis;
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;

/// Why the Redis store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// Redis answered an error or could not be reached.
    #[error("redis error")]
    Redis(#[from] redis::RedisError),
    /// A key prefix with spaces or control characters.
    #[error("invalid key prefix {0:?}")]
    InvalidPrefix(String),
}

impl From<RedisStoreError> for StoreError {
    fn from(error: RedisStoreError) -> Self {
        Self::backend(error)
    }
}

fn backend(error: redis::RedisError) -> StoreError {
    RedisStoreError::from(error).into()
}

fn corrupt(error: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Stores and a lock on one Redis, with keys under a prefix.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    lock_lease: Duration,
    lock_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("lock_lease", &self.lock_lease)
            .finish_non_exhaustive()
    }
}

/// Releases the lock only if this owner still holds it.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

impl RedisStore {
    /// Connects to `url` (`redis://…`, `rediss://…`); keys start with `prefix`.
    ///
    /// # Errors
    /// When Redis cannot be reached, or the prefix has spaces or control characters.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RedisStoreError> {
        if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RedisStoreError::InvalidPrefix(prefix.to_owned()));
        }
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client).await?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            lock_lease: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(20),
        })
    }

    /// The refresh lock's lease (default 30 s, longer than a token request).
    #[must_use]
    pub fn with_lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = lease;
        self
    }

    /// How long [`RefreshLock::lock`] waits (default 20 s).
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    fn key(&self, kind: &str, rest: &str) -> String {
        format!("{}{kind}:{rest}", self.prefix)
    }

    fn session_key(&self, did: &Did, id: &SessionId) -> String {
        self.key("session", &format!("{did} {}", id.secret()))
    }
}

#[async_trait::async_trait]
impl StateStore for RedisStore {
    async fn create(
        &self,
        state: &State,
        value: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if ttl.is_zero() {
            // Already expired: never returned, so never stored.
            return Ok(());
        }
        let json = serde_json::to_string(value).map_err(|e| corrupt(&e))?;
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key("state", state.secret()))
            .arg(json)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        if set.is_none() {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn take(&self, state: &State) -> Result<Option<PendingAuthorization>, StoreError> {
        let value: Option<String> = redis::cmd("GETDEL")
            .arg(self.key("state", state.secret()))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        value
            .map(|v| serde_json::from_str(&v).map_err(|e| corrupt(&e)))
            .transpose()
    }
}

#[async_trait::async_trait]
impl ReplayStore for RedisStore {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        // SET NX is atomic on the server: one caller gets OK, the others nil.
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key("replay", key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl).max(1))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        Ok(set.is_some())
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        let value: Option<String> = self
            .connection
            .clone()
            .get(self.session_key(did, id))
            .await
            .map_err(backend)?;
        value
            .map(|v| serde_json::from_str(&v).map_err(|e| corrupt(&e)))
            .transpose()
    }

    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError> {
        let json = serde_json::to_string(session).map_err(|e| corrupt(&e))?;
        let member = format!("{} {}", session.did, session.session_id.secret());
        // One MULTI/EXEC: the record and its index entries change together.
        redis::pipe()
            .atomic()
            .set(self.session_key(&session.did, &session.session_id), json)
            .sadd(
                self.key("sessions-of", session.did.as_str()),
                session.session_id.secret(),
            )
            .sadd(self.key("sessions", "all"), member)
            .query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(backend)
    }

    async fn delete(&self, did: &Did, id: &SessionId) -> Result<bool, StoreError> {
        let member = format!("{did} {}", id.secret());
        let (deleted, _, _): (u64, u64, u64) = redis::pipe()
            .atomic()
            .del(self.session_key(did, id))
            .srem(self.key("sessions-of", did.as_str()), id.secret())
            .srem(self.key("sessions", "all"), member)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        Ok(deleted > 0)
    }

    async fn list_by_did(&self, did: &Did) -> Result<Vec<SessionData>, StoreError> {
        let ids: Vec<String> = self
            .connection
            .clone()
            .smembers(self.key("sessions-of", did.as_str()))
            .await
            .map_err(backend)?;
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.session_key(did, &SessionId::new(id.clone())))
            .collect();
        self.load(keys).await
    }

    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError> {
        let members: Vec<String> = self
            .connection
            .clone()
            .smembers(self.key("sessions", "all"))
            .await
            .map_err(backend)?;
        let keys: Vec<String> = members
            .iter()
            .map(|member| self.key("session", member))
            .collect();
        self.load(keys).await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        self.connection
            .clone()
            .scard(self.key("sessions", "all"))
            .await
            .map_err(backend)
    }
}

impl RedisStore {
    async fn load(&self, keys: Vec<String>) -> Result<Vec<SessionData>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(backend)?;
        values
            .into_iter()
            .flatten()
            .map(|v| serde_json::from_str(&v).map_err(|e| corrupt(&e)))
            .collect()
    }
}

#[async_trait::async_trait]
impl BrowserSessionStore for RedisStore {
    async fn put_browser(
        &self,
        id: &SessionId,
        session: &BrowserSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if ttl.is_zero() {
            return self.delete_browser(id).await;
        }
        let json = serde_json::to_string(session).map_err(|e| corrupt(&e))?;
        redis::cmd("SET")
            .arg(self.key("browser", &browser_key(id)))
            .arg(json)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(backend)
    }

    async fn get_browser(&self, id: &SessionId) -> Result<Option<BrowserSession>, StoreError> {
        let value: Option<String> = self
            .connection
            .clone()
            .get(self.key("browser", &browser_key(id)))
            .await
            .map_err(backend)?;
        value
            .map(|v| serde_json::from_str(&v).map_err(|e| corrupt(&e)))
            .transpose()
    }

    async fn delete_browser(&self, id: &SessionId) -> Result<(), StoreError> {
        self.connection
            .clone()
            .del::<_, ()>(self.key("browser", &browser_key(id)))
            .await
            .map_err(backend)
    }
}

/// Owns `SET NX PX` lock; dropping it runs the compare-and-delete script.
struct LockGuard {
    connection: ConnectionManager,
    key: String,
    token: String,
    released: bool,
}

async fn release_lock(mut connection: ConnectionManager, key: String, token: String) {
    let _ = redis::Script::new(RELEASE)
        .key(key)
        .arg(token)
        .invoke_async::<i64>(&mut connection)
        .await;
}

#[async_trait::async_trait]
impl RefreshGuard for LockGuard {
    async fn release(mut self: Box<Self>) {
        self.released = true;
        release_lock(
            self.connection.clone(),
            self.key.clone(),
            self.token.clone(),
        )
        .await;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let release = release_lock(
            self.connection.clone(),
            self.key.clone(),
            self.token.clone(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release);
        }
    }
}

#[async_trait::async_trait]
impl RefreshLock for RedisStore {
    async fn lock(&self, key: &str) -> Result<Box<dyn RefreshGuard>, StoreError> {
        let token = random_token(&OsRandomness, 16).map_err(StoreError::backend)?;
        let lock_key = self.key("refresh-lock", key);
        let lease = millis(self.lock_lease);
        poll_for_lease(key, self.lock_timeout, || {
            let mut connection = self.connection.clone();
            let command = redis::cmd("SET")
                .arg(&lock_key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(lease)
                .clone();
            async move {
                let set: Option<String> = command
                    .query_async(&mut connection)
                    .await
                    .map_err(backend)?;
                Ok(set.is_some())
            }
        })
        .await?;
        Ok(Box::new(LockGuard {
            connection: self.connection.clone(),
            key: lock_key,
            token,
            released: false,
        }))
    }
}
