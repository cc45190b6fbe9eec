//! Authorization-server discovery (section F): PDS → protected-resource metadata →
//! authorization-server metadata, every document validated (F1–F5), fetched through the hardened
//! HTTP path with no redirects (F9, S1), and cached briefly.

mod authorization_server;
mod origin;
mod protected_resource;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::time::Instant;

pub use authorization_server::AuthorizationServerMetadata;
pub(crate) use origin::bare_origin_problem;
pub use protected_resource::ProtectedResourceMetadata;
use serde_json::Value;
use url::Url;

use crate::http::{FetchLimits, HttpClient, HttpError, TargetPolicy};
use crate::rules::{Violation, Violations};

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The fetch failed (network, refused target, redirect, size, time).
    #[error("could not fetch {url}")]
    Fetch {
        /// The document URL.
        url: String,
        /// The transport error.
        #[source]
        source: HttpError,
    },
    /// The server answered, but not with HTTP 200 and a JSON object (F1, F4).
    #[error("{url} answered {detail}; expected HTTP 200 with a JSON object ({rule})")]
    BadResponse {
        /// The document URL.
        url: String,
        /// `F1` or `F4`.
        rule: &'static str,
        /// The status or content problem.
        detail: String,
    },
    /// The document breaks rules of the profile.
    #[error("{url} is not valid: {violations}")]
    Invalid {
        /// The document URL.
        url: String,
        /// Every rule it breaks.
        violations: Violations,
    },
    /// F5: the authorization server does not list the PDS among its protected resources.
    #[error("[F5] {issuer} does not list {resource} among its protected resources")]
    ResourceNotListed {
        /// The authorization server.
        issuer: String,
        /// The PDS origin.
        resource: String,
    },
    /// The login input is not a URL that can be a server.
    #[error("{input:?} is not a server URL: {reason}")]
    BadServerUrl {
        /// What was given.
        input: String,
        /// Why it is refused.
        reason: String,
    },
    /// F6: a server URL that is neither a PDS nor an authorization server.
    #[error(
        "[F6] {url} is neither a PDS (its protected-resource metadata: {as_resource}) nor an \
         authorization server ({as_issuer})"
    )]
    NotAServer {
        /// The URL given.
        url: String,
        /// Why it failed as a PDS.
        as_resource: Box<Self>,
        /// Why it failed as an issuer.
        as_issuer: Box<Self>,
    },
}

impl MetadataError {
    /// The rule ids this error is about (for tools).
    #[must_use]
    pub fn rules(&self) -> Vec<&'static str> {
        match self {
            Self::BadResponse { rule, .. } => vec![rule],
            Self::Invalid { violations, .. } => violations.0.iter().map(|v| v.rule).collect(),
            Self::ResourceNotListed { .. } => vec!["F5"],
            Self::NotAServer { .. } => vec!["F6"],
            Self::Fetch { .. } | Self::BadServerUrl { .. } => vec!["F9"],
        }
    }
}

/// The authorization server responsible for a PDS, with both documents.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// The PDS's protected-resource metadata, when discovery started from a PDS.
    pub resource: Option<ProtectedResourceMetadata>,
    /// The authorization server's metadata.
    pub server: Arc<AuthorizationServerMetadata>,
}

type Cached<T> = Mutex<HashMap<String, (Instant, T)>>;

/// Fetches and validates OAuth server metadata, with a short cache.
pub struct Discovery {
    http: Arc<dyn HttpClient>,
    policy: TargetPolicy,
    ttl: Duration,
    resources: Cached<ProtectedResourceMetadata>,
    servers: Cached<Arc<AuthorizationServerMetadata>>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("policy", &self.policy)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// How long validated metadata is reused by default.
pub const DEFAULT_METADATA_TTL: Duration = Duration::from_secs(60);

impl Discovery {
    /// Discovery through `http`, refusing targets `policy` refuses, caching for `ttl`.
    #[must_use]
    pub fn new(http: Arc<dyn HttpClient>, policy: TargetPolicy, ttl: Duration) -> Self {
        Self {
            http,
            policy,
            ttl,
            resources: Mutex::default(),
            servers: Mutex::default(),
            timeout: None,
        }
    }

    /// Every fetch gives up after `timeout` (default: 10 s, [`FetchLimits::METADATA`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The target policy in force.
    #[must_use]
    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    /// F1–F5 from a PDS URL (as named by a DID document). `fresh` bypasses the cache (L4).
    ///
    /// # Errors
    /// The first step that fails, with every rule it breaks.
    pub async fn for_pds(&self, pds: &Url, fresh: bool) -> Result<Discovered, MetadataError> {
        let resource = self.protected_resource(pds, fresh).await?;
        let server = self
            .authorization_server(&resource.authorization_server, fresh)
            .await?;
        if !server.lists_resource(&resource.resource) {
            return Err(MetadataError::ResourceNotListed {
                issuer: server.issuer.clone(),
                resource: resource.resource,
            });
        }
        Ok(Discovered {
            resource: Some(resource),
            server,
        })
    }

