//! [`OAuthClientBuilder`]: every choice has a secure default; whatever weakens one says
//! `insecure` or `danger` in its name.

use std::sync::Arc;
use std::time::Duration;

use super::{ClientKind, OAuthClient};
use crate::client_auth::Keyset;
use crate::client_auth::remote::ClientAssertionSource;
use crate::client_metadata::{ClientMetadata, LoopbackClient, ValidationOptions};
use crate::crypto::{Clock, OsRandomness, Randomness, SystemClock};
use crate::engine::{Engine, EngineConfig};
use crate::error::{ConfigError, OAuthError};
use crate::events::SessionEventHandler;
use crate::http::{HttpClient, TargetPolicy};
use crate::identity::{HandleResolution, IdentityResolver};
use crate::metadata::{DEFAULT_METADATA_TTL, Discovery};
use crate::rules::Violations;
use crate::store::{
    MemorySessionStore, MemoryStateStore, RefreshLock, SessionStore, StateStore, Store,
};
use url::Url;

/// How long a pending authorization waits for its callback by default.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(15 * 60);

/// Configures an [`OAuthClient`]. Errors are reported by [`OAuthClientBuilder::build`].
#[derive(Default)]
#[must_use]
pub struct OAuthClientBuilder {
    kind: Option<ClientKind>,
    keyset: Option<Keyset>,
    assertion_source: Option<Arc<dyn ClientAssertionSource>>,
    http: Option<Arc<dyn HttpClient>>,
    policy: TargetPolicy,
    resolver: Option<IdentityResolver>,
    plc_directory: Option<Url>,
    handle_resolver: Option<Url>,
    states: Option<Arc<dyn StateStore>>,
    sessions: Option<Arc<dyn SessionStore>>,
    clock: Option<Arc<dyn Clock>>,
    random: Option<Arc<dyn Randomness>>,
    state_ttl: Option<Duration>,
    metadata_ttl: Option<Duration>,
    accept_missing_nonce: bool,
    refresh_margin_secs: Option<i64>,
    replace_sessions: bool,
    client_id_port: bool,
    shared_lock: Option<Arc<dyn RefreshLock>>,
    event_handlers: Vec<SessionEventHandler>,
    no_skew_correction: bool,
    jitter_secs: Option<u32>,
    request_timeout: Option<Duration>,
    permission_sets: Option<crate::scope::SharedPermissionSets>,
    dpop_keys: Option<Arc<dyn crate::dpop::DpopKeyStore>>,
}

