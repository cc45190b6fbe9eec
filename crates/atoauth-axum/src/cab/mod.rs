//! The client-assertion backend (section U of `docs/rules.md`): `POST /oauth/client-assertion`
//! signs short-lived `private_key_jwt` assertions for a single-page app whose OAuth client runs
//! in the browser (`atoauth-browser`), so that app is a confidential client — with a
//! confidential client's session lifetime at the PDS — while its keys stay here. The backend
//! stores no session and never sees a token.
//!
//! Each assertion is bound to the browser's DPoP key: the request carries a DPoP proof for this
//! endpoint made with that key, and the assertion names the key's thumbprint (`cnf.jkt`). The
//! route refuses, one check at a time: another `Origin` (U1), a missing, malformed, stale,
//! replayed or foreign proof (U3), an `aud` that is not an authorization server (U4), a key
//! removed from the keyset (J6), a denied device, one without the app's sign-in cookie or one
//! the app's own [`DeviceCheck`] refuses (U8), and callers over their rate (U9). Nothing it logs contains a proof or an assertion (U10).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use atoauth::Keyset;
//! use atoauth_axum::cab::{CabConfig, ClientAssertionBackend};
//!
//! let keys = Keyset::from_jwks_json(&std::fs::read_to_string("keys.json")?)?;
//! let config = CabConfig::new(
//!     "https://app.example.com/client-metadata.json",
//!     keys,
//!     "https://app.example.com".parse()?,
//! );
//! let app: axum::Router = axum::Router::new().merge(ClientAssertionBackend::new(config)?.router());
//! # let _ = app; Ok(()) }
//! ```

mod audience;
mod deny;
mod device;
mod nonce;
mod proof;
mod route;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use atoauth::Keyset;
use atoauth::http::{HttpClient, TargetPolicy};
use atoauth::protocol::crypto::{OsRandomness, SystemClock, random_token};
use atoauth::protocol::metadata::{DEFAULT_METADATA_TTL, Discovery};
use atoauth::store::{MemoryReplayStore, ReplayStore};
use axum::Router;
use axum::routing::post;
use ipnet::IpNet;
use url::Url;

pub use deny::DenyList;
pub use device::{DeviceCheck, DeviceRequest};

use crate::guard::RateLimiter;
use nonce::Nonces;

/// The route's path.
pub const PATH: &str = "/oauth/client-assertion";

/// How to run the client-assertion backend. [`CabConfig::new`] sets safe defaults; change the
/// fields as needed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CabConfig {
    /// The client's `client_id` (its metadata document's URL), `iss` and `sub` of assertions.
    pub client_id: String,
    /// The keys that sign; the metadata document publishes their public halves (J1).
    pub keyset: Keyset,
    /// Where browsers reach this backend (scheme, host, port): the proof's `htu` is this URL
    /// with the route's path.
    pub public_url: Url,
    /// The exact origins whose pages may ask (U1) [default: the public URL's origin].
    pub allowed_origins: Vec<String>,
    /// Which authorization servers may be an assertion's audience: those discovery accepts
    /// under this policy (U4) [default: public https only].
    pub target_policy: TargetPolicy,
    /// The HTTP client discovery uses [default: the SDK's hardened client under the policy].
    pub http: Option<Arc<dyn HttpClient>>,
    /// Where used proofs are remembered (U3): share it between instances [default: memory].
    pub replay: Arc<dyn ReplayStore>,
    /// Devices that may not have assertions, by DPoP key thumbprint (U8).
    pub denied_keys: DenyList,
    /// The app's own sign-in cookie, which a browser must also send (U8) [default: none].
    /// Only its presence is checked here; its value is for [`device_check`](Self::device_check).
    pub required_cookie: Option<String>,
    /// The app's own decision on each device, after the deny-list and the cookie (U8): for
    /// example, that the sign-in cookie is valid and whose device this is [default: none].
    pub device_check: Option<Arc<dyn DeviceCheck>>,
    /// Whether proofs must carry a nonce of this server (U3) [default: yes].
    pub require_nonce: bool,
    /// The secret nonces are derived from; instances that share it accept each other's
    /// nonces [default: random per process].
    pub nonce_secret: Option<Vec<u8>>,
    /// Assertions per DPoP key and minute (U9) [default: 30].
    pub per_key_per_minute: u32,
    /// Requests per client address and minute (U9) [default: 120].
    pub per_address_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client (as for sign-in).
    pub trusted_proxies: Vec<IpNet>,
}

