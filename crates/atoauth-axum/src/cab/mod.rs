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
//! removed from the keyset (J6), a denied device or one without the app's sign-in cookie (U8),
//! and callers over their rate (U9). Nothing it logs contains a proof or an assertion (U10).
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
//! let app = axum::Router::new().merge(ClientAssertionBackend::new(config)?.router());
//! # let _ = app; Ok(()) }
//! ```

mod deny;
mod nonce;
mod proof;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use atoauth::Keyset;
use atoauth::http::{HttpClient, TargetPolicy};
use atoauth::protocol::crypto::{Clock, OsRandomness, SystemClock, random_token};
use atoauth::protocol::metadata::{DEFAULT_METADATA_TTL, Discovery};
use atoauth::store::{MemoryReplayStore, ReplayStore};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

pub use deny::DenyList;

use crate::guard::{RateLimiter, client_address};
use nonce::Nonces;
use proof::{Expected, ProofError};

/// The route's path.
pub const PATH: &str = "/oauth/client-assertion";

/// The largest request body read.
const MAX_BODY_BYTES: usize = 4096;

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
    pub required_cookie: Option<String>,
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
    discovery: Discovery,
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
                discovery: Discovery::new(http, config.target_policy, DEFAULT_METADATA_TTL),
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
            .route(PATH, post(assert).options(preflight))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertionAsk {
    aud: String,
    #[serde(default)]
    kid: Option<String>,
}

/// A refusal: status, OAuth-style error code, description.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

fn refuse(status: StatusCode, error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        status,
        error,
        description: description.into(),
    }
}

impl Backend {
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<String> {
        let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
        self.config
            .allowed_origins
            .iter()
            .find(|allowed| allowed.as_str() == origin)
            .cloned()
    }

    /// CORS and caching headers for an allowed origin (every answer to it, refusals too, so
    /// the page can read why).
    fn decorate(&self, response: &mut Response, origin: &str, now: i64) {
        let headers = response.headers_mut();
        if let Ok(origin) = HeaderValue::from_str(origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        // The browser client sends the app's cookies to its backend (for the optional cookie
        // check); the origin is named exactly, never `*`.
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("DPoP-Nonce"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.config.require_nonce
            && let Ok(nonce) = HeaderValue::from_str(&self.nonces.current(now))
        {
            headers.insert("dpop-nonce", nonce);
        }
    }

    /// Every check, then the assertion.
    async fn answer(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<serde_json::Value, Refusal> {
        if let Some(peer) = peer {
            let address = client_address(peer, headers, &self.config.trusted_proxies);
            if !self.per_address.allow(address) {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "[U9] too many requests from this address",
                ));
            }
        }
        if body.len() > MAX_BODY_BYTES {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the body is too large",
            ));
        }
        let ask: AssertionAsk = serde_json::from_slice(body).map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body must be {{\"aud\": issuer, \"kid\"?: key id}}: {e}"),
            )
        })?;
        let expected = Expected {
            htu: &self.htu,
            now,
            iat_window: IAT_WINDOW_SECS,
            nonce_required: self.config.require_nonce,
        };
        let proof = proof::check(headers, &expected, |nonce| self.nonces.accepts(nonce, now))
            .map_err(|error| match error {
                ProofError::Missing => refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    "[U3] one DPoP proof, made with the browser's key, is required",
                ),
                ProofError::Invalid(reason) => {
                    refuse(StatusCode::BAD_REQUEST, "invalid_dpop_proof", reason)
                }
                ProofError::Nonce => refuse(
                    StatusCode::UNAUTHORIZED,
                    "use_dpop_nonce",
                    "[U3] use the DPoP-Nonce of this answer",
                ),
            })?;
        let mark = format!(
            "cab-proof:{}",
            atoauth::protocol::crypto::sha256_base64url(
                format!("{}.{}", proof.jkt, proof.jti).as_bytes()
            )
        );
        let ttl = Duration::from_secs(u64::try_from(2 * IAT_WINDOW_SECS).unwrap_or(120));
        match self.config.replay.first_use(&mark, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    "[U3] this proof was used before",
                ));
            }
            Err(error) => {
                tracing::error!(%error, "client assertion: the replay store failed");
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the replay store failed",
                ));
            }
        }
        let device = short(&proof.jkt);
        if !self.per_key.allow(proof.jkt.clone()) {
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "[U9] too many assertions for this key",
            ));
        }
        if self.config.denied_keys.contains(&proof.jkt).await {
            tracing::warn!(
                device,
                "client assertion refused: the device's key is denied"
            );
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "access_denied",
                "[U8] this device's key is denied",
            ));
        }
        if let Some(cookie) = &self.config.required_cookie
            && !has_cookie(headers, cookie)
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "access_denied",
                "[U8] the app's sign-in cookie is missing",
            ));
        }
        let server = self
            .discovery
            .authorization_server(&ask.aud, false)
            .await
            .map_err(|error| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_audience",
                    format!("[U4] aud is not an authorization server: {error}"),
                )
            })?;
        let kid = match &ask.kid {
            Some(kid) if self.config.keyset.contains(kid) => kid.clone(),
            Some(kid) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "unknown_key",
                    format!("[J6] the key {kid:?} is no longer in the keyset"),
                ));
            }
            None => self.config.keyset.current_kid().to_owned(),
        };
        let assertion = self
            .config
            .keyset
            .assertion_for_dpop_key(
                &kid,
                &self.config.client_id,
                &server.issuer,
                &proof.jkt,
                &self.clock,
                &OsRandomness,
            )
            .ok()
            .flatten()
            .ok_or_else(|| {
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "signing failed",
                )
            })?;
        tracing::info!(device, kid, aud = %server.issuer, "client assertion issued");
        Ok(serde_json::json!({ "client_id": self.config.client_id, "client_assertion": assertion }))
    }
}

/// The start of a thumbprint, enough to tell devices apart in logs.
fn short(jkt: &str) -> &str {
    jkt.get(..12).unwrap_or(jkt)
}

fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(key, value)| key == name && !value.is_empty())
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn assert(
    State(backend): State<ClientAssertionBackend>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let backend = &backend.inner;
    let Some(origin) = backend.allowed_origin(&headers) else {
        tracing::warn!("client assertion refused: the origin is not allowed");
        let mut response = json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({"error": "access_denied", "error_description": "[U1] this origin may not ask for client assertions"}),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    };
    let now = backend.clock.unix_time();
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let mut response = match backend.answer(peer, &headers, &body, now).await {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(refusal) => {
            if refusal.status != StatusCode::FORBIDDEN {
                tracing::warn!(error = refusal.error, reason = %refusal.description, "client assertion refused");
            }
            let mut response = json(
                refusal.status,
                &serde_json::json!({"error": refusal.error, "error_description": refusal.description}),
            );
            if refusal.status == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            response
        }
    };
    backend.decorate(&mut response, &origin, now);
    response
}

async fn preflight(State(backend): State<ClientAssertionBackend>, headers: HeaderMap) -> Response {
    let backend = &backend.inner;
    let asks_post = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .is_some_and(|m| m == "POST");
    match backend.allowed_origin(&headers) {
        Some(origin) if asks_post => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            backend.decorate(&mut response, &origin, backend.clock.unix_time());
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, dpop"),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            response
        }
        _ => StatusCode::FORBIDDEN.into_response(),
    }
}

#[cfg(test)]
mod tests;