impl std::fmt::Debug for OAuthClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientBuilder")
            .field("kind", &self.kind)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl OAuthClientBuilder {
    /// The `http://localhost` development client (section C).
    pub fn loopback(mut self, client: LoopbackClient) -> Self {
        self.kind = Some(ClientKind::Loopback(client));
        self
    }

    /// A client with a published metadata document (section B).
    pub fn metadata(mut self, metadata: ClientMetadata) -> Self {
        self.kind = Some(ClientKind::Published(Box::new(metadata)));
        self
    }

    /// The signing keys of a confidential client (section J).
    pub fn keyset(mut self, keyset: Keyset) -> Self {
        self.keyset = Some(keyset);
        self
    }

    /// A confidential client whose keys are elsewhere: every assertion comes from `source`
    /// (a client-assertion backend: [`RemoteClientAssertions`]), just in time for PAR, the
    /// code exchange, each refresh and revocation (J2, section U). Instead of
    /// [`keyset`](Self::keyset).
    ///
    /// [`RemoteClientAssertions`]: crate::protocol::client_auth::remote::RemoteClientAssertions
    pub fn client_assertions(mut self, source: Arc<dyn ClientAssertionSource>) -> Self {
        self.assertion_source = Some(source);
        self
    }

    /// The HTTP client for every request (default: [`crate::http::HardenedClient`]).
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// Which URLs may be fetched; the default allows public https only.
    pub fn target_policy(mut self, policy: TargetPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The identity resolver (default: one built on the same HTTP client and policy, with
    /// [`plc_directory`](Self::plc_directory) and [`handle_resolver`](Self::handle_resolver)).
    /// A resolver given here is used as it is.
    pub fn identity_resolver(mut self, resolver: IdentityResolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The one store for pending authorizations, sessions and the refresh lock: SQLite,
    /// PostgreSQL, Redis or [`MemoryStore`](crate::store::MemoryStore). Replaces
    /// `state_store`, `session_store` and `refresh_lock`.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.states = Some(store.clone());
        self.sessions = Some(store.clone());
        self.shared_lock = Some(store);
        self
    }

    /// The PLC directory to resolve `did:plc` with (default `https://plc.directory`), for
    /// the default identity resolver, which keeps the client's target policy.
    pub fn plc_directory(mut self, url: Url) -> Self {
        self.plc_directory = Some(url);
        self
    }

    /// Resolve handles through this service (`com.atproto.identity.resolveHandle`, for example
    /// your own PDS) instead of DNS and HTTPS, in the default identity resolver.
    pub fn handle_resolver(mut self, url: Url) -> Self {
        self.handle_resolver = Some(url);
        self
    }

    /// Development against a PDS and PLC directory on this machine (the official PDS's dev
    /// setup, `interop/pds`): resolves `did:plc` at `plc`, handles through `handle_resolver`,
    /// and allows plain-http loopback servers ([`TargetPolicy::InsecureAllowLoopbackHttp`]).
    /// Never in production.
    pub fn insecure_local_pds(self, plc: Url, handle_resolver: Url) -> Self {
        self.plc_directory(plc)
            .handle_resolver(handle_resolver)
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
    }

    /// Where pending authorizations go (default: memory).
    pub fn state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.states = Some(store);
        self
    }

    /// Where sessions go (default: memory; use a persistent store to survive restarts).
    pub fn session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The randomness source (default: the OS CSPRNG).
    pub fn randomness(mut self, random: Arc<dyn Randomness>) -> Self {
        self.random = Some(random);
        self
    }

    /// How long a pending authorization waits for its callback (default 15 minutes).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = Some(ttl);
        self
    }

    /// How long validated server metadata is reused (default 60 s).
    pub fn metadata_ttl(mut self, ttl: Duration) -> Self {
        self.metadata_ttl = Some(ttl);
        self
    }

    /// Refresh this many seconds before the access token expires (default 30; M5).
    pub fn refresh_margin(mut self, seconds: u32) -> Self {
        self.refresh_margin_secs = Some(i64::from(seconds));
        self
    }

    /// A lock shared by every client and process using the same session store, so that only one
    /// of them refreshes a session at a time (N4). Within one process the client always
    /// serialises refreshes itself; this adds the cross-client guarantee. Give the same lock to
    /// every `OAuthClient` that shares a store.
    pub fn refresh_lock(mut self, lock: Arc<dyn RefreshLock>) -> Self {
        self.shared_lock = Some(lock);
        self
    }

    /// Where DPoP keys are made and kept when they must not sit in the session record: a
    /// browser app's non-extractable WebCrypto keys in IndexedDB, a hardware token. The record
    /// then holds only the public key, and each proof is signed by the store's key (I2, I3).
    /// Default: atoauth makes its own key and keeps it, private, in the record.
    pub fn dpop_key_store(mut self, store: Arc<dyn crate::dpop::DpopKeyStore>) -> Self {
        self.dpop_keys = Some(store);
        self
    }

    /// Calls `handler` when a session is created, updated or deleted (with the cause, Q4).
    pub fn on_session_event(mut self, handler: SessionEventHandler) -> Self {
        self.event_handlers.push(handler);
        self
    }

    /// Every request to an authorization server or a PDS, and every metadata fetch, gives up
    /// after `timeout` (default: 10 s for metadata and the authorization server, 30 s for PDS
    /// calls).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Proactive refreshes start up to this many seconds early, spread per session so that
    /// instances sharing a store do not all refresh at once (M5; default 30, 0 turns it off).
    pub fn refresh_jitter(mut self, seconds: u32) -> Self {
        self.jitter_secs = Some(seconds);
        self
    }

    /// Use the local clock as is in DPoP proofs and client assertions, even when the servers'
    /// `Date` headers show it is off. Only for tests of the correction itself.
    pub fn danger_disable_clock_skew_correction(mut self) -> Self {
        self.no_skew_correction = true;
        self
    }

    /// After a successful sign-in, revoke and delete the account's other sessions (L8). For apps
    /// with one session per account, such as a CLI.
    pub fn replace_existing_sessions(mut self) -> Self {
        self.replace_sessions = true;
        self
    }

    /// Accept the authorization server's responses to DPoP requests that lack a `DPoP-Nonce`
    /// header (I8, T2), as the reference clients do. The default refuses them, as the spec
    /// requires. (A PDS's are always accepted: the official PDS omits the header on endpoints
    /// where authentication is optional.)
    pub fn danger_accept_responses_without_dpop_nonce(mut self) -> Self {
        self.accept_missing_nonce = true;
        self
    }

    /// Resolves the permission sets of `include:` scopes (a
    /// [`LexiconResolver`](crate::lexicon::LexiconResolver), or
    /// [`StaticPermissionSets`](crate::scope::StaticPermissionSets)): `start_authorization`
    /// then checks each requested set and predicts the grant, so that
    /// [`OAuthSession::scope_diff`](crate::OAuthSession::scope_diff) compares like with like.
    /// The `include:` tokens are still sent as written: the authorization server expands them.
    pub fn permission_sets(
        mut self,
        resolver: impl crate::scope::PermissionSetResolver + 'static,
    ) -> Self {
        self.permission_sets = Some(crate::scope::SharedPermissionSets::new(resolver));
        self
    }

    /// Accept a port in the client metadata's `client_id` (B1: the spec forbids it; the
    /// official authorization server accepts it). Only for a client host on a test machine.
    pub fn insecure_allow_client_id_port(mut self) -> Self {
        self.client_id_port = true;
        self
    }

    /// The client, after checking its configuration (B10).
    ///
    /// # Errors
    /// [`OAuthError::ClientMetadata`] with every violation, or [`OAuthError::Config`].
    pub fn build(self) -> Result<OAuthClient, OAuthError> {
        let kind = self.kind.ok_or(ConfigError::NoClient)?;
        let client_id = match &kind {
            ClientKind::Loopback(loopback) => {
                if self.keyset.is_some() || self.assertion_source.is_some() {
                    return Err(ConfigError::LoopbackTakesNoKeys.into());
                }
                loopback.client_id()
            }
            ClientKind::Published(metadata) => {
                let options = ValidationOptions {
                    fetched_from: None,
                    insecure_allow_client_id_port: self.client_id_port,
                };
                // B10: errors stop the client; warnings (B6.3) do not.
                let errors: Vec<_> = metadata
                    .check(&options)
                    .into_iter()
                    .filter(|v| v.is_error())
                    .collect();
                if !errors.is_empty() {
                    return Err(OAuthError::ClientMetadata(Violations(errors)));
                }
                match &self.assertion_source {
                    None => check_keys(metadata, self.keyset.as_ref())?,
                    Some(_) => check_remote(metadata, self.keyset.is_some())?,
                }
                metadata.client_id.clone()
            }
        };
        let http = match self.http {
            Some(http) => http,
            None => default_http(self.policy)?,
        };
        let resolver = match self.resolver {
            Some(resolver) => resolver,
            None => {
                let mut resolver = IdentityResolver::builder()
                    .http_client(Arc::clone(&http))
                    .target_policy(self.policy);
                if let Some(url) = self.plc_directory {
                    resolver = resolver.plc_url(url);
                }
                if let Some(url) = self.handle_resolver {
                    resolver = resolver.handle_resolution(HandleResolution::Service(url));
                }
                resolver.build()?
            }
        };
        let mut discovery = Discovery::new(
            Arc::clone(&http),
            self.policy,
            self.metadata_ttl.unwrap_or(DEFAULT_METADATA_TTL),
        );
        if let Some(timeout) = self.request_timeout {
            discovery = discovery.with_timeout(timeout);
        }
        Ok(OAuthClient {
            inner: Arc::new(Engine::new(EngineConfig {
                client_id,
                kind,
                keyset: self.keyset,
                assertion_source: self.assertion_source,
                http,
                policy: self.policy,
                resolver,
                discovery,
                states: self
                    .states
                    .unwrap_or_else(|| Arc::new(MemoryStateStore::default())),
                sessions: self
                    .sessions
                    .unwrap_or_else(|| Arc::new(MemorySessionStore::default())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                skew_correction: !self.no_skew_correction,
                random: self.random.unwrap_or_else(|| Arc::new(OsRandomness)),
                state_ttl: self.state_ttl.unwrap_or(DEFAULT_STATE_TTL),
                require_dpop_nonce: !self.accept_missing_nonce,
                refresh_margin_secs: self.refresh_margin_secs.unwrap_or(30),
                replace_sessions: self.replace_sessions,
                shared_lock: self.shared_lock,
                event_handlers: self.event_handlers,
                refresh_jitter_secs: i64::from(self.jitter_secs.unwrap_or(30)),
                request_timeout: self.request_timeout,
                permission_sets: self.permission_sets,
                dpop_keys: self.dpop_keys,
            })),
        })
    }
}

/// U2: assertions from elsewhere are for a confidential client that has no keyset of its own.
fn check_remote(metadata: &ClientMetadata, has_keyset: bool) -> Result<(), OAuthError> {
    if has_keyset {
        return Err(ConfigError::TwoAssertionSources.into());
    }
    if !metadata.is_confidential() {
        return Err(ConfigError::PublicClientTakesNoKeys.into());
    }
    Ok(())
}

/// J1/B5.10: a confidential client has keys, and every one of them is published.
fn check_keys(metadata: &ClientMetadata, keyset: Option<&Keyset>) -> Result<(), OAuthError> {
    match (metadata.is_confidential(), keyset) {
        (false, Some(_)) => Err(ConfigError::PublicClientTakesNoKeys.into()),
        (true, None) => Err(ConfigError::ConfidentialClientNeedsKeys.into()),
        (true, Some(keys)) => {
            let Some(published) = &metadata.jwks else {
                // Keys at `jwks_uri` cannot be checked offline; the AS will.
                return Ok(());
            };
            for key in keys.public_jwks().keys {
                let listed = published
                    .keys
                    .iter()
                    .any(|p| p.kid == key.kid && p.x == key.x && p.y == key.y);
                if !listed {
                    return Err(ConfigError::KeyNotPublished {
                        kid: key.kid.clone().unwrap_or_default(),
                    }
                    .into());
                }
            }
            Ok(())
        }
        (false, None) => Ok(()),
    }
}

#[cfg(all(feature = "reqwest", not(target_arch = "wasm32")))]
fn default_http(policy: TargetPolicy) -> Result<Arc<dyn HttpClient>, OAuthError> {
    let client = crate::http::HardenedClient::builder()
        .target_policy(policy)
        .build()
        .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
    Ok(Arc::new(client))
}

#[cfg(any(not(feature = "reqwest"), target_arch = "wasm32"))]
fn default_http(_: TargetPolicy) -> Result<Arc<dyn HttpClient>, OAuthError> {
    Err(ConfigError::NoHttpClient.into())
}
