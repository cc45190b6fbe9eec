//! The SQLite store: WAL mode, a busy timeout, migrations on open, a 0600 database file.

use std::path::Path;
use std::time::Duration;

use atoauth::protocol::crypto::{OsRandomness, random_token};
use atoauth::secret::{SessionId, State};
use atoauth::store::{
    BrowserSession, BrowserSessionStore, PendingAuthorization, RefreshGuard, RefreshLock,
    ReplayStore, SessionData, SessionStore, StateStore, StoreError, browser_key, poll_for_lease,
};
use atoauth::syntax::Did;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row};

use crate::file_lock::FileLocks;
use crate::{SqlxStoreError, check_prefix, unix_now};

/// The newest schema this version writes.
const SCHEMA_VERSION: i64 = 5;

/// Sessions and pending authorizations in one SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    prefix: String,
    /// The refresh lock of a database in a file; `None` in memory, where lease rows serve.
    file_locks: Option<FileLocks>,
    lock_lease: Duration,
    lock_timeout: Duration,
}

impl SqliteStore {
    /// Opens (creating it if needed, mode 0600) the database at `path` and runs the migrations.
    ///
    /// # Errors
    /// When the file cannot be created or secured, or the database cannot be opened or migrated.
    pub async fn open(path: &Path) -> Result<Self, SqlxStoreError> {
        secure_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Several processes (two CLI runs, two `serve` instances) may write at once.
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Self::from_pool(pool, "").await
    }

