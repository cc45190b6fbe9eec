use std::time::Duration;

/// Limits for one request, carried in its `http::Extensions`.
///
/// A request without them gets [`FetchLimits::default`]: no redirects, 1 MiB, 10 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// The largest response body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How many redirects may be followed (same scheme only, each target checked again).
    pub redirects: u8,
    /// The longest the whole exchange may take, body included.
    pub timeout: Duration,
}

impl FetchLimits {
    /// OAuth metadata, DID documents, client metadata: 64 KiB, no redirects, 10 s (F1, F4, S1).
    pub const METADATA: Self = Self {
        max_body_bytes: 64 * 1024,
        redirects: 0,
        timeout: Duration::from_secs(10),
    };
    /// A client metadata document or a client's JWKS: the 512 KiB the official authorization
    /// server reads (B6.1), no redirects (B4), 10 s.
    pub const CLIENT_METADATA: Self = Self {
        max_body_bytes: 512 * 1024,
        redirects: 0,
        timeout: Duration::from_secs(10),
    };
    /// The handle well-known: a DID is short; a few redirect hops are allowed (identity D.17).
    pub const HANDLE_WELL_KNOWN: Self = Self {
        max_body_bytes: 4 * 1024,
        redirects: 3,
        timeout: Duration::from_secs(5),
    };

    /// Attach these limits to a request.
    pub fn apply<B>(self, request: &mut http::Request<B>) {
        request.extensions_mut().insert(self);
    }

    /// The limits attached to a request, or the defaults.
    #[must_use]
    pub fn of<B>(request: &http::Request<B>) -> Self {
        request
            .extensions()
            .get::<Self>()
            .copied()
            .unwrap_or_default()
    }
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            redirects: 0,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Which targets a client may connect to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetPolicy {
    /// `https` to public unicast addresses only (S1, S2). The default.
    #[default]
    PublicHttpsOnly,
    /// Also `http`, and loopback addresses (127.0.0.0/8, `::1`): for development against a PDS
    /// on this machine. Private and link-local ranges stay refused. Never use it in production.
    InsecureAllowLoopbackHttp,
}

impl TargetPolicy {
    /// Whether `ip` may be connected to under this policy.
    #[must_use]
    pub fn allows_ip(self, ip: std::net::IpAddr) -> bool {
        super::address::is_public(ip)
            || (self == Self::InsecureAllowLoopbackHttp && super::address::is_loopback(ip))
    }

    /// Whether a URL scheme may be used under this policy.
    #[must_use]
    pub fn allows_scheme(self, scheme: &str) -> bool {
        scheme == "https" || (self == Self::InsecureAllowLoopbackHttp && scheme == "http")
    }

    /// True when this policy weakens the defaults.
    #[must_use]
    pub fn is_insecure(self) -> bool {
        self != Self::PublicHttpsOnly
    }
}
