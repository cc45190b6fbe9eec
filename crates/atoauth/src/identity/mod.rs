//! Identity resolution: handle → DID → DID document → PDS, verified both ways.
//!
//! Rules: the atproto identity specs (cited as A–J) and section E of the OAuth profile.
//!
//! - Handles resolve through DNS TXT and the HTTPS well-known concurrently, DNS preferred, or
//!   through an XRPC resolver service ([`HandleResolution`]).
//! - `did:plc` resolves through a configurable PLC directory, `did:web` through
//!   `/.well-known/did.json`; other methods are an [`IdentityError::UnsupportedDidMethod`].
//! - Verification is strict (G.31, G.32): a handle counts only if the DID document claims it and
//!   the handle resolves back to the DID. Resolving from a handle that the document does not
//!   claim fails with [`IdentityError::HandleMismatch`]; resolving from a DID whose handle does
//!   not verify reports `handle_verified: false`.
//! - Answers are cached ([`IdentityCache`]; hits 5 min, negative answers 1 min) and concurrent
//!   lookups of one name share one request. Auth-critical checks use
//!   [`IdentityResolver::resolve_fresh`], which bypasses the cache (H.35).
//! - Every fetch goes through the hardened [`crate::http::HttpClient`].
//!
//! ```no_run
//! use atoauth::identity::IdentityResolver;
//! use atoauth::syntax::AtIdentifier;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let resolver = IdentityResolver::builder().build()?;
//! let identity = resolver
//!     .resolve(&AtIdentifier::from_login_input("@alice.bsky.social")?)
//!     .await?;
//! println!("{} is on {}", identity.did, identity.pds);
//! # Ok(())
//! # }
//! ```

mod cache;
mod did;
mod document;
mod error;
mod handle;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub use cache::{IdentityCache, MemoryIdentityCache};
pub use document::{DidDocument, Service, VerificationMethod};
pub use error::IdentityError;
use handle::DnsResolver;
pub use handle::HandleResolution;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use handle::did_values;

use crate::http::{HttpClient, TargetPolicy};
use crate::syntax::{AtIdentifier, Did, Handle};
use cache::Flights;

/// The default PLC directory.
pub const DEFAULT_PLC_URL: &str = "https://plc.directory";
/// How long a resolved handle or document is cached (under the 10 minutes of H.34).
pub const DEFAULT_HIT_TTL: Duration = Duration::from_secs(5 * 60);
/// How long "not found" and "tombstoned" answers are cached.
pub const DEFAULT_MISS_TTL: Duration = Duration::from_secs(60);

/// A resolved and verified identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedIdentity {
    /// The DID: the account's permanent identifier.
    pub did: Did,
    /// The handle the DID document claims (lowercase), whether or not it verified.
    pub handle: Option<Handle>,
    /// True when `handle` resolves back to `did` (bidirectional verification passed).
    pub handle_verified: bool,
    /// The PDS from the document's `#atproto_pds` service.
    pub pds: Url,
    /// The DID document.
    pub document: DidDocument,
}

impl ResolvedIdentity {
    /// The handle to show: the verified handle, or `handle.invalid` (G.32).
    #[must_use]
    pub fn display_handle(&self) -> &str {
        match &self.handle {
            Some(handle) if self.handle_verified => handle.as_str(),
            _ => Handle::INVALID,
        }
    }
}

/// Resolves handles and DIDs. Cheap to clone; clones share the cache.
#[derive(Clone, Debug)]
pub struct IdentityResolver {
    inner: Arc<Inner>,
}

struct Inner {
    http: Arc<dyn HttpClient>,
    policy: TargetPolicy,
    plc_url: Url,
    handle_resolution: HandleResolution,
    dns: Option<DnsResolver>,
    well_known_base: Option<Url>,
    cache: Arc<dyn IdentityCache>,
    hit_ttl: Duration,
    miss_ttl: Duration,
    fetch_timeout: Option<Duration>,
    handle_flights: Flights<Handle, Did>,
    document_flights: Flights<Did, DidDocument>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("policy", &self.policy)
            .field("plc_url", &self.plc_url.as_str())
            .field("handle_resolution", &self.handle_resolution)
            .field("hit_ttl", &self.hit_ttl)
            .field("miss_ttl", &self.miss_ttl)
            .finish_non_exhaustive()
    }
}

/// Builds an [`IdentityResolver`].
#[derive(Debug, Default)]
#[must_use]
pub struct IdentityResolverBuilder {
    http: Option<Arc<dyn HttpClient>>,
    policy: TargetPolicy,
    plc_url: Option<Url>,
    handle_resolution: Option<HandleResolution>,
    dns: Option<DnsResolver>,
    well_known_base: Option<Url>,
    cache: Option<Arc<dyn IdentityCache>>,
    hit_ttl: Option<Duration>,
    miss_ttl: Option<Duration>,
    fetch_timeout: Option<Duration>,
}