impl CabConfig {
    /// The defaults for `client_id`, signed by `keyset`, at `public_url`.
    #[must_use]
    pub fn new(client_id: impl Into<String>, keyset: Keyset, public_url: Url) -> Self {
        Self {
            client_id: client_id.into(),
            keyset,
            allowed_origins: vec![public_url.origin().ascii_serialization()],
            public_url,
            target_policy: TargetPolicy::default(),
            http: None,
            replay: Arc::new(MemoryReplayStore::default()),
            denied_keys: DenyList::default(),
            required_cookie: None,
            device_check: None,
            require_nonce: true,
            nonce_secret: None,
            per_key_per_minute: 30,
            per_address_per_minute: 120,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Why a [`CabConfig`] cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CabConfigError {
    /// An allowed origin is not `scheme://host[:port]`.
    #[error("[U1] {0:?} is not an origin (scheme://host[:port], no path)")]
    Origin(String),
    /// No origin may ask.
    #[error("[U1] no allowed origin")]
    NoOrigin,
    /// The public URL cannot carry the route.
    #[error("the public URL {0} cannot be a base URL")]
    PublicUrl(String),
    /// The default HTTP client could not be built.
    #[error("the HTTP client: {0}")]
    Http(String),
    /// Randomness failed.
    #[error("randomness: {0}")]
    Random(String),
}

/// The backend: build once, mount [`router`](Self::router).
#[derive(Clone, Debug)]
pub struct ClientAssertionBackend {
    inner: Arc<Backend>,
}

#[derive(Debug)]
struct Backend {
    config: CabConfig,
    htu: String,
    audiences: audience::Audiences,
    nonces: Nonces,
    per_key: RateLimiter<String>,
    per_address: RateLimiter<IpAddr>,
    clock: SystemClock,
}

/// How far a proof's `iat` may be from our clock, either way.
const IAT_WINDOW_SECS: i64 = 60;

impl ClientAssertionBackend {
    /// Checks `config` and prepares the route.
    ///
    /// # Errors
    /// [`CabConfigError`] for an unusable origin or URL.
    pub fn new(config: CabConfig) -> Result<Self, CabConfigError> {
        if config.allowed_origins.is_empty() {
            return Err(CabConfigError::NoOrigin);
        }
        for origin in &config.allowed_origins {
            let parsed = Url::parse(origin).map_err(|_| CabConfigError::Origin(origin.clone()))?;
            if parsed.origin().ascii_serialization() != *origin {
                return Err(CabConfigError::Origin(origin.clone()));
            }
        }
        let endpoint = config
            .public_url
            .join(PATH)
            .map_err(|_| CabConfigError::PublicUrl(config.public_url.to_string()))?;
        let http = match &config.http {
            Some(http) => Arc::clone(http),
            None => default_http(config.target_policy)?,
        };
        let secret = match &config.nonce_secret {
            Some(secret) => secret.clone(),
            None => random_token(&OsRandomness, 32)
                .map_err(|e| CabConfigError::Random(e.to_string()))?
                .into_bytes(),
        };
        let minute = Duration::from_secs(60);
        Ok(Self {
            inner: Arc::new(Backend {
                htu: atoauth::protocol::dpop::htu(&endpoint),
                audiences: audience::Audiences::new(Discovery::new(
                    http,
                    config.target_policy,
                    DEFAULT_METADATA_TTL,
                )),
                nonces: Nonces::new(&secret),
                per_key: RateLimiter::new(config.per_key_per_minute, minute),
                per_address: RateLimiter::new(config.per_address_per_minute, minute),
                clock: SystemClock,
                config,
            }),
        })
    }

    /// `POST` (and the CORS preflight `OPTIONS`) at [`PATH`].
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route(
                PATH,
                post(route::assert)
                    .options(route::preflight)
                    // A larger body is refused while it is read, not after.
                    .layer(axum::extract::DefaultBodyLimit::max(route::MAX_BODY_BYTES)),
            )
            .with_state(self.clone())
    }

    /// The `client_id` assertions are signed for.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.config.client_id
    }

    /// The deny-list in force, to deny or allow devices while running.
    #[must_use]
    pub fn denied_keys(&self) -> &DenyList {
        &self.inner.config.denied_keys
    }
}

fn default_http(policy: TargetPolicy) -> Result<Arc<dyn HttpClient>, CabConfigError> {
    let client = atoauth::http::HardenedClient::builder()
        .target_policy(policy)
        .build()
        .map_err(|e| CabConfigError::Http(e.to_string()))?;
    Ok(Arc::new(client))
}

#[cfg(test)]
mod tests;
