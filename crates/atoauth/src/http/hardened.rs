//! [`HardenedClient`]: the default [`HttpClient`] on reqwest + rustls (ring).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::display_url;
use super::{FetchLimits, HttpClient, HttpError, HttpFuture, Request, Response, TargetPolicy};

/// A rustls client configuration with the ring provider and the Mozilla root certificates
/// (webpki-roots), independent of any process-wide default provider.
///
/// # Errors
/// Only if ring lacks the default protocol versions, which does not happen with the versions we
/// depend on; the error is returned rather than assumed.
pub fn tls_client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// [`tls_client_config`] that also trusts the certificates in each PEM of `pems`.
fn with_extra_roots(
    pems: &[Vec<u8>],
) -> Result<rustls::ClientConfig, Box<dyn std::error::Error + Send + Sync>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for pem in pems {
        let mut found = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            roots.add(certificate?)?;
            found += 1;
        }
        if found == 0 {
            return Err("no PEM certificate in the extra roots".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The hardened HTTP client (S1): public addresses only, checked at connect time; no proxies;
/// redirects only where a request's [`FetchLimits`] allow them; timeouts and body caps.
#[derive(Clone, Debug)]
pub struct HardenedClient {
    inner: reqwest::Client,
    policy: TargetPolicy,
}

/// Builds a [`HardenedClient`].
#[derive(Debug, Default)]
#[must_use]
pub struct HardenedClientBuilder {
    policy: TargetPolicy,
    overrides: HashMap<String, Vec<SocketAddr>>,
    extra_roots_pem: Vec<Vec<u8>>,
    connect_timeout: Option<Duration>,
    user_agent: Option<String>,
}

impl HardenedClientBuilder {
    /// Which targets may be reached; [`TargetPolicy::PublicHttpsOnly`] unless changed.
    pub fn target_policy(mut self, policy: TargetPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Also trust the certificate authorities in `pem` (one or more PEM certificates), besides
    /// the Mozilla roots: for a test machine's own HTTPS hosts (the official PDS harness's
    /// client host). Never in production: whoever holds such a CA's key can impersonate any
    /// server to this client.
    pub fn insecure_trust_roots_pem(mut self, pem: &[u8]) -> Self {
        self.extra_roots_pem.push(pem.to_vec());
        self
    }

    /// Resolve `host` to these addresses instead of asking DNS. The addresses are still checked
    /// against the target policy at connect time. Tests use it to point a handle at a local server.
    pub fn resolve_override(mut self, host: &str, addresses: Vec<SocketAddr>) -> Self {
        self.overrides.insert(host.to_ascii_lowercase(), addresses);
        self
    }

    /// The TCP connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The `User-Agent` header (default `atoauth/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Build the client.
    ///
    /// # Errors
    /// When the TLS configuration or the reqwest client cannot be built.
    pub fn build(self) -> Result<HardenedClient, HttpError> {
        let build_error = |source: Box<dyn std::error::Error + Send + Sync>| HttpError::Network {
            url: String::new(),
            source,
        };
        let mut tls = tls_client_config().map_err(|e| build_error(Box::new(e)))?;
        if !self.extra_roots_pem.is_empty() {
            tls = with_extra_roots(&self.extra_roots_pem).map_err(build_error)?;
        }
        let resolver = PolicyResolver {
            policy: self.policy,
            overrides: Arc::new(self.overrides),
        };
        let inner = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(resolver)
            .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(5)))
            .user_agent(
                self.user_agent
                    .unwrap_or_else(|| concat!("atoauth/", env!("CARGO_PKG_VERSION")).to_owned()),
            )
            .build()
            .map_err(|e| build_error(Box::new(e)))?;
        Ok(HardenedClient {
            inner,
            policy: self.policy,
        })
    }
}

impl HardenedClient {
    /// A builder with the secure defaults.
    pub fn builder() -> HardenedClientBuilder {
        HardenedClientBuilder::default()
    }

    /// The target policy this client enforces.
    #[must_use]
    pub fn target_policy(&self) -> TargetPolicy {
        self.policy
    }

    /// Checks what can be checked before connecting: the scheme, and an IP-literal host (which
    /// never passes through the resolver).
    fn check_url(&self, url: &reqwest::Url) -> Result<(), HttpError> {
        let refuse = |reason: &str| HttpError::ForbiddenTarget {
            url: url_for_display(url),
            reason: reason.to_owned(),
        };
        if !self.policy.allows_scheme(url.scheme()) {
            return Err(refuse("only https is allowed"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("URLs with credentials are not fetched"));
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) if !self.policy.allows_ip(IpAddr::V4(ip)) => {
                Err(refuse("the address is not public"))
            }
            Some(url::Host::Ipv6(ip)) if !self.policy.allows_ip(IpAddr::V6(ip)) => {
                Err(refuse("the address is not public"))
            }
            Some(_) => Ok(()),
            None => Err(refuse("the URL has no host")),
        }
    }

    async fn send_checked(&self, request: Request) -> Result<Response, HttpError> {
        let limits = FetchLimits::of(&request);
        let (parts, body) = request.into_parts();
        let mut url = reqwest::Url::parse(&parts.uri.to_string()).map_err(|_| {
            HttpError::ForbiddenTarget {
                url: display_url(&parts.uri),
                reason: "not an absolute URL".to_owned(),
            }
        })?;
        let mut method = parts.method.clone();
        let mut body = Some(body);
        let deadline = tokio::time::Instant::now() + limits.timeout;
        for hop in 0..=limits.redirects {
            self.check_url(&url)?;
            let mut builder = self.inner.request(method.clone(), url.clone());
            for (name, value) in &parts.headers {
                builder = builder.header(name, value);
            }
            if let Some(bytes) = body.take() {
                builder = builder.body(bytes);
            }
            let exchange = async {
                let response = builder.send().await.map_err(|e| classify(&url, e))?;
                read_limited(&url, response, limits.max_body_bytes).await
            };
            let response = tokio::time::timeout_at(deadline, exchange)
                .await
                .map_err(|_| HttpError::Timeout {
                    url: url_for_display(&url),
                })??;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let next = match location.map(|l| url.join(l)) {
                Some(Ok(next)) if hop < limits.redirects && next.scheme() == url.scheme() => next,
                // No Location: the 3xx itself is the answer for the caller to judge.
                None => return Ok(response),
                _ => {
                    return Err(HttpError::Redirect {
                        url: url_for_display(&url),
                    });
                }
            };
            // Only GET and HEAD are ever redirected; bodies are not replayed to a new target.
            if method != http::Method::GET && method != http::Method::HEAD {
                return Err(HttpError::Redirect {
                    url: url_for_display(&url),
                });
            }
            method = http::Method::GET;
            url = next;
        }
        Err(HttpError::Redirect {
            url: url_for_display(&url),
        })
    }
}

impl HttpClient for HardenedClient {
    fn send(&self, request: Request) -> HttpFuture<'_> {
        Box::pin(self.send_checked(request))
    }
}