impl IdentityResolverBuilder {
    /// The HTTP client (default: a [`HardenedClient`](crate::http::HardenedClient) with the
    /// target policy below).
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// The target policy; it also decides whether `http` PDS endpoints and `did:web:localhost`
    /// are accepted. [`TargetPolicy::PublicHttpsOnly`] unless changed.
    pub fn target_policy(mut self, policy: TargetPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The PLC directory (default [`DEFAULT_PLC_URL`]).
    pub fn plc_url(mut self, url: Url) -> Self {
        self.plc_url = Some(url);
        self
    }

    /// How handles are resolved (default [`HandleResolution::DnsAndWellKnown`]).
    pub fn handle_resolution(mut self, resolution: HandleResolution) -> Self {
        self.handle_resolution = Some(resolution);
        self
    }

    /// The DNS resolver for TXT lookups (default: the system configuration).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn dns_resolver(mut self, dns: hickory_resolver::TokioResolver) -> Self {
        self.dns = Some(dns);
        self
    }

    /// Fetch every handle's well-known from `base` + `/.well-known/atproto-did`, with the handle
    /// in the `Host` header, instead of from `https://<handle>`. For tests and local development
    /// against servers that answer for several handles by `Host` (the reference PDS does).
    pub fn insecure_handle_well_known_base(mut self, base: Url) -> Self {
        self.well_known_base = Some(base);
        self
    }

    /// The cache (default: a [`MemoryIdentityCache`] of 10,000 entries).
    pub fn cache(mut self, cache: Arc<dyn IdentityCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// How long resolved answers are cached (default [`DEFAULT_HIT_TTL`]).
    pub fn hit_ttl(mut self, ttl: Duration) -> Self {
        self.hit_ttl = Some(ttl);
        self
    }

    /// How long negative answers are cached (default [`DEFAULT_MISS_TTL`]).
    pub fn miss_ttl(mut self, ttl: Duration) -> Self {
        self.miss_ttl = Some(ttl);
        self
    }

    /// The longest one HTTP fetch may take (default: 10 s for documents, 5 s for the handle
    /// well-known).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = Some(timeout);
        self
    }

    /// Builds the resolver.
    ///
    /// # Errors
    /// When the default HTTP client cannot be built, or the system DNS configuration cannot be
    /// read while DNS is needed. In a browser (wasm32), when handles are not resolved through
    /// a service ([`HandleResolution::Service`]): there is no DNS there, and the handle's
    /// well-known is a cross-origin fetch that its server rarely allows.
    pub fn build(self) -> Result<IdentityResolver, IdentityError> {
        let http: Arc<dyn HttpClient> = match self.http {
            Some(http) => http,
            None => default_http(self.policy)?,
        };
        let handle_resolution = self
            .handle_resolution
            .unwrap_or(HandleResolution::DnsAndWellKnown);
        let needs_dns = !matches!(handle_resolution, HandleResolution::Service(_));
        let dns = match self.dns {
            Some(dns) => Some(dns),
            None if needs_dns => Some(system_dns()?),
            None => None,
        };
        let plc_url = match self.plc_url {
            Some(url) => url,
            None => Url::parse(DEFAULT_PLC_URL).map_err(|e| IdentityError::Network {
                what: DEFAULT_PLC_URL.to_owned(),
                source: Some(Arc::new(e)),
            })?,
        };
        Ok(IdentityResolver {
            inner: Arc::new(Inner {
                http,
                policy: self.policy,
                plc_url,
                handle_resolution,
                dns,
                well_known_base: self.well_known_base,
                cache: self
                    .cache
                    .unwrap_or_else(|| Arc::new(MemoryIdentityCache::default())),
                hit_ttl: self.hit_ttl.unwrap_or(DEFAULT_HIT_TTL),
                miss_ttl: self.miss_ttl.unwrap_or(DEFAULT_MISS_TTL),
                fetch_timeout: self.fetch_timeout,
                handle_flights: Flights::default(),
                document_flights: Flights::default(),
            }),
        })
    }
}

impl Inner {
    /// `base`, with the configured fetch timeout if any.
    fn limits(&self, base: crate::http::FetchLimits) -> crate::http::FetchLimits {
        crate::http::FetchLimits {
            timeout: self.fetch_timeout.unwrap_or(base.timeout),
            ..base
        }
    }

