//! Request guards: same-origin checks for state-changing requests (CSRF), a per-address rate
//! limit on sign-in (with the client's address taken from `X-Forwarded-For` only behind a
//! trusted proxy), the canonical host name, and request logs without queries (`code` and
//! `state` travel in the callback's query and must never reach a log).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atoauth::protocol::crypto::{OsRandomness, random_token};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tracing::Instrument;

use crate::AtoauthWeb;

/// Whether the request's `Origin` is exactly ours. Browsers send it on every POST; a missing
/// one is refused too, so old or odd clients cannot slip through.
pub(crate) fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == origin)
}

/// A fixed-window limit per client address (or per any other key).
#[derive(Debug)]
pub(crate) struct RateLimiter<K = IpAddr> {
    per_window: u32,
    window: Duration,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    pub(crate) fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            counts: Mutex::default(),
        }
    }

    /// Counts one request from `address`; whether it is allowed.
    pub(crate) fn allow(&self, address: K) -> bool {
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

/// The client's address: the peer's, or, when the peer is a trusted reverse proxy, the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy. Entries further
/// left were written by the client and prove nothing; an unparseable one ends the walk.
pub(crate) fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| hop.trim().parse::<IpAddr>())
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        match hop {
            Ok(ip) if is_trusted(&client) => client = ip,
            _ => break,
        }
    }
    client
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
        // Health and readiness checks come from load balancers under any name.
        _ if matches!(request.uri().path(), "/healthz" | "/readyz") => next.run(request).await,
        _ => {
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let target = format!("{}{}", web.inner.public_origin, path);
            Redirect::temporary(&target).into_response()
        }
    }
}

/// One log line per request: method, path (never the query), status, duration. Every line
/// logged while the request runs carries its id (a `request` span), and the response names it
/// in `x-request-id`, so a user's report can be matched with the logs.
pub(crate) async fn log_requests(request: Request, next: Next) -> Response {
    let id = random_token(&OsRandomness, 9).unwrap_or_default();
    let span = tracing::info_span!("request", id = %id);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis(),
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9".parse().unwrap(),
        );
        // From the trusted proxy: the nearest untrusted hop.
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // From anyone else: the header is ignored.
        assert_eq!(
            client_address(ip("192.0.2.1"), &headers, &trusted),
            ip("192.0.2.1")
        );
        // A chain of trusted proxies is walked through.
        headers.insert("x-forwarded-for", "203.0.113.9, 10.1.2.3".parse().unwrap());
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // Garbage stops the walk at the last address known to be real.
        headers.insert("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("10.0.0.2")
        );
        // No proxy configured: always the peer.
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &[]),
            ip("10.0.0.2")
        );
    }
}