    /// F6: a URL the user typed — a PDS first, then an authorization server (an entryway).
    ///
    /// # Errors
    /// [`MetadataError::NotAServer`] with both failures when it is neither.
    pub async fn for_server_url(&self, url: &Url) -> Result<Discovered, MetadataError> {
        let as_resource = match self.for_pds(url, false).await {
            Ok(found) => return Ok(found),
            Err(error) => error,
        };
        let issuer = crate::http::origin_of(url);
        match self.authorization_server(&issuer, false).await {
            Ok(server) => Ok(Discovered {
                resource: None,
                server,
            }),
            Err(as_issuer) => Err(MetadataError::NotAServer {
                url: issuer,
                as_resource: Box::new(as_resource),
                as_issuer: Box::new(as_issuer),
            }),
        }
    }

    /// `/.well-known/oauth-protected-resource` of `pds`, validated (F1–F3).
    ///
    /// # Errors
    /// When it cannot be fetched or is invalid.
    pub async fn protected_resource(
        &self,
        pds: &Url,
        fresh: bool,
    ) -> Result<ProtectedResourceMetadata, MetadataError> {
        let origin = crate::http::origin_of(pds);
        if !fresh && let Some(hit) = self.cached(&self.resources, &origin) {
            return Ok(hit);
        }
        let url = format!("{origin}/.well-known/oauth-protected-resource");
        let document = self.fetch_json(&url, "F1").await?;
        let metadata = ProtectedResourceMetadata::parse(&document, &origin, self.policy)
            .map_err(|violations| invalid(&url, violations))?;
        self.store(&self.resources, origin, metadata.clone());
        Ok(metadata)
    }

    /// `/.well-known/oauth-authorization-server` of `issuer`, validated (F4).
    ///
    /// # Errors
    /// When it cannot be fetched or is invalid.
    pub async fn authorization_server(
        &self,
        issuer: &str,
        fresh: bool,
    ) -> Result<Arc<AuthorizationServerMetadata>, MetadataError> {
        if let Some(problem) = bare_origin_problem(issuer, self.policy) {
            return Err(invalid(issuer, vec![Violation::new("F3", problem)]));
        }
        if !fresh && let Some(hit) = self.cached(&self.servers, issuer) {
            return Ok(hit);
        }
        let url = format!("{issuer}/.well-known/oauth-authorization-server");
        let document = self.fetch_json(&url, "F4").await?;
        let metadata = AuthorizationServerMetadata::parse(&document, issuer, self.policy)
            .map_err(|violations| invalid(&url, violations))?;
        let metadata = Arc::new(metadata);
        self.store(&self.servers, issuer.to_owned(), Arc::clone(&metadata));
        Ok(metadata)
    }

    /// Fetches `url` as metadata is fetched (hardened, no redirects, 64 KiB) and returns the JSON
    /// object unvalidated, for tools that report every rule themselves. `rule` names the rule
    /// an unusable answer breaks (`F1` for a protected-resource document, `F4` otherwise).
    ///
    /// # Errors
    /// A failed fetch, a status other than 200, another content type, or no JSON object.
    pub async fn fetch_document(
        &self,
        url: &str,
        rule: &'static str,
    ) -> Result<Value, MetadataError> {
        self.fetch_json(url, rule).await
    }

    async fn fetch_json(&self, url: &str, rule: &'static str) -> Result<Value, MetadataError> {
        let fetch_error = |source| MetadataError::Fetch {
            url: url.to_owned(),
            source,
        };
        let mut request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(bytes::Bytes::new())
            .map_err(|e| MetadataError::BadServerUrl {
                input: url.to_owned(),
                reason: e.to_string(),
            })?;
        FetchLimits {
            timeout: self.timeout.unwrap_or(FetchLimits::METADATA.timeout),
            ..FetchLimits::METADATA
        }
        .apply(&mut request);
        let response = self.http.send(request).await.map_err(fetch_error)?;
        let bad = |detail: String| MetadataError::BadResponse {
            url: url.to_owned(),
            rule,
            detail,
        };
        if response.status() != http::StatusCode::OK {
            return Err(bad(format!("HTTP {}", response.status().as_u16())));
        }
        if !is_json(&response) {
            return Err(bad("a content type other than application/json".to_owned()));
        }
        match serde_json::from_slice::<Value>(response.body()) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) => Err(bad("JSON that is not an object".to_owned())),
            Err(e) => Err(bad(format!("malformed JSON ({e})"))),
        }
    }

    fn cached<T: Clone>(&self, cache: &Cached<T>, key: &str) -> Option<T> {
        let cache = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    fn store<T>(&self, cache: &Cached<T>, key: String, value: T) {
        let mut cache = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
        cache.insert(key, (Instant::now(), value));
    }
}

fn invalid(url: &str, violations: Vec<Violation>) -> MetadataError {
    MetadataError::Invalid {
        url: url.to_owned(),
        violations: Violations(violations),
    }
}

/// Whether the response's content type is `application/json` (parameters allowed).
pub(crate) fn is_json(response: &crate::http::Response) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests;
