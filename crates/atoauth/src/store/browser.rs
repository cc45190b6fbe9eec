//! Browser sessions of a backend-for-frontend web app: the random id in the cookie maps to a
//! CSRF token and, once signed in, to an OAuth session. Stores key them by a SHA-256 of the id,
//! so a leaked database does not hand out live cookies.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::secret::SessionId;
use crate::syntax::Did;

/// What a browser's cookie stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserSession {
    /// The token every form of this browser carries (CSRF).
    pub csrf_token: crate::secret::State,
    /// The signed-in account and its OAuth session, once signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<(Did, SessionId)>,
    /// Unix time of creation.
    pub created_at: i64,
}

/// Browser sessions by cookie id.
///
/// # Contract
/// - `put` inserts or replaces; entries expire after `ttl` and are then never returned.
/// - `get` of a missing or expired id is `None`, never an error.
/// - Expired entries are removed by the store (lazily is fine).
/// - Safe for concurrent use.
#[async_trait::async_trait]
pub trait BrowserSessionStore: Send + Sync + std::fmt::Debug {
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
