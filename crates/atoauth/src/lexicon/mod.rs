//! Lexicon resolution, for permission sets (`include:` scopes): NSID → DNS TXT
//! `_lexicon.<authority>` → DID → DID document → PDS → `com.atproto.sync.getRecord` of
//! `com.atproto.lexicon.schema/<nsid>`, with the record's proof verified (commit signature, MST
//! path, CIDs) before the document is believed.
//!
//! [`LexiconResolver`] implements [`PermissionSetResolver`], so a client can expand the sets it
//! asks for ([`OAuthClientBuilder::permission_sets`](crate::OAuthClientBuilder::permission_sets)).

mod did_key;
mod proof;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;

use crate::http::{FetchLimits, HttpClient};
use crate::identity::IdentityResolver;
use crate::scope::{PermissionSet, PermissionSetResolver, ScopeError};
use crate::syntax::{Did, DidMethod, Nsid};

/// How long a resolved lexicon is kept (the official PDS re-fetches after 5 minutes too).
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a failure is remembered, so that a missing lexicon is not fetched on every call.
pub const DEFAULT_MISS_TTL: Duration = Duration::from_secs(30);
/// The largest record proof read (a lexicon is a few kilobytes; the proof adds the MST path).
pub const DEFAULT_MAX_BYTES: usize = 512 * 1024;
/// The longest one network step may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a lexicon could not be resolved. Each names the NSID and the step that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LexiconError {
    /// No usable `_lexicon` TXT record: none, several DIDs, or an unsupported DID.
    #[error("{nsid}: lexicon authority {name}: {reason}")]
    Authority {
        /// The lexicon.
        nsid: Nsid,
        /// The DNS name asked.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// The authority's DID or PDS could not be resolved.
    #[error("{nsid}: resolving {did}: {reason}")]
    Identity {
        /// The lexicon.
        nsid: Nsid,
        /// The authority's DID.
        did: Did,
        /// What failed.
        reason: String,
    },
    /// The PDS did not hand over the record (not found, an error, too slow, too large).
    #[error("{nsid}: fetching the lexicon record: {reason}")]
    Fetch {
        /// The lexicon.
        nsid: Nsid,
        /// What failed.
        reason: String,
    },
    /// The authority's repository proves it holds no lexicon of this NSID.
    #[error("{nsid}: {did}'s repository holds no such lexicon")]
    NotPublished {
        /// The lexicon.
        nsid: Nsid,
        /// The authority the TXT record named.
        did: Did,
    },
    /// The record's proof does not verify: it is not in the authority's signed repository.
    #[error("{nsid}: the record's proof does not verify: {reason}")]
    Proof {
        /// The lexicon.
        nsid: Nsid,
        /// Which check failed.
        reason: String,
    },
    /// The record is not a lexicon for this NSID, or not a permission set.
    #[error("{nsid}: {reason}")]
    Document {
        /// The lexicon.
        nsid: Nsid,
        /// What is wrong with it.
        reason: String,
    },
}

/// A lexicon document, proven to come from its authority's repository.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedLexicon {
    /// The lexicon's NSID.
    pub nsid: Nsid,
    /// The authority: the DID whose repository holds it.
    pub did: Did,
    /// The record's CID.
    pub cid: String,
    /// The lexicon document.
    pub document: serde_json::Value,
}

/// Resolves lexicons over the network and verifies them. Cheap to clone; clones share the
/// cache.
#[derive(Clone)]
pub struct LexiconResolver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LexiconResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LexiconResolver")
            .field("ttl", &self.inner.ttl)
            .field("miss_ttl", &self.inner.miss_ttl)
            .finish_non_exhaustive()
    }
}

type Cached = (Instant, Result<ResolvedLexicon, LexiconError>);

struct Inner {
    identity: IdentityResolver,
    http: Arc<dyn HttpClient>,
    dns: TokioResolver,
    ttl: Duration,
    miss_ttl: Duration,
    max_bytes: usize,
    timeout: Duration,
    cache: Mutex<HashMap<Nsid, Cached>>,
    /// One lookup per NSID at a time: later callers wait for it and read the cache.
    flights: Mutex<HashMap<Nsid, Arc<tokio::sync::Mutex<()>>>>,
}

/// Builds a [`LexiconResolver`].
#[must_use]
pub struct LexiconResolverBuilder {
    identity: IdentityResolver,
    http: Option<Arc<dyn HttpClient>>,
    dns: Option<TokioResolver>,
    ttl: Duration,
    miss_ttl: Duration,
    max_bytes: usize,
    timeout: Duration,
}

impl std::fmt::Debug for LexiconResolverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LexiconResolverBuilder")
            .finish_non_exhaustive()
    }
}

