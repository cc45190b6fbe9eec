//! Request guards: same-origin checks for state-changing requests (CSRF), a per-address rate
//! limit on sign-in, the canonical host name, and request logs without queries (`code` and
//! `state` travel in the callback's query and must never reach a log).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AtoauthWeb;

/// Whether the request's `Origin` is exactly ours. Browsers send it on every POST; a missing
/// one is refused too, so old or odd clients cannot slip through.
pub(crate) fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == origin)
}

/// A fixed-window limit per client address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_window: u32,
    window: Duration,
    counts: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub(crate) fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            counts: Mutex::default(),
        }
    }

    /// Counts one request from `address`; whether it is allowed.
    pub(crate) fn allow(&self, address: IpAddr) -> bool {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        let entry = counts.entry(address).or_insert((now, 0));
        entry.1 += 1;
        entry.1 <= self.per_window
    }
}

/// Redirects requests for another host name than the public URL's (e.g. `localhost` for
/// `127.0.0.1`) to the canonical one, so the session cookie is not lost between them.
pub(crate) async fn canonical_host(
    State(web): State<AtoauthWeb>,
    request: Request,
    next: Next,
) -> Response {
    let expected = web.inner.public_authority.as_str();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    match host {
        Some(host) if host.eq_ignore_ascii_case(expected) => next.run(request).await,
        // Health checks come from load balancers under any name.
        _ if request.uri().path() == "/healthz" => next.run(request).await,
        _ => {
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let target = format!("{}{}", web.inner.public_origin, path);
            Redirect::temporary(&target).into_response()
        }
    }
}

/// One log line per request: method, path (never the query), status, duration.
pub(crate) async fn log_requests(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis(),
        "request"
    );
    response
}

/// The response to a refused cross-site request.
pub(crate) fn forbidden_cross_site() -> Response {
    crate::html::page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This request did not come from this site's own pages (Origin or form token missing or wrong).",
    )
}