    /// One GET through the resolver's HTTP client, with `limits` (the configured timeout wins).
    async fn get(
        &self,
        url: &str,
        headers: &[(http::header::HeaderName, &str)],
        limits: crate::http::FetchLimits,
    ) -> Result<crate::http::Response, crate::http::HttpError> {
        let mut request = http::Request::get(url);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let mut request = request.body(bytes::Bytes::new()).map_err(|e| {
            crate::http::HttpError::ForbiddenTarget {
                url: url.to_owned(),
                reason: e.to_string(),
            }
        })?;
        self.limits(limits).apply(&mut request);
        self.http.send(request).await
    }
}

#[cfg(all(feature = "reqwest", not(target_arch = "wasm32")))]
pub(crate) fn default_http(policy: TargetPolicy) -> Result<Arc<dyn HttpClient>, IdentityError> {
    Ok(Arc::new(
        crate::http::HardenedClient::builder()
            .target_policy(policy)
            .build()?,
    ))
}

#[cfg(any(not(feature = "reqwest"), target_arch = "wasm32"))]
pub(crate) fn default_http(_: TargetPolicy) -> Result<Arc<dyn HttpClient>, IdentityError> {
    Err(IdentityError::Network {
        what: "no HTTP client: enable the `reqwest` feature or call http_client()".to_owned(),
        source: None,
    })
}

