//! The PostgreSQL store: pooled connections with timeouts, migrations under an advisory lock,
//! prefixed tables, and a refresh lock that is a transaction-scoped advisory lock, so it holds
//! across processes and hosts and is released when its transaction ends (even if the holder
//! dies, when its connection closes).

use std::time::Duration;

use atoauth::secret::{SessionId, State};
use atoauth::store::{
    BrowserSession, BrowserSessionStore, PendingAuthorization, RefreshGuard, RefreshLock,
    ReplayStore, SessionData, SessionStore, StateStore, StoreError, browser_key,
};
use atoauth::syntax::Did;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, Row, Transaction};

use crate::{SqlxStoreError, check_prefix, unix_now};

const SCHEMA_VERSION: i64 = 3;

/// Sessions, pending authorizations, browser sessions and refresh locks in PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    prefix: String,
    lock_timeout: Duration,
}

impl PostgresStore {
    /// Connects to `url` (a pool of up to 16 connections, 10 s to acquire one) and migrates.
    ///
    /// # Errors
    /// When the server cannot be reached or the migration fails.
    pub async fn connect(url: &str) -> Result<Self, SqlxStoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Self::from_pool(pool, "").await
    }

    /// A store on an existing pool with tables named `<prefix>oauth_…`; migrates.
    ///
    /// # Errors
    /// An invalid prefix or a failed migration.
    pub async fn from_pool(pool: PgPool, prefix: &str) -> Result<Self, SqlxStoreError> {
        check_prefix(prefix)?;
        let store = Self {
            pool,
            prefix: prefix.to_owned(),
            lock_timeout: Duration::from_secs(20),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// How long [`RefreshLock::lock`] waits (default 20 s, longer than a token request).
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades the tables; concurrent runs serialise on an advisory lock.
    ///
    /// # Errors
    /// A database failure, or a schema newer than this version.
    pub async fn migrate(&self) -> Result<(), SqlxStoreError> {
        let p = &self.prefix;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("atoauth-migrate-{p}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {p}oauth_schema (version BIGINT NOT NULL)"
        )))
        .execute(&mut *tx)
        .await?;
        let found: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT MAX(version) FROM {p}oauth_schema"
        )))
        .fetch_one(&mut *tx)
        .await?;
        let found = found.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(SqlxStoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < 1 {
            for statement in [
                format!(
                    "CREATE TABLE {p}oauth_states (state TEXT PRIMARY KEY, value TEXT NOT NULL, \
                     expires_at BIGINT NOT NULL)"
                ),
                format!(
                    "CREATE TABLE {p}oauth_sessions (did TEXT NOT NULL, session_id TEXT NOT NULL, \
                     value TEXT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (did, session_id))"
                ),
                format!(
                    "CREATE TABLE {p}oauth_browser_sessions (key TEXT PRIMARY KEY, \
                     value TEXT NOT NULL, expires_at BIGINT NOT NULL)"
                ),
                format!("INSERT INTO {p}oauth_schema (version) VALUES (1)"),
            ] {
                sqlx::query(AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if found < 2 {
            // Each write removes expired rows: without indexes that scans whole tables.
            for statement in [
                format!(
                    "CREATE INDEX IF NOT EXISTS {p}oauth_browser_sessions_expiry \
                     ON {p}oauth_browser_sessions (expires_at)"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {p}oauth_states_expiry ON {p}oauth_states (expires_at)"
                ),
                format!("INSERT INTO {p}oauth_schema (version) VALUES (2)"),
            ] {
                sqlx::query(AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if found < 3 {
            // Single-use marks (a client-assertion backend's DPoP proofs).
            for statement in [
                format!(
                    "CREATE TABLE IF NOT EXISTS {p}oauth_replay (key TEXT PRIMARY KEY, \
                     expires_at BIGINT NOT NULL)"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {p}oauth_replay_expiry ON {p}oauth_replay (expires_at)"
                ),
                format!("INSERT INTO {p}oauth_schema (version) VALUES (3)"),
            ] {
                sqlx::query(AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

fn corrupt(error: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

fn db(error: sqlx::Error) -> StoreError {
    SqlxStoreError::from(error).into()
}

fn ttl_secs(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl StateStore for PostgresStore {
    async fn create(
        &self,
        state: &State,
        value: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let p = &self.prefix;
        let now = unix_now();
        let json = serde_json::to_string(value).map_err(|e| corrupt(&e))?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_states WHERE expires_at <= $1"
        )))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}oauth_states (state, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (state) DO NOTHING"
        )))
        .bind(state.secret())
        .bind(json)
        .bind(now.saturating_add(ttl_secs(ttl)))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn take(&self, state: &State) -> Result<Option<PendingAuthorization>, StoreError> {
        let p = &self.prefix;
        let row = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_states WHERE state = $1 RETURNING value, expires_at"
        )))
        .bind(state.secret())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at").map_err(db)?;
        if expires_at <= unix_now() {
            return Ok(None);
        }
        let value: String = row.try_get("value").map_err(db)?;
        serde_json::from_str(&value)
            .map(Some)
            .map_err(|e| corrupt(&e))
    }
}

#[async_trait::async_trait]
impl ReplayStore for PostgresStore {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let p = &self.prefix;
        let now = unix_now();
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_replay WHERE expires_at <= $1"
        )))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}oauth_replay (key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO NOTHING"
        )))
        .bind(key)
        .bind(now.saturating_add(ttl_secs(ttl)).saturating_add(1))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(inserted.rows_affected() == 1)
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        let p = &self.prefix;
        let value: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM {p}oauth_sessions WHERE did = $1 AND session_id = $2"
        )))
        .bind(did.as_str())
        .bind(id.secret())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        value
            .map(|v| serde_json::from_str(&v).map_err(|e| corrupt(&e)))
            .transpose()
    }

    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError> {
        let p = &self.prefix;
        let json = serde_json::to_string(session).map_err(|e| corrupt(&e))?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}oauth_sessions (did, session_id, value, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (did, session_id) DO UPDATE \
             SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"
        )))
        .bind(session.did.as_str())
        .bind(session.session_id.secret())
        .bind(json)
        .bind(session.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete(&self, did: &Did, id: &SessionId) -> Result<bool, StoreError> {
        let p = &self.prefix;
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_sessions WHERE did = $1 AND session_id = $2"
        )))
        .bind(did.as_str())
        .bind(id.secret())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_by_did(&self, did: &Did) -> Result<Vec<SessionData>, StoreError> {
        let p = &self.prefix;
        let values: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM {p}oauth_sessions WHERE did = $1"
        )))
        .bind(did.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        values
            .iter()
            .map(|v| serde_json::from_str(v).map_err(|e| corrupt(&e)))
            .collect()
    }

    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError> {
        let p = &self.prefix;
        let values: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM {p}oauth_sessions"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        values
            .iter()
            .map(|v| serde_json::from_str(v).map_err(|e| corrupt(&e)))
            .collect()
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let p = &self.prefix;
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {p}oauth_sessions"
        )))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(usize::try_from(count).unwrap_or(0))
    }
}