async fn read_limited(
    url: &reqwest::Url,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Response, HttpError> {
    let too_large = || HttpError::TooLarge {
        url: url_for_display(url),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(url, e))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    builder.body(body).map_err(|e| HttpError::Network {
        url: url_for_display(url),
        source: Box::new(e),
    })
}

fn classify(url: &reqwest::Url, error: reqwest::Error) -> HttpError {
    // A refusal by our resolver surfaces as a connect error whose chain holds a ForbiddenAddress.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = cause {
        if let Some(forbidden) = current.downcast_ref::<ForbiddenAddress>() {
            return HttpError::ForbiddenTarget {
                url: url_for_display(url),
                reason: forbidden.to_string(),
            };
        }
        cause = current.source();
    }
    if error.is_timeout() {
        return HttpError::Timeout {
            url: url_for_display(url),
        };
    }
    HttpError::Network {
        url: url_for_display(url),
        source: Box::new(error.without_url()),
    }
}

fn url_for_display(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Resolves names, then keeps only the addresses the policy allows. reqwest calls it for every
/// new connection, so the check applies to the address actually connected to.
#[derive(Clone, Debug)]
struct PolicyResolver {
    policy: TargetPolicy,
    overrides: Arc<HashMap<String, Vec<SocketAddr>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to addresses that are not allowed ({addresses})")]
struct ForbiddenAddress {
    host: String,
    addresses: String,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let found: Vec<SocketAddr> = match this.overrides.get(&host) {
                Some(addresses) => addresses.clone(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|address| this.policy.allows_ip(address.ip()))
                .collect();
            if allowed.is_empty() {
                let addresses = found
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let refusal: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(ForbiddenAddress { host, addresses });
                return Err(refusal);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}