    /// A store on an existing pool, with tables named `<prefix>oauth_…`; runs the migrations.
    ///
    /// # Errors
    /// An invalid prefix or a failed migration.
    pub async fn from_pool(pool: SqlitePool, prefix: &str) -> Result<Self, SqlxStoreError> {
        check_prefix(prefix)?;
        let file: Option<String> =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_optional(&pool)
                .await?;
        let file_locks = match file.filter(|f| !f.is_empty()) {
            Some(file) => Some(FileLocks::beside(Path::new(&file)).map_err(|source| {
                SqlxStoreError::File {
                    path: format!("{file}.locks"),
                    source,
                }
            })?),
            None => None,
        };
        let store = Self {
            pool,
            file_locks,
            prefix: prefix.to_owned(),
            lock_lease: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(20),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The refresh lock's lease for a database without a file (in memory; default 30 s: longer
    /// than a token request, so a live holder is never overtaken). A database in a file uses OS
    /// file locks instead, which end with their process: nothing to expire.
    #[must_use]
    pub fn with_lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = lease;
        self
    }

    /// How long [`RefreshLock::lock`] waits before giving up (default 20 s).
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The pool, for apps that keep their own tables in the same file.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or upgrades the tables. Safe to run concurrently and repeatedly.
    ///
    /// # Errors
    /// A database failure, or a schema newer than this version.
    pub async fn migrate(&self) -> Result<(), SqlxStoreError> {
        let p = &self.prefix;
        let mut tx = self.pool.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {p}oauth_schema (version INTEGER NOT NULL)"
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
        // Each version's statements, `{p}` standing for the table prefix.
        let steps: [(i64, &[&str]); 5] = [
            (
                1,
                &[
                    "CREATE TABLE IF NOT EXISTS {p}oauth_states (state TEXT PRIMARY KEY, \
                     value TEXT NOT NULL, expires_at INTEGER NOT NULL)",
                    "CREATE INDEX IF NOT EXISTS {p}oauth_states_expiry ON {p}oauth_states (expires_at)",
                    "CREATE TABLE IF NOT EXISTS {p}oauth_sessions (did TEXT NOT NULL, \
                     session_id TEXT NOT NULL, value TEXT NOT NULL, updated_at INTEGER NOT NULL, \
                     PRIMARY KEY (did, session_id))",
                ],
            ),
            (
                2,
                &[
                    "CREATE TABLE IF NOT EXISTS {p}oauth_browser_sessions (key TEXT PRIMARY KEY, \
                   value TEXT NOT NULL, expires_at INTEGER NOT NULL)",
                ],
            ),
            (
                3,
                &[
                    "CREATE TABLE IF NOT EXISTS {p}oauth_locks (key TEXT PRIMARY KEY, \
                   owner TEXT NOT NULL, expires_at_ms INTEGER NOT NULL)",
                ],
            ),
            (
                4,
                // Each write removes expired browser sessions: without an index that scans the
                // whole table.
                &[
                    "CREATE INDEX IF NOT EXISTS {p}oauth_browser_sessions_expiry \
                     ON {p}oauth_browser_sessions (expires_at)",
                ],
            ),
            (
                5,
                // Single-use marks (a client-assertion backend's DPoP proofs).
                &[
                    "CREATE TABLE IF NOT EXISTS {p}oauth_replay (key TEXT PRIMARY KEY, \
                     expires_at INTEGER NOT NULL)",
                    "CREATE INDEX IF NOT EXISTS {p}oauth_replay_expiry ON {p}oauth_replay (expires_at)",
                ],
            ),
        ];
        for (version, statements) in steps.into_iter().filter(|(v, _)| *v > found) {
            for statement in statements {
                sqlx::query(AssertSqlSafe(statement.replace("{p}", p)))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {p}oauth_schema (version) VALUES ({version})"
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Creates the file with mode 0600, or narrows an existing one to it (Q2).
fn secure_file(path: &Path) -> Result<(), SqlxStoreError> {
    let error = |source| SqlxStoreError::File {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // A directory created for secrets is private too (0700), not only the file in it.
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(parent).map_err(error)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path).map_err(error)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(error)?;
    }
    #[cfg(not(unix))]
    options.open(path).map_err(error)?;
    Ok(())
}

fn corrupt(error: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

fn db(error: sqlx::Error) -> StoreError {
    SqlxStoreError::from(error).into()
}

#[async_trait::async_trait]
impl StateStore for SqliteStore {
    async fn create(
        &self,
        state: &State,
        value: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let p = &self.prefix;
        let now = unix_now();
        let json = serde_json::to_string(value).map_err(|e| corrupt(&e))?;
        let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        // Expired entries go first, so an old state can never block a new one.
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_states WHERE expires_at <= ?"
        )))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}oauth_states (state, value, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (state) DO NOTHING"
        )))
        .bind(state.secret())
        .bind(json)
        .bind(expires_at)
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
        // One statement: two concurrent takes cannot both get the row.
        let row = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_states WHERE state = ? RETURNING value, expires_at"
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
impl ReplayStore for SqliteStore {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let p = &self.prefix;
        let now = unix_now();
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}oauth_replay WHERE expires_at <= ?"
        )))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        // Rounded up: a mark never lasts less than asked.
        let expires_at = now.saturating_add(
            i64::try_from(ttl.as_secs())
                .unwrap_or(i64::MAX)
                .saturating_add(1),
        );
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}oauth_replay (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
        )))
        .bind(key)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(inserted.rows_affected() == 1)
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        let p = &self.prefix;
        let value: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM {p}oauth_sessions WHERE did = ? AND session_id = ?"
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
            "INSERT INTO {p}oauth_sessions (did, session_id, value, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (did, session_id) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at"
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
            "DELETE FROM {p}oauth_sessions WHERE did = ? AND session_id = ?"
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
            "SELECT value FROM {p}oauth_sessions WHERE did = ?"
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
impl BrowserSessionStore for SqliteStore {
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
            "DELETE FROM {p}oauth_browser_sessions WHERE expires_at <= ?"
        )))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {p}oauth_browser_sessions (key, value, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
        )))
        .bind(browser_key(id))
        .bind(json)
        .bind(now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_browser(&self, id: &SessionId) -> Result<Option<BrowserSession>, StoreError> {
        let p = &self.prefix;
        let value: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM {p}oauth_browser_sessions WHERE key = ? AND expires_at > ?"
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
            "DELETE FROM {p}oauth_browser_sessions WHERE key = ?"
        )))
        .bind(browser_key(id))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A lease row owned by a random token; dropping the guard deletes it (owner only).
struct LeaseGuard {
    pool: SqlitePool,
    table: String,
    key: String,
    owner: String,
    released: bool,
}

