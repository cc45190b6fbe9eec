//! The one HTTP path every external URL goes through.
//!
//! Everything atoauth fetches (handle well-knowns, DID documents, OAuth metadata, token endpoints,
//! the user's PDS) is sent through an [`HttpClient`]: a small trait over
//! `http::Request<Vec<u8>>` → `http::Response<Vec<u8>>`. The default implementation,
//! [`HardenedClient`] (feature `reqwest`), enforces the rules of section S of the atproto OAuth
//! profile (S1, S2):
//!
//! - `https` only, unless [`TargetPolicy::InsecureAllowLoopbackHttp`] is chosen for local
//!   development;
//! - every address it connects to is a public unicast address, checked on the resolved IP at
//!   connect time, so DNS rebinding cannot reach 127.0.0.1, private ranges, link-local, CGNAT,
//!   multicast or their IPv4-mapped IPv6 forms ([`address::is_public`]);
//! - no redirects unless a request allows a few ([`FetchLimits::redirects`]);
//! - connect and total timeouts, and a cap on the response body.
//!
//! Per-request limits travel in the request's extensions as a [`FetchLimits`] value, so one client
//! serves metadata (64 KiB, no redirects) and XRPC calls (larger bodies) alike.

pub mod address;
#[cfg(all(feature = "reqwest", not(target_arch = "wasm32")))]
mod hardened;
mod limits;

use std::future::Future;

use crate::platform::{MaybeSend, MaybeSync};

#[cfg(all(feature = "reqwest", not(target_arch = "wasm32")))]
pub use hardened::{HardenedClient, HardenedClientBuilder, tls_client_config};
pub use limits::{FetchLimits, TargetPolicy};

/// A request as atoauth sends it. The body is buffered so that a DPoP nonce retry or a refresh
/// can replay it, and is [`bytes::Bytes`] so that a replay shares the buffer instead of copying
/// it (an upload of many megabytes is never duplicated).
pub type Request = http::Request<bytes::Bytes>;
/// A response with its whole body read (within [`FetchLimits::max_body_bytes`]).
pub type Response = http::Response<Vec<u8>>;

/// Why a request failed before a response could be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not one this client may fetch (scheme, host or a forbidden address).
    #[error("refused to fetch {url}: {reason}")]
    ForbiddenTarget {
        /// The URL, without its query.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The server answered with a redirect where none is allowed, or with too many.
    #[error("refused a redirect from {url}")]
    Redirect {
        /// The URL that redirected, without its query.
        url: String,
    },
    /// The response body was larger than allowed.
    #[error("the response from {url} exceeds {limit} bytes")]
    TooLarge {
        /// The URL, without its query.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection or the whole exchange took too long.
    #[error("timed out fetching {url}")]
    Timeout {
        /// The URL, without its query.
        url: String,
    },
    /// Any other transport failure (DNS, TCP, TLS, HTTP framing).
    #[error("network error fetching {url}")]
    Network {
        /// The URL, without its query.
        url: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A boxed future, as returned by [`HttpClient::send`].
/// `Send` natively, not in a browser ([`crate::platform`]).
pub type HttpFuture<'a> = crate::platform::BoxFuture<'a, Result<Response, HttpError>>;

/// Sends one HTTP request and reads the whole response.
///
/// Implemented by [`HardenedClient`] and by any `Fn(Request) -> Future<Output = Result<Response,
/// HttpError>>` closure, which is how unit tests answer requests without a network.
pub trait HttpClient: MaybeSend + MaybeSync {
    /// Sends `request`, honouring the [`FetchLimits`] in its extensions (or the defaults).
    fn send(&self, request: Request) -> HttpFuture<'_>;
}

impl std::fmt::Debug for dyn HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl<F, Fut> HttpClient for F
where
    F: Fn(Request) -> Fut + MaybeSend + MaybeSync,
    Fut: Future<Output = Result<Response, HttpError>> + MaybeSend + 'static,
{
    fn send(&self, request: Request) -> HttpFuture<'_> {
        Box::pin(self(request))
    }
}

/// The URL without query and fragment, for errors and logs (queries may carry secrets).
pub(crate) fn display_url(uri: &http::Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{}", uri.path()),
        _ => uri.path().to_owned(),
    }
}

/// A URL's origin, `scheme://host[:port]`: what DPoP nonces and clock offsets are kept by
/// (I6: per server).
pub(crate) fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}