/// In a browser: no DNS, so handle resolution must go through a service.
#[cfg(target_arch = "wasm32")]
pub(crate) fn system_dns() -> Result<DnsResolver, IdentityError> {
    Err(IdentityError::Network {
        what: "handle resolution in a browser: there is no DNS; configure a handle resolver \
               service (HandleResolution::Service, an XRPC com.atproto.identity.resolveHandle \
               endpoint such as your PDS or an app view)"
            .to_owned(),
        source: None,
    })
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn system_dns() -> Result<DnsResolver, IdentityError> {
    let mut builder = DnsResolver::builder_tokio().map_err(|e| IdentityError::Network {
        what: "reading the system DNS configuration".to_owned(),
        source: Some(Arc::new(e)),
    })?;
    let options = builder.options_mut();
    options.timeout = Duration::from_secs(3);
    options.attempts = 2;
    builder.build().map_err(|e| IdentityError::Network {
        what: "building the DNS resolver".to_owned(),
        source: Some(Arc::new(e)),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Freshness {
    Cached,
    Fresh,
}

impl IdentityResolver {
    /// A builder with the secure defaults.
    pub fn builder() -> IdentityResolverBuilder {
        IdentityResolverBuilder::default()
    }

    /// The target policy this resolver enforces.
    #[must_use]
    pub fn target_policy(&self) -> TargetPolicy {
        self.inner.policy
    }

    /// Resolves a handle or DID to a verified identity, using the cache.
    ///
    /// # Errors
    /// Any [`IdentityError`]; from a handle, [`IdentityError::HandleMismatch`] when the DID
    /// document does not claim it.
    pub async fn resolve(&self, input: &AtIdentifier) -> Result<ResolvedIdentity, IdentityError> {
        self.resolve_with(input, Freshness::Cached).await
    }

    /// Like [`resolve`](Self::resolve), bypassing the cache: for the checks an auth flow depends
    /// on (token `sub`, migration before refresh). The fresh answers refill the cache.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve).
    pub async fn resolve_fresh(
        &self,
        input: &AtIdentifier,
    ) -> Result<ResolvedIdentity, IdentityError> {
        self.resolve_with(input, Freshness::Fresh).await
    }

    /// Handle → DID only (no verification), using the cache.
    ///
    /// # Errors
    /// [`IdentityError::ReservedHandle`], [`IdentityError::HandleNotFound`],
    /// [`IdentityError::HandleAmbiguous`], or a transport error.
    pub async fn resolve_handle(&self, handle: &Handle) -> Result<Did, IdentityError> {
        self.handle_to_did(handle, Freshness::Cached).await
    }

    /// The handle's DID from its DNS TXT record alone (`_atproto.<handle>`, D.16), uncached:
    /// for diagnostics that check each method separately.
    ///
    /// # Errors
    /// What the DNS method found wrong (no record, several, malformed, a failed lookup).
    pub async fn resolve_handle_by_dns(&self, handle: &Handle) -> Result<Did, IdentityError> {
        handle::dns_txt(&self.inner, handle).await
    }

    /// The handle's DID from `https://<handle>/.well-known/atproto-did` alone (D.17), uncached.
    ///
    /// # Errors
    /// What the HTTPS method found wrong.
    pub async fn resolve_handle_by_well_known(
        &self,
        handle: &Handle,
    ) -> Result<Did, IdentityError> {
        handle::well_known(&self.inner, handle).await
    }

    /// DID → document only, using the cache.
    ///
    /// # Errors
    /// [`IdentityError::UnsupportedDidMethod`], [`IdentityError::DidNotFound`],
    /// [`IdentityError::DidTombstoned`], an invalid document, or a transport error.
    pub async fn resolve_did(&self, did: &Did) -> Result<DidDocument, IdentityError> {
        self.did_to_document(did, Freshness::Cached).await
    }

    async fn resolve_with(
        &self,
        input: &AtIdentifier,
        freshness: Freshness,
    ) -> Result<ResolvedIdentity, IdentityError> {
        match input {
            AtIdentifier::Handle(handle) => {
                let did = self.handle_to_did(handle, freshness).await?;
                let document = self.did_to_document(&did, freshness).await?;
                // G.31: the document must claim the handle we started from.
                let claimed = document.claimed_handle();
                if claimed.as_ref() != Some(handle) {
                    return Err(IdentityError::HandleMismatch {
                        handle: handle.to_string(),
                        did: did.to_string(),
                        claimed: claimed.map_or_else(|| "no handle".to_owned(), String::from),
                    });
                }
                self.finish(did, document, Some(handle.clone()), true)
            }
            AtIdentifier::Did(did) => {
                let document = self.did_to_document(did, freshness).await?;
                // G.32: the claimed handle must resolve back; failures only unverify it.
                let claimed = document.claimed_handle();
                let verified = match &claimed {
                    Some(handle) if !handle.is_reserved() => self
                        .handle_to_did(handle, freshness)
                        .await
                        .is_ok_and(|back| &back == did),
                    _ => false,
                };
                self.finish(did.clone(), document, claimed, verified)
            }
        }
    }

    fn finish(
        &self,
        did: Did,
        document: DidDocument,
        handle: Option<Handle>,
        handle_verified: bool,
    ) -> Result<ResolvedIdentity, IdentityError> {
        let pds = document.pds_endpoint(self.inner.policy).map_err(|reason| {
            IdentityError::NoPdsEndpoint {
                did: did.to_string(),
                reason,
            }
        })?;
        Ok(ResolvedIdentity {
            did,
            handle,
            handle_verified,
            pds,
            document,
        })
    }

    async fn handle_to_did(
        &self,
        handle: &Handle,
        freshness: Freshness,
    ) -> Result<Did, IdentityError> {
        if handle.is_reserved() {
            return Err(IdentityError::ReservedHandle {
                handle: handle.to_string(),
            });
        }
        let inner = &self.inner;
        self.lookup(
            handle,
            freshness,
            &inner.handle_flights,
            |h| inner.cache.handle(h),
            |h, answer, ttl| inner.cache.store_handle(h, answer, ttl),
            || handle::resolve(inner, handle),
        )
        .await
    }

    async fn did_to_document(
        &self,
        did: &Did,
        freshness: Freshness,
    ) -> Result<DidDocument, IdentityError> {
        let inner = &self.inner;
        self.lookup(
            did,
            freshness,
            &inner.document_flights,
            |d| inner.cache.document(d),
            |d, answer, ttl| inner.cache.store_document(d, answer, ttl),
            || did::fetch_document(inner, did),
        )
        .await
    }

    /// The cache (unless a fresh answer is wanted), else one coalesced fetch whose answer is
    /// cached for the TTL its kind deserves.
    async fn lookup<K, V, Fut>(
        &self,
        key: &K,
        freshness: Freshness,
        flights: &Flights<K, V>,
        cached: impl Fn(&K) -> Option<Result<V, IdentityError>>,
        store: impl Fn(&K, Result<V, IdentityError>, Duration),
        fetch: impl FnOnce() -> Fut,
    ) -> Result<V, IdentityError>
    where
        K: std::hash::Hash + Eq + Clone,
        V: Clone,
        Fut: std::future::Future<Output = Result<V, IdentityError>>,
    {
        if freshness == Freshness::Cached
            && let Some(hit) = cached(key)
        {
            return hit;
        }
        flights
            .run(key, || async {
                // Another lookup may have just finished and filled the cache.
                if freshness == Freshness::Cached
                    && let Some(hit) = cached(key)
                {
                    return hit;
                }
                let answer = fetch().await;
                if let Some(ttl) = self.ttl_for(&answer) {
                    store(key, answer.clone(), ttl);
                }
                answer
            })
            .await
    }

    fn ttl_for<T>(&self, answer: &Result<T, IdentityError>) -> Option<Duration> {
        match answer {
            Ok(_) => Some(self.inner.hit_ttl),
            Err(error) if error.is_negative_answer() => Some(self.inner.miss_ttl),
            Err(_) => None,
        }
    }
}
