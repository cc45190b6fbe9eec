//! Browser sessions of a backend-for-frontend web app: the random id in the cookie maps to a
//! CSRF token and, once signed in, to an OAuth session. Stores key them by a SHA-256 of the id,
//! so a leaked database does not hand out live cookies.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::platform::{MaybeSend, MaybeSync};
use crate::secret::SessionId;
use crate::syntax::Did;

/// What a browser's cookie stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredBrowserSession")]
pub struct BrowserSession {
    /// The token every form of this browser carries (CSRF).
    pub csrf_token: crate::secret::State,
    /// The signed-in accounts and their OAuth sessions: the active one first, the others by
    /// most recent use, so the last is the one to drop when the browser holds too many.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<(Did, SessionId)>,
    /// Unix time of creation.
    pub created_at: i64,
}

impl BrowserSession {
    /// The active account, if signed in.
    #[must_use]
    pub fn active(&self) -> Option<&(Did, SessionId)> {
        self.accounts.first()
    }
}

/// The stored form, which also reads records written before a browser could hold several
/// accounts (`account`: the one signed-in account).
#[derive(Deserialize)]
struct StoredBrowserSession {
    csrf_token: crate::secret::State,
    #[serde(default)]
    accounts: Vec<(Did, SessionId)>,
    #[serde(default)]
    account: Option<(Did, SessionId)>,
    created_at: i64,
}

impl From<StoredBrowserSession> for BrowserSession {
    fn from(stored: StoredBrowserSession) -> Self {
        let mut accounts = stored.accounts;
        if accounts.is_empty() {
            accounts.extend(stored.account);
        }
        Self {
            csrf_token: stored.csrf_token,
            accounts,
            created_at: stored.created_at,
        }
    }
}

/// Browser sessions by cookie id.
///
/// # Contract
/// - `put` inserts or replaces; entries expire after `ttl` and are then never returned.
/// - `get` of a missing or expired id is `None`, never an error.
/// - Expired entries are removed by the store (lazily is fine).
/// - Safe for concurrent use.
///
/// # Examples
/// The web layer reads and writes these; an app rarely does. Keys are never the cookie itself
/// ([`browser_key`]), so a leaked table holds no usable cookie:
///
/// ```
/// use std::time::Duration;
///
/// use atoauth::secret::State;
/// use atoauth::store::{BrowserSession, BrowserSessionStore, MemoryBrowserStore};
/// use atoauth::SessionId;
///
/// # async fn demo() -> Result<(), atoauth::store::StoreError> {
/// let store = MemoryBrowserStore::default();
/// let id = SessionId::new("cookie-id");
/// let browser = BrowserSession {
///     csrf_token: State::new("token"),
///     accounts: Vec::new(),
///     created_at: 1_796_000_000,
/// };
/// store.put_browser(&id, &browser, Duration::from_secs(3600)).await?;
/// assert!(store.get_browser(&id).await?.is_some());
/// store.delete_browser(&id).await?;
/// # Ok(()) }
/// ```
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait BrowserSessionStore: MaybeSend + MaybeSync + std::fmt::Debug {
    /// Saves `session` under `id` for `ttl`.
    async fn put_browser(
        &self,
        id: &SessionId,
        session: &BrowserSession,
        ttl: Duration,
    ) -> Result<(), StoreError>;
    /// The session under `id`.
    async fn get_browser(&self, id: &SessionId) -> Result<Option<BrowserSession>, StoreError>;
    /// Removes `id`.
    async fn delete_browser(&self, id: &SessionId) -> Result<(), StoreError>;
}

/// The storage key for a browser session id: hex SHA-256, so stored keys are not cookies.
#[must_use]
pub fn browser_key(id: &SessionId) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(id.secret().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_before_several_accounts_still_read() {
        let old = r#"{"csrf_token":"c","account":["did:plc:ewvi7nxzyoun6zhxrhs64oiz","s1"],"created_at":1}"#;
        let record: BrowserSession = serde_json::from_str(old).expect("an old record");
        assert_eq!(
            record.active().map(|(did, _)| did.as_str()),
            Some("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
        );
        let again: BrowserSession =
            serde_json::from_str(&serde_json::to_string(&record).expect("serialize"))
                .expect("round trip");
        assert_eq!(again, record);
        let anonymous: BrowserSession =
            serde_json::from_str(r#"{"csrf_token":"c","created_at":1}"#).expect("anonymous");
        assert!(anonymous.accounts.is_empty());
    }
}
