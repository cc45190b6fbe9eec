//! An [`HttpClient`] wrapper that records every exchange: method, URL path, OAuth grant type
//! and status. Tests count token requests and revocations with it, without timing anything.

use std::sync::{Arc, Mutex};

use atoauth::http::{HttpClient, HttpError, HttpFuture, Request};

/// One request seen by [`RecordingHttp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL without query.
    pub url: String,
    /// The path alone.
    pub path: String,
    /// `grant_type` of a form body, if any.
    pub grant_type: Option<String>,
    /// Whether a form body carried a `client_assertion` (private_key_jwt, J2).
    pub client_assertion: bool,
    /// The response status (`None` when the request failed).
    pub status: Option<u16>,
    /// The `atproto-proxy` header sent, if any.
    pub proxy: Option<String>,
    /// The request body's length.
    pub body_len: usize,
}

/// Wraps an HTTP client and records what goes through it.
#[derive(Clone)]
pub struct RecordingHttp {
    inner: Arc<dyn HttpClient>,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl std::fmt::Debug for RecordingHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingHttp")
            .field("exchanges", &self.exchanges().len())
            .finish()
    }
}

impl RecordingHttp {
    /// Records the traffic of a hardened client that may reach this machine's servers (the
    /// harness): what most tests against the official PDS want.
    ///
    /// # Panics
    /// When the HTTP client cannot be built.
    pub fn loopback() -> Self {
        Self::new(Arc::new(
            atoauth::http::HardenedClient::builder()
                .target_policy(atoauth::http::TargetPolicy::InsecureAllowLoopbackHttp)
                .build()
                .expect("a hardened HTTP client"),
        ))
    }

    /// Records the traffic of `inner`.
    pub fn new(inner: Arc<dyn HttpClient>) -> Self {
        Self {
            inner,
            log: Arc::default(),
        }
    }

    /// Everything seen so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many requests went to a path ending with `suffix` (e.g. `/oauth/revoke`) and got a
    /// 2xx answer.
    pub fn successes(&self, suffix: &str) -> usize {
        self.exchanges()
            .iter()
            .filter(|e| {
                e.path.ends_with(suffix) && e.status.is_some_and(|s| (200..300).contains(&s))
            })
            .count()
    }

    /// How many successful token requests had this `grant_type`.
    pub fn successful_grants(&self, grant_type: &str) -> usize {
        self.exchanges()
            .iter()
            .filter(|e| {
                e.grant_type.as_deref() == Some(grant_type) && e.status.is_some_and(|s| s == 200)
            })
            .count()
    }
}

impl HttpClient for RecordingHttp {
    fn send(&self, request: Request) -> HttpFuture<'_> {
        let uri = request.uri().clone();
        let method = request.method().to_string();
        let form = |field: &str| {
            url::form_urlencoded::parse(request.body())
                .find(|(name, _)| name == field)
                .map(|(_, value)| value.into_owned())
        };
        let grant_type = form("grant_type");
        let client_assertion = form("client_assertion").is_some();
        let proxy = request
            .headers()
            .get("atproto-proxy")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body_len = request.body().len();
        Box::pin(async move {
            let result: Result<_, HttpError> = self.inner.send(request).await;
            let exchange = Exchange {
                method,
                url: format!(
                    "{}://{}{}",
                    uri.scheme_str().unwrap_or_default(),
                    uri.authority().map(|a| a.as_str()).unwrap_or_default(),
                    uri.path()
                ),
                path: uri.path().to_owned(),
                grant_type,
                client_assertion,
                status: result.as_ref().ok().map(|r| r.status().as_u16()),
                proxy,
                body_len,
            };
            self.log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(exchange);
            result
        })
    }
}
