//! The app-wide [`OAuthClient`]: configuration, resolver, discovery, stores, HTTP, clock and
//! randomness; the two calls of the flow (`start_authorization`, `complete_authorization`); and
//! session lookup.

mod authorize;
mod builder;
mod callback;
mod server_request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use authorize::{AuthorizeOptions, Prompt};
pub use builder::{DEFAULT_STATE_TTL, OAuthClientBuilder};
pub use callback::{CallbackParams, CompletedAuthorization};
pub use server_request::Revocation;

use crate::client_auth::Keyset;
use crate::client_metadata::{ClientMetadata, LoopbackClient};
use crate::crypto::Randomness;
use crate::crypto::{Es256Key, SignerBackend};
use crate::dpop::{DpopKey, NonceCache};
use crate::error::OAuthError;
use crate::events::{SessionEvent, SessionEventHandler};
use crate::http::{HttpClient, TargetPolicy};
use crate::identity::IdentityResolver;
use crate::metadata::Discovery;
use crate::secret::SessionId;
use crate::session::OAuthSession;
use crate::skew::SkewedClock;
use crate::store::{MemoryRefreshLock, RefreshGuard, RefreshLock};
use crate::store::{SessionData, SessionStore, StateStore};
use crate::syntax::Did;

/// What kind of client this is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientKind {
    /// The `http://localhost` development client (section C): always public.
    Loopback(LoopbackClient),
    /// A client with a published metadata document (section B), public or confidential.
    Published(Box<ClientMetadata>),
}

/// An OAuth client for one `client_id`, shared by the whole app (cheap to clone).
///
/// ```no_run
/// # async fn demo() -> Result<(), atoauth::OAuthError> {
/// use atoauth::client::{AuthorizeOptions, CallbackParams, OAuthClient};
/// use atoauth::client_metadata::LoopbackClient;
///
/// let loopback = LoopbackClient::new(["http://127.0.0.1/callback"], Some("atproto"))
///     .map_err(|v| atoauth::OAuthError::Config(format!("{v:?}")))?;
/// let client = OAuthClient::builder().loopback(loopback).build()?;
/// let url = client
///     .start_authorization("alice.bsky.social", AuthorizeOptions::default())
///     .await?;
/// println!("open {url}");
/// // … the browser comes back to the redirect URI with `?code=…&state=…&iss=…`:
/// let callback = CallbackParams::from_query("code=…&state=…&iss=…");
/// let done = client.complete_authorization(callback).await?;
/// println!("signed in as {}", done.session.did());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub(crate) inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    pub(crate) client_id: String,
    pub(crate) kind: ClientKind,
    pub(crate) keyset: Option<Keyset>,
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) policy: TargetPolicy,
    pub(crate) resolver: IdentityResolver,
    pub(crate) discovery: Discovery,
    pub(crate) states: Arc<dyn StateStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    /// The injected clock, corrected for the servers' skew where JWTs need it.
    pub(crate) clock: SkewedClock,
    pub(crate) random: Arc<dyn Randomness>,
    pub(crate) state_ttl: Duration,
    pub(crate) require_dpop_nonce: bool,
    pub(crate) refresh_margin_secs: i64,
    pub(crate) replace_sessions: bool,
    /// AS nonces shared by authorizations in flight (I6: per server origin).
    pub(crate) authorization_nonces: NonceCache,
    /// Serialises refreshes within this process (always taken first).
    pub(crate) local_locks: MemoryRefreshLock,
    /// Serialises refreshes across clients and processes sharing a store.
    pub(crate) shared_lock: Option<Arc<dyn RefreshLock>>,
    pub(crate) event_handlers: Vec<SessionEventHandler>,
    pub(crate) refresh_jitter_secs: i64,
    pub(crate) request_timeout: Option<std::time::Duration>,
    /// Parsed DPoP keys by session, so resuming a session (a web app does it on every
    /// request) does not re-derive its key: that costs more than several proofs.
    pub(crate) dpop_keys: Mutex<HashMap<String, Arc<DpopKey>>>,
}

impl std::fmt::Debug for ClientInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("policy", &self.policy)
            .field("confidential", &self.keyset.is_some())
            .finish_non_exhaustive()
    }
}

/// How many parsed DPoP keys a client keeps.
const DPOP_KEY_CACHE_SIZE: usize = 10_000;

fn dpop_cache_key(did: &Did, id: &SessionId) -> String {
    format!("{did} {}", id.secret())
}

