//! The engine under both the app-wide [`OAuthClient`](crate::OAuthClient) and each
//! [`OAuthSession`](crate::OAuthSession): the configuration they share, the path to the
//! authorization server (client authentication, DPoP, nonces), the DPoP transport, token
//! checks, per-server clock skew, refresh locking, the DPoP key cache and session events.
//!
//! `client/` and `session/` both build on it and never on each other.

mod server_request;
pub(crate) mod skew;
pub(crate) mod token;
pub(crate) mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use server_request::Revocation;

use crate::client_auth::Keyset;
use crate::client_auth::remote::ClientAssertionSource;
use crate::client_metadata::{ClientMetadata, LoopbackClient};
use crate::crypto::Randomness;
use crate::crypto::{Es256Key, Jwk, KeyError, SignerBackend};
use crate::dpop::{DpopKey, NonceCache};
use crate::error::OAuthError;
use crate::events::{SessionEvent, SessionEventHandler};
use crate::http::{HttpClient, TargetPolicy};
use crate::identity::IdentityResolver;
use crate::metadata::Discovery;
use crate::secret::SessionId;
use crate::store::{MemoryRefreshLock, RefreshGuard, RefreshLock};
use crate::store::{SessionData, SessionStore, StateStore};
use crate::syntax::Did;
use skew::SkewedClock;

/// What kind of client this is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientKind {
    /// The `http://localhost` development client (section C): always public.
    Loopback(LoopbackClient),
    /// A client with a published metadata document (section B), public or confidential.
    Published(Box<ClientMetadata>),
}

pub(crate) struct Engine {
    config: EngineConfig,
    /// The injected clock, corrected for the servers' skew where JWTs need it.
    clock: SkewedClock,
    /// AS nonces shared by authorizations in flight (I6: per server origin).
    authorization_nonces: NonceCache,
    /// Serialises refreshes within this process (always taken first).
    local_locks: MemoryRefreshLock,
    /// Parsed DPoP keys by session, so resuming a session (a web app does it on every
    /// request) does not re-derive its key: that costs more than several proofs.
    dpop_keys: Mutex<HashMap<String, Arc<DpopKey>>>,
}

/// What the builder decided: fixed for the client's life, read by the client and its sessions.
pub(crate) struct EngineConfig {
    pub(crate) client_id: String,
    pub(crate) kind: ClientKind,
    pub(crate) keyset: Option<Keyset>,
    /// Where assertions come from when the keys are elsewhere (a client-assertion backend).
    pub(crate) assertion_source: Option<Arc<dyn ClientAssertionSource>>,
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) policy: TargetPolicy,
    pub(crate) resolver: IdentityResolver,
    pub(crate) discovery: Discovery,
    pub(crate) states: Arc<dyn StateStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    /// The clock to trust, and whether to correct it per server.
    pub(crate) clock: Arc<dyn crate::crypto::Clock>,
    pub(crate) skew_correction: bool,
    pub(crate) random: Arc<dyn Randomness>,
    pub(crate) state_ttl: Duration,
    pub(crate) require_dpop_nonce: bool,
    pub(crate) refresh_margin_secs: i64,
    pub(crate) replace_sessions: bool,
    /// Serialises refreshes across clients and processes sharing a store.
    pub(crate) shared_lock: Option<Arc<dyn RefreshLock>>,
    pub(crate) event_handlers: Vec<SessionEventHandler>,
    pub(crate) refresh_jitter_secs: i64,
    pub(crate) request_timeout: Option<std::time::Duration>,
    /// Expands `include:` scopes to predict grants (permission spec §5).
    pub(crate) permission_sets: Option<crate::scope::SharedPermissionSets>,
    /// Where DPoP keys live when not in the record (a browser's WebCrypto keys).
    pub(crate) dpop_keys: Option<Arc<dyn crate::dpop::DpopKeyStore>>,
}

