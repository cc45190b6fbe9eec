//! Pending sign-ins and sessions in IndexedDB, behind atoauth's store traits. Records are JSON;
//! tokens never go to `localStorage` or `sessionStorage`. Every write is told to the other tabs.

use std::time::Duration;

use atoauth::secret::{SessionId, State};
use atoauth::store::{PendingAuthorization, SessionData, SessionStore, StateStore, StoreError};
use atoauth::syntax::Did;
use wasm_bindgen::JsValue;

use crate::channel::{Channel, Notice};
use crate::error::BrowserError;
use crate::idb::{Database, SESSIONS, STATES};
use crate::page::now_ms;

/// The browser's session and state store.
#[derive(Clone, Debug)]
pub struct IndexedDbStore {
    db: Database,
    channel: Option<Channel>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    expires_at_ms: f64,
    value: PendingAuthorization,
}

fn backend(error: BrowserError) -> StoreError {
    StoreError::backend(std::io::Error::other(error.to_string()))
}

fn corrupt(what: &str, error: &serde_json::Error) -> StoreError {
    StoreError::backend(std::io::Error::other(format!(
        "a stored {what} cannot be read: {error}"
    )))
}

fn session_key(did: &Did, id: &SessionId) -> String {
    format!("{} {}", did.as_str(), id.secret())
}

impl IndexedDbStore {
    pub(crate) fn new(db: Database, channel: Option<Channel>) -> Self {
        Self { db, channel }
    }

    /// The store in the IndexedDB database `database` (created if needed), telling other tabs
    /// of its writes on the channel `<database>:sessions`.
    ///
    /// # Errors
    /// When IndexedDB or `BroadcastChannel` is unavailable.
    pub async fn open(database: &str) -> Result<Self, BrowserError> {
        let channel = Channel::open(&format!("{database}:sessions"))?;
        Ok(Self::new(Database::open(database).await?, Some(channel)))
    }

    fn tell(&self, notice: &Notice) {
        if let Some(channel) = &self.channel {
            channel.tell(notice);
        }
    }

    fn session_of(value: &JsValue) -> Result<SessionData, StoreError> {
        let text = value.as_string().unwrap_or_default();
        serde_json::from_str(&text).map_err(|e| corrupt("session", &e))
    }
}

#[async_trait::async_trait(?Send)]
impl StateStore for IndexedDbStore {
    async fn create(
        &self,
        state: &State,
        value: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let record = Pending {
            expires_at_ms: now_ms() + ttl.as_secs_f64() * 1000.0,
            value: value.clone(),
        };
        let text = serde_json::to_string(&record).map_err(|e| corrupt("sign-in", &e))?;
        self.db
            .put(STATES, state.secret(), &JsValue::from_str(&text))
            .await
            .map_err(backend)
    }

    async fn take(&self, state: &State) -> Result<Option<PendingAuthorization>, StoreError> {
        let Some(value) = self
            .db
            .take(STATES, state.secret())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let text = value.as_string().unwrap_or_default();
        let record: Pending = serde_json::from_str(&text).map_err(|e| corrupt("sign-in", &e))?;
        Ok((record.expires_at_ms > now_ms()).then_some(record.value))
    }
}

#[async_trait::async_trait(?Send)]
impl SessionStore for IndexedDbStore {
    async fn get(&self, did: &Did, id: &SessionId) -> Result<Option<SessionData>, StoreError> {
        match self
            .db
            .get(SESSIONS, &session_key(did, id))
            .await
            .map_err(backend)?
        {
            Some(value) => Self::session_of(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn upsert(&self, session: &SessionData) -> Result<(), StoreError> {
        let text = serde_json::to_string(session).map_err(|e| corrupt("session", &e))?;
        self.db
            .put(
                SESSIONS,
                &session_key(&session.did, &session.session_id),
                &JsValue::from_str(&text),
            )
            .await
            .map_err(backend)?;
        self.tell(&Notice::Updated {
            did: session.did.as_str().to_owned(),
        });
        Ok(())
    }

    async fn delete(&self, did: &Did, id: &SessionId) -> Result<bool, StoreError> {
        let existed = self
            .db
            .take(SESSIONS, &session_key(did, id))
            .await
            .map_err(backend)?
            .is_some();
        if existed {
            self.tell(&Notice::Deleted {
                did: did.as_str().to_owned(),
            });
        }
        Ok(existed)
    }

    async fn list_by_did(&self, did: &Did) -> Result<Vec<SessionData>, StoreError> {
        let prefix = format!("{} ", did.as_str());
        self.db
            .all(SESSIONS)
            .await
            .map_err(backend)?
            .iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .map(|(_, value)| Self::session_of(value))
            .collect()
    }

    async fn list_all(&self) -> Result<Vec<SessionData>, StoreError> {
        self.db
            .all(SESSIONS)
            .await
            .map_err(backend)?
            .iter()
            .map(|(_, value)| Self::session_of(value))
            .collect()
    }
}