impl ClientInner {
    /// The refresh locks of a session (N4): the in-process one, then the shared one if any.
    pub(crate) async fn refresh_guards(
        &self,
        did: &Did,
        id: &SessionId,
    ) -> Result<Vec<Box<dyn RefreshGuard>>, OAuthError> {
        let key = format!("{did} {}", id.secret());
        let mut guards = vec![self.local_locks.lock(&key).await?];
        if let Some(shared) = &self.shared_lock {
            guards.push(shared.lock(&key).await?);
        }
        Ok(guards)
    }

    /// The session's DPoP key, parsed once and shared by every handle on the session.
    pub(crate) fn dpop_key(&self, data: &SessionData) -> Result<Arc<DpopKey>, OAuthError> {
        let id = dpop_cache_key(&data.did, &data.session_id);
        if let Some(key) = self.cached_dpop_keys().get(&id)
            && key.key().public_jwk().x == data.dpop_key.x
        {
            return Ok(Arc::clone(key));
        }
        let key = DpopKey::from_key(Es256Key::from_private_jwk(
            &data.dpop_key,
            SignerBackend::default(),
        )?)?;
        Ok(self.remember_dpop_key(data, key))
    }

    /// Caches a key parsed elsewhere (at sign-in) for the session `data`.
    pub(crate) fn remember_dpop_key(&self, data: &SessionData, key: DpopKey) -> Arc<DpopKey> {
        let key = Arc::new(key);
        let mut keys = self.cached_dpop_keys();
        // A bound, not an LRU: past it the cache starts over, which costs one parse per session.
        if keys.len() >= DPOP_KEY_CACHE_SIZE {
            keys.clear();
        }
        keys.insert(
            dpop_cache_key(&data.did, &data.session_id),
            Arc::clone(&key),
        );
        key
    }

    /// Drops the cached key of a deleted session.
    pub(crate) fn forget_dpop_key(&self, did: &Did, id: &SessionId) {
        self.cached_dpop_keys().remove(&dpop_cache_key(did, id));
    }

    fn cached_dpop_keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<DpopKey>>> {
        // Every update is one insert or remove: a poisoned map is still consistent.
        self.dpop_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the app's handlers.
    pub(crate) fn emit(&self, event: &SessionEvent) {
        for handler in &self.event_handlers {
            handler(event);
        }
    }

    pub(crate) fn declared_scope(&self) -> &str {
        match &self.kind {
            ClientKind::Loopback(loopback) => loopback.scope(),
            ClientKind::Published(metadata) => &metadata.scope,
        }
    }
}

impl OAuthClient {
    /// Starts configuring a client.
    pub fn builder() -> OAuthClientBuilder {
        OAuthClientBuilder::default()
    }

    /// The `client_id`.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The client's kind and metadata.
    #[must_use]
    pub fn kind(&self) -> &ClientKind {
        &self.inner.kind
    }

    /// The public JWKS a confidential client publishes (`None` for public clients).
    #[must_use]
    pub fn public_jwks(&self) -> Option<crate::crypto::JwkSet> {
        self.inner.keyset.as_ref().map(Keyset::public_jwks)
    }

    /// The identity resolver the client uses.
    #[must_use]
    pub fn resolver(&self) -> &IdentityResolver {
        &self.inner.resolver
    }

    /// Resumes a stored session (Q3). It refreshes only when needed, on first use.
    ///
    /// # Errors
    /// [`OAuthError::SessionNotFound`], a store failure, or an ended session (which is deleted).
    pub async fn restore(&self, did: &Did, id: &SessionId) -> Result<OAuthSession, OAuthError> {
        let data =
            self.inner
                .sessions
                .get(did, id)
                .await?
                .ok_or_else(|| OAuthError::SessionNotFound {
                    did: did.to_string(),
                })?;
        OAuthSession::resume(Arc::clone(&self.inner), data).await
    }

    /// The sessions stored for `did`.
    ///
    /// # Errors
    /// A store failure.
    pub async fn sessions_of(&self, did: &Did) -> Result<Vec<SessionData>, OAuthError> {
        Ok(self.inner.sessions.list_by_did(did).await?)
    }

    /// Every stored session.
    ///
    /// # Errors
    /// A store failure.
    pub async fn all_sessions(&self) -> Result<Vec<SessionData>, OAuthError> {
        Ok(self.inner.sessions.list_all().await?)
    }
}
