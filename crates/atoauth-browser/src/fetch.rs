//! atoauth's HTTP path in a browser: `fetch`, with the core's per-request limits (time, body
//! size, redirects) and its target policy (https only, unless loopback http is allowed for
//! development). The browser decides the rest: which addresses a page may reach, CORS, TLS.

use atoauth::TargetPolicy;
use atoauth::http::{FetchLimits, HttpClient, HttpError, HttpFuture, Request, Response};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{RequestCredentials, RequestInit, RequestRedirect};

use crate::error::describe;
use crate::page::{settle, window};

/// An [`HttpClient`] over the page's `fetch`.
#[derive(Clone, Copy, Debug)]
pub struct FetchClient {
    policy: TargetPolicy,
    cookies: bool,
}

impl FetchClient {
    /// A client enforcing `policy`: [`TargetPolicy::PublicHttpsOnly`] in production, or
    /// [`TargetPolicy::InsecureAllowLoopbackHttp`] to reach a PDS on this machine.
    #[must_use]
    pub fn new(policy: TargetPolicy) -> Self {
        Self {
            policy,
            cookies: false,
        }
    }

    /// The same client sending the page's cookies: for the app's own client-assertion
    /// backend, which may ask for its sign-in cookie (U8). Never for a PDS.
    #[must_use]
    pub fn with_app_cookies(self) -> Self {
        Self {
            cookies: true,
            ..self
        }
    }
}

fn network(url: &str, what: &str, error: &JsValue) -> HttpError {
    HttpError::Network {
        url: url.to_owned(),
        source: format!("{what}: {}", describe(error)).into(),
    }
}

fn loopback(host: Option<&str>) -> bool {
    matches!(host, Some("localhost" | "127.0.0.1" | "[::1]"))
}

impl FetchClient {
    async fn exchange(&self, request: Request) -> Result<Response, HttpError> {
        let limits = FetchLimits::of(&request);
        let uri = request.uri().clone();
        let url = format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or_default(),
            uri.authority().map(|a| a.as_str()).unwrap_or_default(),
            uri.path()
        );
        let https = uri.scheme_str() == Some("https");
        let allowed = https
            || (uri.scheme_str() == Some("http")
                && self.policy.is_insecure()
                && loopback(uri.host()));
        if !allowed {
            return Err(HttpError::ForbiddenTarget {
                url,
                reason: "only https URLs are fetched (loopback http needs the insecure policy)"
                    .to_owned(),
            });
        }

        let init = RequestInit::new();
        init.set_method(request.method().as_str());
        // No cookies or HTTP auth of the page go to servers: tokens travel in headers only.
        // Only the app's own backend may see the app's cookies.
        init.set_credentials(if self.cookies {
            RequestCredentials::Include
        } else {
            RequestCredentials::Omit
        });
        init.set_redirect(if limits.redirects == 0 {
            RequestRedirect::Manual
        } else {
            RequestRedirect::Follow
        });
        let headers = web_sys::Headers::new().map_err(|e| network(&url, "Headers", &e))?;
        for (name, value) in request.headers() {
            let value = value.to_str().map_err(|e| HttpError::Network {
                url: url.clone(),
                source: e.into(),
            })?;
            headers
                .append(name.as_str(), value)
                .map_err(|e| network(&url, "a request header", &e))?;
        }
        init.set_headers(&headers);
        if !request.body().is_empty() {
            init.set_body(&Uint8Array::from(request.body().as_ref()));
        }
        let timeout_ms = u32::try_from(limits.timeout.as_millis()).unwrap_or(u32::MAX);
        init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(timeout_ms)));

        let target = uri.to_string();
        let window = window().map_err(|e| HttpError::Network {
            url: url.clone(),
            source: e.to_string().into(),
        })?;
        let answer = settle("fetch", window.fetch_with_str_and_init(&target, &init))
            .await
            .map_err(|e| {
                if e.to_string().contains("TimeoutError") || e.to_string().contains("timed out") {
                    HttpError::Timeout { url: url.clone() }
                } else {
                    HttpError::Network {
                        url: url.clone(),
                        source: e.to_string().into(),
                    }
                }
            })?;
        let answer: web_sys::Response = answer.unchecked_into();
        if answer.type_() == web_sys::ResponseType::Opaqueredirect {
            return Err(HttpError::Redirect { url });
        }

        let mut response = http::Response::builder().status(answer.status());
        if let Ok(Some(entries)) = js_sys::try_iter(&answer.headers()) {
            for entry in entries.flatten() {
                let pair: Array = entry.unchecked_into();
                if let (Some(name), Some(value)) =
                    (pair.get(0).as_string(), pair.get(1).as_string())
                {
                    response = response.header(name, value);
                }
            }
        }
        if let Some(length) = answer
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|l| l.parse::<usize>().ok())
            && length > limits.max_body_bytes
        {
            return Err(HttpError::TooLarge {
                url,
                limit: limits.max_body_bytes,
            });
        }
        let buffer = answer
            .array_buffer()
            .map_err(|e| network(&url, "reading the body", &e))?;
        let body = settle("reading the body", buffer)
            .await
            .map_err(|e| HttpError::Network {
                url: url.clone(),
                source: e.to_string().into(),
            })?;
        let body = Uint8Array::new(&body);
        if body.length() as usize > limits.max_body_bytes {
            return Err(HttpError::TooLarge {
                url,
                limit: limits.max_body_bytes,
            });
        }
        response
            .body(body.to_vec())
            .map_err(|e| HttpError::Network {
                url,
                source: e.into(),
            })
    }
}

impl HttpClient for FetchClient {
    fn send(&self, request: Request) -> HttpFuture<'_> {
        Box::pin(self.exchange(request))
    }
}