impl LeaseGuard {
    async fn delete(pool: SqlitePool, table: String, key: String, owner: String) {
        let statement = format!("DELETE FROM {table} WHERE key = ? AND owner = ?");
        let _ = sqlx::query(AssertSqlSafe(statement))
            .bind(key)
            .bind(owner)
            .execute(&pool)
            .await;
    }
}

#[async_trait::async_trait]
impl RefreshGuard for LeaseGuard {
    async fn release(mut self: Box<Self>) {
        self.released = true;
        Self::delete(
            self.pool.clone(),
            self.table.clone(),
            self.key.clone(),
            self.owner.clone(),
        )
        .await;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let release = Self::delete(
            self.pool.clone(),
            self.table.clone(),
            self.key.clone(),
            self.owner.clone(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release);
        }
    }
}

/// The canary lease row and the file lock, released in that order.
struct BothGuards {
    lease: LeaseGuard,
    file_lock: Box<dyn RefreshGuard>,
}

#[async_trait::async_trait]
impl RefreshGuard for BothGuards {
    async fn release(self: Box<Self>) {
        let Self { lease, file_lock } = *self;
        Box::new(lease).release().await;
        file_lock.release().await;
    }
}

impl SqliteStore {
    /// Writes this holder's lease row unconditionally (the file lock is held).
    async fn write_lease_row(&self, key: &str) -> Result<LeaseGuard, StoreError> {
        let p = &self.prefix;
        let owner = random_token(&OsRandomness, 16).map_err(StoreError::backend)?;
        let lease = i64::try_from(self.lock_lease.as_millis()).unwrap_or(i64::MAX);
        let statement = format!(
            "INSERT INTO {p}oauth_locks (key, owner, expires_at_ms) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, \
             expires_at_ms = excluded.expires_at_ms"
        );
        sqlx::query(AssertSqlSafe(statement))
            .bind(key)
            .bind(owner.clone())
            .bind(unix_millis().saturating_add(lease))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(LeaseGuard {
            pool: self.pool.clone(),
            table: format!("{p}oauth_locks"),
            key: key.to_owned(),
            owner,
            released: false,
        })
    }
}

#[async_trait::async_trait]
impl RefreshLock for SqliteStore {
    /// An OS file lock beside the database file (see `file_lock`): processes sharing the file
    /// serialise, and a holder's death frees the lock at once. In memory: a lease row committed
    /// at once (no write transaction is held while the refresh runs); an expired lease is taken
    /// over.
    async fn lock(&self, key: &str) -> Result<Box<dyn RefreshGuard>, StoreError> {
        if let Some(locks) = &self.file_locks {
            let file_lock = locks
                .lock(&format!("{}{key}", self.prefix), self.lock_timeout)
                .await?;
            // Not the lock (the file lock is) but a canary: before anything is sent, the
            // database must take a write. A full disk or a read-only file fails here, not after
            // the PDS has rotated the tokens (which would end the session).
            return match self.write_lease_row(key).await {
                Ok(lease) => Ok(Box::new(BothGuards { lease, file_lock })),
                Err(error) => {
                    file_lock.release().await;
                    Err(error)
                }
            };
        }
        let p = &self.prefix;
        let owner = random_token(&OsRandomness, 16).map_err(StoreError::backend)?;
        let lease = i64::try_from(self.lock_lease.as_millis()).unwrap_or(i64::MAX);
        let statement = format!(
            "INSERT INTO {p}oauth_locks (key, owner, expires_at_ms) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, \
             expires_at_ms = excluded.expires_at_ms WHERE {p}oauth_locks.expires_at_ms <= ?"
        );
        poll_for_lease(key, self.lock_timeout, || {
            let now = unix_millis();
            let query = sqlx::query(AssertSqlSafe(statement.clone()))
                .bind(key)
                .bind(owner.clone())
                .bind(now.saturating_add(lease))
                .bind(now);
            async move {
                let taken = query.execute(&self.pool).await.map_err(db)?;
                Ok(taken.rows_affected() == 1)
            }
        })
        .await?;
        Ok(Box::new(LeaseGuard {
            pool: self.pool.clone(),
            table: format!("{p}oauth_locks"),
            key: key.to_owned(),
            owner,
            released: false,
        }))
    }
}
