//! # atoauth-sqlx
//!
//! Stores for [`atoauth`] on sqlx: `SqliteStore`, the embedded default (one file, no server), and
//! `PostgresStore` (feature `postgres`) for apps that outgrow one machine. Both implement
//! [`atoauth::store::StateStore`], [`atoauth::store::SessionStore`],
//! [`atoauth::store::BrowserSessionStore`] and [`atoauth::store::RefreshLock`]: SQLite with an
//! OS file lock beside the database (`<file>.locks/`) that holds across the processes of one
//! host and ends with its process, PostgreSQL with a transaction-scoped
//! advisory lock that holds across hosts.
//!
//! - Migrations run when the store opens ([`SqliteStore::open`]) or on demand
//!   ([`SqliteStore::migrate`]); tables carry a configurable prefix.
//! - The database file is created with mode 0600: it holds tokens and DPoP keys (Q2).
//! - Values are stored as JSON documents next to their keys, so a record is replaced in one
//!   statement (the atomic upsert the `SessionStore` contract asks for).
//!
//! ```no_run
//! # async fn demo() -> Result<(), atoauth_sqlx::SqlxStoreError> {
//! let store = atoauth_sqlx::SqliteStore::open(std::path::Path::new("atoauth.db")).await?;
//! # Ok(()) }
//! ```
//!
//! # Security
//! The file holds live credentials: keep it on a local disk readable by the app only.

#[cfg(feature = "sqlite")]
mod file_lock;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use sqlx;

/// Why a sqlx store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlxStoreError {
    /// The database answered an error or could not be reached.
    #[error("database error")]
    Sqlx(#[from] sqlx::Error),
    /// The database file could not be created or secured.
    #[error("cannot prepare the database file {path}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A table prefix with characters other than ASCII letters, digits and `_`.
    #[error("invalid table prefix {0:?}: use ASCII letters, digits and '_' only")]
    InvalidPrefix(String),
    /// The schema was written by a newer atoauth.
    #[error(
        "the database schema version {found} is newer than this atoauth supports ({supported})"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version known here.
        supported: i64,
    },
}

impl From<SqlxStoreError> for atoauth::store::StoreError {
    fn from(error: SqlxStoreError) -> Self {
        Self::backend(error)
    }
}

pub(crate) fn check_prefix(prefix: &str) -> Result<(), SqlxStoreError> {
    if prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(())
    } else {
        Err(SqlxStoreError::InvalidPrefix(prefix.to_owned()))
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