impl Engine {
    pub(crate) fn new(config: EngineConfig) -> Self {
        Self {
            clock: SkewedClock::new(Arc::clone(&config.clock), config.skew_correction),
            config,
            authorization_nonces: NonceCache::default(),
            local_locks: MemoryRefreshLock::default(),
            dpop_keys: Mutex::default(),
        }
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The clock, corrected per server origin.
    pub(crate) fn clock(&self) -> &SkewedClock {
        &self.clock
    }

    /// The authorization servers' nonces for flows in flight.
    pub(crate) fn authorization_nonces(&self) -> &NonceCache {
        &self.authorization_nonces
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.config.client_id)
            .field("policy", &self.config.policy)
            .field(
                "confidential",
                &(self.config.keyset.is_some() || self.config.assertion_source.is_some()),
            )
            .finish_non_exhaustive()
    }
}

/// How many parsed DPoP keys a client keeps.
const DPOP_KEY_CACHE_SIZE: usize = 10_000;

fn dpop_cache_key(did: &Did, id: &SessionId) -> String {
    format!("{did} {}", id.secret())
}

impl Engine {
    /// The refresh locks of a session (N4): the in-process one, then the shared one if any.
    pub(crate) async fn refresh_guards(
        &self,
        did: &Did,
        id: &SessionId,
    ) -> Result<Vec<Box<dyn RefreshGuard>>, OAuthError> {
        let key = format!("{did} {}", id.secret());
        let mut guards = vec![self.local_locks.lock(&key).await?];
        if let Some(shared) = &self.config.shared_lock {
            guards.push(shared.lock(&key).await?);
        }
        Ok(guards)
    }

    /// The session's DPoP key, parsed (or fetched from the key store) once and shared by every
    /// handle on the session; `None` when the key store no longer has it.
    pub(crate) async fn dpop_key(
        &self,
        data: &SessionData,
    ) -> Result<Option<Arc<DpopKey>>, OAuthError> {
        let id = dpop_cache_key(&data.did, &data.session_id);
        if let Some(key) = self.cached_dpop_keys().get(&id)
            && key.public_jwk().x == data.dpop_key.x
            && key.public_jwk().y == data.dpop_key.y
        {
            return Ok(Some(Arc::clone(key)));
        }
        Ok(self
            .restore_dpop_key(&data.dpop_key)
            .await?
            .map(|key| self.remember_dpop_key(data, key)))
    }

    /// A fresh DPoP key for a new authorization (I2): from the key store when there is one,
    /// otherwise atoauth's own.
    pub(crate) async fn new_dpop_key(&self) -> Result<DpopKey, OAuthError> {
        Ok(match &self.config.dpop_keys {
            Some(store) => DpopKey::from_signer(store.generate().await?)?,
            None => DpopKey::generate(self.config.random.as_ref())?,
        })
    }

    /// The key a record names: atoauth's own when the record holds the private key, otherwise
    /// the key store's (`None` if it no longer has it).
    pub(crate) async fn restore_dpop_key(&self, jwk: &Jwk) -> Result<Option<DpopKey>, OAuthError> {
        if jwk.is_private() {
            let key = Es256Key::from_private_jwk(jwk, SignerBackend::default())?;
            return Ok(Some(DpopKey::from_key(key)?));
        }
        let Some(store) = &self.config.dpop_keys else {
            return Ok(None);
        };
        let Some(signer) = store.load(jwk).await? else {
            return Ok(None);
        };
        // The store must hand back the very key the record names.
        if signer.public_jwk().thumbprint() != jwk.thumbprint() {
            return Err(KeyError::External(
                "the key store returned another key than the one the session is bound to"
                    .to_owned(),
            )
            .into());
        }
        Ok(Some(DpopKey::from_signer(signer)?))
    }

    /// Forgets a session's DPoP key: the cached copy, and the key store's key when it keeps
    /// one. Best effort: a key the store could not delete is unusable without its session.
    pub(crate) async fn discard_dpop_key(&self, did: &Did, id: &SessionId, jwk: &Jwk) {
        self.forget_dpop_key(did, id);
        if let Some(store) = &self.config.dpop_keys
            && !jwk.is_private()
            && let Err(error) = store.delete(jwk).await
        {
            tracing::warn!(%error, "the DPoP key of an ended session could not be deleted");
        }
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
        for handler in &self.config.event_handlers {
            handler(event);
        }
    }

    pub(crate) fn declared_scope(&self) -> &str {
        match &self.config.kind {
            ClientKind::Loopback(loopback) => loopback.scope(),
            ClientKind::Published(metadata) => &metadata.scope,
        }
    }
}
