//! What the worker binaries (`storm-worker`, `fault-worker`) share: their `--name value`
//! flags, and opening a shared store by URL.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atoauth::store::{RefreshLock, SessionStore};

/// The `--name value` pairs of this process's arguments.
///
/// # Errors
/// A flag without a value.
pub fn flags() -> Result<HashMap<String, String>, String> {
    let mut values = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let value = args.next().ok_or(format!("{name} needs a value"))?;
        values.insert(name.trim_start_matches("--").to_owned(), value);
    }
    Ok(values)
}

/// The flag `name`.
///
/// # Errors
/// When it was not given.
pub fn flag(values: &HashMap<String, String>, name: &str) -> Result<String, String> {
    values
        .get(name)
        .cloned()
        .ok_or(format!("--{name} is required"))
}

/// Opens a store by URL (`postgres://…`, `redis://…`, else a SQLite path) with a refresh-lock
/// lease of `lease` (PostgreSQL's lock is a transaction's and ends with the connection).
///
/// # Errors
/// The store's error, as text.
pub async fn open_store(
    db: &str,
    prefix: &str,
    lease: Duration,
) -> Result<(Arc<dyn SessionStore>, Arc<dyn RefreshLock>), String> {
    if db.starts_with("postgres://") {
        let pool = atoauth_sqlx::sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(db)
            .await
            .map_err(|e| e.to_string())?;
        let store = Arc::new(
            atoauth_sqlx::PostgresStore::from_pool(pool, prefix)
                .await
                .map_err(|e| e.to_string())?,
        );
        Ok((store.clone(), store))
    } else if db.starts_with("redis://") {
        let store = Arc::new(
            atoauth_redis::RedisStore::connect(db, prefix)
                .await
                .map_err(|e| e.to_string())?
                .with_lock_lease(lease),
        );
        Ok((store.clone(), store))
    } else {
        let store = Arc::new(
            // A file lock, which ends with its process: no lease.
            atoauth_sqlx::SqliteStore::open(Path::new(db))
                .await
                .map_err(|e| e.to_string())?,
        );
        Ok((store.clone(), store))
    }
}