impl LexiconResolver {
    /// A resolver that finds authorities' DIDs and PDSs with `identity` (and its target
    /// policy: the same SSRF rules as sign-in).
    pub fn builder(identity: IdentityResolver) -> LexiconResolverBuilder {
        LexiconResolverBuilder {
            identity,
            http: None,
            dns: None,
            ttl: DEFAULT_TTL,
            miss_ttl: DEFAULT_MISS_TTL,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl LexiconResolverBuilder {
    /// The HTTP client for `getRecord` (default: a hardened client with the identity resolver's
    /// target policy).
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// The DNS resolver for `_lexicon` TXT records (default: the system's).
    pub fn dns_resolver(mut self, dns: TokioResolver) -> Self {
        self.dns = Some(dns);
        self
    }

    /// How long a resolved lexicon is kept (default [`DEFAULT_TTL`]).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a failure is remembered (default [`DEFAULT_MISS_TTL`]).
    pub fn miss_ttl(mut self, ttl: Duration) -> Self {
        self.miss_ttl = ttl;
        self
    }

    /// The largest record proof read (default [`DEFAULT_MAX_BYTES`]).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The longest one network step may take (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The resolver.
    ///
    /// # Errors
    /// When the default HTTP client or the system DNS configuration cannot be set up.
    pub fn build(self) -> Result<LexiconResolver, crate::identity::IdentityError> {
        let http = match self.http {
            Some(http) => http,
            None => crate::identity::default_http(self.identity.target_policy())?,
        };
        let dns = match self.dns {
            Some(dns) => dns,
            None => crate::identity::system_dns()?,
        };
        Ok(LexiconResolver {
            inner: Arc::new(Inner {
                identity: self.identity,
                http,
                dns,
                ttl: self.ttl,
                miss_ttl: self.miss_ttl,
                max_bytes: self.max_bytes,
                timeout: self.timeout,
                cache: Mutex::default(),
                flights: Mutex::default(),
            }),
        })
    }
}

impl LexiconResolver {
    /// The lexicon `nsid`, from the cache while fresh, else resolved and verified.
    ///
    /// # Errors
    /// [`LexiconError`] naming the step that failed (also remembered for the miss TTL).
    pub async fn resolve(&self, nsid: &Nsid) -> Result<ResolvedLexicon, LexiconError> {
        if let Some(hit) = self.cached(nsid) {
            return hit;
        }
        let flight = lock(&self.inner.flights)
            .entry(nsid.clone())
            .or_default()
            .clone();
        let _turn = flight.lock().await;
        if let Some(hit) = self.cached(nsid) {
            return hit;
        }
        let result = self.fetch(nsid).await;
        lock(&self.inner.cache).insert(nsid.clone(), (Instant::now(), result.clone()));
        lock(&self.inner.flights).remove(nsid);
        result
    }

    /// The permission set `nsid`.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), or [`LexiconError::Document`] when the lexicon is not a
    /// permission set.
    pub async fn permission_set(&self, nsid: &Nsid) -> Result<PermissionSet, LexiconError> {
        let lexicon = self.resolve(nsid).await?;
        PermissionSet::from_lexicon(&lexicon.document).map_err(|e| LexiconError::Document {
            nsid: nsid.clone(),
            reason: e.reason,
        })
    }

    /// Forgets every cached lexicon.
    pub fn clear(&self) {
        lock(&self.inner.cache).clear();
    }

    fn cached(&self, nsid: &Nsid) -> Option<Result<ResolvedLexicon, LexiconError>> {
        let cache = lock(&self.inner.cache);
        let (at, result) = cache.get(nsid)?;
        let ttl = if result.is_ok() {
            self.inner.ttl
        } else {
            self.inner.miss_ttl
        };
        (at.elapsed() < ttl).then(|| result.clone())
    }

    async fn fetch(&self, nsid: &Nsid) -> Result<ResolvedLexicon, LexiconError> {
        let did = self.authority(nsid).await?;
        let identity_failed = |reason: String| LexiconError::Identity {
            nsid: nsid.clone(),
            did: did.clone(),
            reason,
        };
        let document =
            tokio::time::timeout(self.inner.timeout, self.inner.identity.resolve_did(&did))
                .await
                .map_err(|_| identity_failed("timed out".to_owned()))?
                .map_err(|e| identity_failed(e.to_string()))?;
        let pds = document
            .pds_endpoint(self.inner.identity.target_policy())
            .map_err(identity_failed)?;
        let key = document
            .signing_key()
            .ok_or_else(|| {
                identity_failed("the DID document has no #atproto signing key".to_owned())
            })
            .and_then(|method| did_key::SigningKey::from_method(method).map_err(identity_failed))?;
        let car = self.get_record(nsid, &did, &pds).await?;
        let proof_failed = |reason: String| LexiconError::Proof {
            nsid: nsid.clone(),
            reason,
        };
        let blocks = proof::Blocks::read(&car).await.map_err(proof_failed)?;
        let path = format!("com.atproto.lexicon.schema/{nsid}");
        let record = proof::verify_record(&blocks, did.as_str(), &key, &path)
            .map_err(proof_failed)?
            .ok_or_else(|| LexiconError::NotPublished {
                nsid: nsid.clone(),
                did: did.clone(),
            })?;
        let bad = |reason: &str| LexiconError::Document {
            nsid: nsid.clone(),
            reason: reason.to_owned(),
        };
        if record.value["$type"] != "com.atproto.lexicon.schema" {
            return Err(bad("the record is not a com.atproto.lexicon.schema"));
        }
        if record.value["id"] != nsid.as_str() {
            return Err(bad("the lexicon's id differs from its record key"));
        }
        Ok(ResolvedLexicon {
            nsid: nsid.clone(),
            did,
            cid: record.cid.to_string(),
            document: record.value,
        })
    }

    /// `_lexicon.<authority reversed>`'s `did=` TXT value: the exact name, no walking up.
    async fn authority(&self, nsid: &Nsid) -> Result<Did, LexiconError> {
        let name = authority_name(nsid);
        let failed = |reason: String| LexiconError::Authority {
            nsid: nsid.clone(),
            name: name.clone(),
            reason,
        };
        let lookup = tokio::time::timeout(
            self.inner.timeout,
            self.inner.dns.txt_lookup(format!("{name}.")),
        )
        .await
        .map_err(|_| failed("the DNS lookup timed out".to_owned()))?
        .map_err(|e| {
            if e.is_no_records_found() || e.is_nx_domain() {
                failed("no TXT record".to_owned())
            } else {
                failed(format!("DNS: {e}"))
            }
        })?;
        let values = crate::identity::did_values(lookup.answers());
        let mut values = values.into_iter();
        let value = match (values.next(), values.next()) {
            (Some(value), None) => value,
            (None, _) => return Err(failed("no did= TXT record".to_owned())),
            (Some(_), Some(_)) => return Err(failed("several did= TXT records".to_owned())),
        };
        let did = Did::new(&value).map_err(|e| failed(format!("not a DID: {e}")))?;
        if did.method() == DidMethod::Other {
            return Err(failed(format!(
                "{did}: only did:plc and did:web are supported"
            )));
        }
        Ok(did)
    }

    /// The CAR of `com.atproto.sync.getRecord`, within the size and time limits.
    async fn get_record(
        &self,
        nsid: &Nsid,
        did: &Did,
        pds: &url::Url,
    ) -> Result<Vec<u8>, LexiconError> {
        let failed = |reason: String| LexiconError::Fetch {
            nsid: nsid.clone(),
            reason,
        };
        let mut url = pds
            .join("/xrpc/com.atproto.sync.getRecord")
            .map_err(|e| failed(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("did", did.as_str())
            .append_pair("collection", "com.atproto.lexicon.schema")
            .append_pair("rkey", nsid.as_str());
        let mut request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/vnd.ipld.car")
            .body(bytes::Bytes::new())
            .map_err(|e| failed(e.to_string()))?;
        FetchLimits {
            max_body_bytes: self.inner.max_bytes,
            redirects: 0,
            timeout: self.inner.timeout,
        }
        .apply(&mut request);
        let response = self
            .inner
            .http
            .send(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            let body = String::from_utf8_lossy(response.body());
            return Err(failed(format!(
                "HTTP {}: {}",
                response.status().as_u16(),
                body.chars().take(200).collect::<String>()
            )));
        }
        Ok(response.into_body())
    }
}

/// `_lexicon.` and the NSID's authority reversed: `app.bsky.auth.basic` → `_lexicon.auth.bsky.app`.
#[must_use]
pub fn authority_name(nsid: &Nsid) -> String {
    let reversed: Vec<&str> = nsid.authority().split('.').rev().collect();
    format!("_lexicon.{}", reversed.join("."))
}

impl PermissionSetResolver for LexiconResolver {
    fn resolve(
        &self,
        nsid: &Nsid,
    ) -> impl std::future::Future<Output = Result<Option<PermissionSet>, ScopeError>> + Send {
        let this = self.clone();
        let nsid = nsid.clone();
        async move {
            this.permission_set(&nsid)
                .await
                .map(Some)
                .map_err(|e| ScopeError::invalid_owned(&format!("include:{nsid}"), e.to_string()))
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_is_the_reversed_domain_without_the_name() {
        let nsid = Nsid::new("app.bsky.auth.basic").unwrap_or_else(|_| unreachable!());
        assert_eq!(authority_name(&nsid), "_lexicon.auth.bsky.app");
        let nsid = Nsid::new("com.example.calendar.auth").unwrap_or_else(|_| unreachable!());
        assert_eq!(authority_name(&nsid), "_lexicon.calendar.example.com");
    }
}
