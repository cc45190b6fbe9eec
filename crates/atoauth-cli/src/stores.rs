//! The stores every command uses, chosen by `--db`: the embedded SQLite file by default,
//! PostgreSQL (`postgres://…`) or Redis (`redis://…`) when several instances share sign-ins. Each
//! backend also provides the refresh lock, so processes sharing a store never refresh a session
//! twice.

use std::sync::Arc;

use anyhow::Context;
use atoauth::store::{BrowserSessionStore, RefreshLock, ReplayStore, SessionStore, StateStore};
use atoauth_redis::RedisStore;
use atoauth_sqlx::{PostgresStore, SqliteStore};

use crate::config::Config;

/// The four stores, usually one backend behind all of them.
#[derive(Clone, Debug)]
pub(crate) struct Stores {
    pub(crate) states: Arc<dyn StateStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) browsers: Arc<dyn BrowserSessionStore>,
    pub(crate) lock: Arc<dyn RefreshLock>,
    /// Single-use marks (the client-assertion backend's proofs).
    pub(crate) replay: Arc<dyn ReplayStore>,
    /// Where they are, for messages (never with a password).
    pub(crate) description: String,
}

fn all<T>(store: &Arc<T>, description: String) -> Stores
where
    T: StateStore + SessionStore + BrowserSessionStore + RefreshLock + ReplayStore + 'static,
{
    Stores {
        states: store.clone(),
        sessions: store.clone(),
        browsers: store.clone(),
        lock: store.clone(),
        replay: store.clone(),
        description,
    }
}

/// Opens the store `--db` names.
pub(crate) async fn open(config: &Config) -> anyhow::Result<Stores> {
    let db = config.db.as_deref().unwrap_or_default();
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let store = PostgresStore::connect(db)
            .await
            .context("cannot connect to PostgreSQL (--db)")?;
        return Ok(all(&Arc::new(store), "PostgreSQL".to_owned()));
    }
    if db.starts_with("redis://") || db.starts_with("rediss://") {
        let store = RedisStore::connect(db, "atoauth:")
            .await
            .context("cannot connect to Redis (--db)")?;
        return Ok(all(&Arc::new(store), "Redis".to_owned()));
    }
    let path = if db.is_empty() {
        config.private_data_dir()?.join("atoauth.db")
    } else {
        std::path::PathBuf::from(db.strip_prefix("sqlite://").unwrap_or(db))
    };
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open the session database {}", path.display()))?;
    Ok(all(&Arc::new(store), path.display().to_string()))
}