#[async_trait::async_trait]
impl BrowserSessionStore for PostgresStore {
    async fn put_browser(
        &self,
        id: &SessionId,
        session: &BrowserSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let p = &self.prefix;
        let now = unix_now();
        let json = serde_json::to_string(session).map_err(|e| corrupt(&e))?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_browser_sessions WHERE expires_at <= $1"
        )))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}oauth_browser_sessions (key, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at"
        )))
        .bind(browser_key(id))
        .bind(json)
        .bind(now.saturating_add(ttl_secs(ttl)))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_browser(&self, id: &SessionId) -> Result<Option<BrowserSession>, StoreError> {
        let p = &self.prefix;
        let value: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM {p}oauth_browser_sessions WHERE key = $1 AND expires_at > $2"
        )))
        .bind(browser_key(id))
        .bind(unix_now())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        value
            .map(|v| serde_json::from_str(&v).map_err(|e| corrupt(&e)))
            .transpose()
    }

    async fn delete_browser(&self, id: &SessionId) -> Result<(), StoreError> {
        let p = &self.prefix;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_browser_sessions WHERE key = $1"
        )))
        .bind(browser_key(id))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }
}

/// Holds the transaction whose advisory lock is the refresh lock; dropping it rolls back.
struct AdvisoryGuard {
    tx: Transaction<'static, Postgres>,
}

#[async_trait::async_trait]
impl RefreshGuard for AdvisoryGuard {
    async fn release(self: Box<Self>) {
        let _ = self.tx.rollback().await;
    }
}

#[async_trait::async_trait]
impl RefreshLock for PostgresStore {
    async fn lock(&self, key: &str) -> Result<Box<dyn RefreshGuard>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{}ms'",
            self.lock_timeout.as_millis()
        )))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("atoauth-refresh-{}{key}", self.prefix))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Ok(Box::new(AdvisoryGuard { tx }))
    }
}
