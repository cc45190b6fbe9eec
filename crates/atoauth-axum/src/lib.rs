//! # atoauth-axum
//!
//! The backend-for-frontend pattern for AT Protocol OAuth on [axum]: the OAuth session lives on
//! the server, the browser holds only a cookie with a random id, and the backend may be a
//! confidential client.
//!
//! [`AtoauthWeb::router`] serves:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /oauth-client-metadata.json` | the client metadata document |
//! | `GET /oauth/jwks.json` | the public keys (confidential clients; 404 otherwise) |
//! | `POST /oauth/login` | form fields `identifier` (handle, DID or PDS URL), `csrf`, and optionally `scope` (one of [`AtoauthWebBuilder::allow_scope`]); 303 to the authorization server |
//! | `GET /oauth/callback` | finishes the sign-in; 303 to the app |
//! | `POST /oauth/switch` | form fields `did` and `csrf`: makes another of the browser's accounts the active one; 303 to the app |
//! | `POST /oauth/logout` | form field `csrf`, and `all=1` for every account; revokes and signs out the active account (or all); 303 to the app |
//! | `GET`/`POST /xrpc/{nsid}` | forwards the call to the user's PDS with DPoP (never the browser's cookies) |
//!
//! Handlers get the user with the [`SignedIn`] extractor, and the CSRF token for their forms
//! with [`Browser`].
//!
//! A browser holds one account by default. With [`AtoauthWebBuilder::accounts_per_browser`] it
//! holds several, one of them active; signing in beyond the limit revokes the least recently
//! used. Signing in again as an account the browser already holds (for example with a larger
//! scope) replaces and revokes its older session.
//!
//! ```no_run
//! # async fn demo(client: atoauth::OAuthClient, store: std::sync::Arc<dyn atoauth::store::BrowserSessionStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use atoauth_axum::{AtoauthWeb, CookieKey, SignedIn};
//! use axum::routing::get;
//!
//! let web = AtoauthWeb::builder(client, store, "http://127.0.0.1:8080".parse()?)
//!     .cookie_key(CookieKey::load_or_create("data/cookie.key".as_ref())?)
//!     .redirect_uri("http://127.0.0.1:8080/oauth/callback")
//!     .build()?;
//! let app = axum::Router::new()
//!     .route("/me", get(|user: SignedIn| async move { user.session.did().to_string() }))
//!     .merge(web.router())
//!     .with_state(web.clone());
//! let app = web.wrap(app);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // Read timeouts, a connection limit, and each client's address for the rate limit.
//! atoauth_axum::serve(listener, app, atoauth_axum::ServerLimits::default(), std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! # Operating it
//! [`metrics`] counts sign-ins, refreshes, proxied requests and store and upstream latency
//! through the `metrics` facade (install any recorder; `atoauth serve --metrics-listen` installs
//! Prometheus's). [`AtoauthWeb::ready`] answers a readiness probe. Every request's log lines
//! carry its id, returned in `x-request-id`.
//!
//! # Security
//! - The cookie is `HttpOnly`, `SameSite=Lax`, `Secure` on https, and authenticated (HMAC);
//!   it holds only a random id, mapped to the OAuth session in the store.
//! - Forms carry a CSRF token, and every state-changing request must come from our `Origin`.
//! - The OAuth `state` is bound to the browser that started the sign-in.
//! - Request logs never contain a query string, so `code` and `state` never reach them.
//! - The proxy sends tokens only to the user's PDS and never forwards cookies. What it passes
//!   back is made inert (no sniffing, a sandboxing CSP, a download unless it is JSON), and a
//!   top-level navigation to `/xrpc/…` is refused: a PDS serves files any account uploaded.
//! - The proxy reads a body only after the Origin and session checks, a bounded number at once.
//! - Every response refuses framing and sniffing; HTML pages are never cached; an https app
//!   sends `Strict-Transport-Security`.
//! - [`serve_tls`] serves HTTPS itself (rustls), for deployments without a reverse proxy.
//! - [`serve`] cuts off clients that stall sending headers or a body, and bounds connections.
//! - Behind a reverse proxy, [`AtoauthWebBuilder::trusted_proxies`] gives each client its own
//!   sign-in rate limit.

mod cookie;
mod extract;
mod guard;
mod headers;
pub mod html;
pub mod metrics;
mod proxy;
mod routes;
mod server;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use atoauth::OAuthClient;
use atoauth::store::BrowserSessionStore;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
pub use cookie::{COOKIE_NAME, CookieKey, CookieKeyError};
pub use extract::{Browser, SignedIn};
/// A network in CIDR notation, for [`AtoauthWebBuilder::trusted_proxies`].
pub use ipnet::IpNet;
pub use server::{ServerLimits, serve, serve_tls};
pub use tls::{TlsConfig, TlsError};
use url::Url;

/// The default cap on proxied request bodies: 50 MiB (buffered so a DPoP retry can replay it).
pub const DEFAULT_PROXY_BODY_LIMIT: usize = 50 * 1024 * 1024;

/// The default number of proxied request bodies held in memory at once (each up to the body
/// limit); more uploads at the same moment are answered 503 with `Retry-After`.
pub const DEFAULT_CONCURRENT_UPLOADS: usize = 8;

/// Why the web configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebConfigError {
    /// The public URL is not an http(s) origin.
    #[error("the public URL must be an http or https origin without a path: {0}")]
    PublicUrl(String),
    /// No cookie key was given.
    #[error("a cookie key is required (CookieKey::load_or_create or CookieKey::from_hex)")]
    NoCookieKey,
    /// No redirect URI was given.
    #[error("the redirect URI (…/oauth/callback) is required")]
    NoRedirectUri,
}

/// The web layer's shared state. Cheap to clone; use it as (part of) the axum state.
#[derive(Clone, Debug)]
pub struct AtoauthWeb {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) client: OAuthClient,
    pub(crate) browsers: Arc<dyn BrowserSessionStore>,
    pub(crate) cookie_key: CookieKey,
    pub(crate) public_origin: String,
    pub(crate) public_authority: String,
    pub(crate) secure_cookie: bool,
    pub(crate) redirect_uri: String,
    pub(crate) scope: Option<String>,
    /// Scopes a sign-in form may ask for instead of the default, normalised.
    pub(crate) allowed_scopes: Vec<String>,
    pub(crate) accounts_per_browser: usize,
    pub(crate) after_login: String,
    pub(crate) proxy_body_limit: usize,
    pub(crate) browser_ttl: Duration,
    pub(crate) limiter: guard::RateLimiter,
    /// Proxied request bodies held in memory at once.
    pub(crate) uploads: tokio::sync::Semaphore,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) client_metadata: serde_json::Value,
}

/// Configures an [`AtoauthWeb`].
#[derive(Debug)]
#[must_use]
pub struct AtoauthWebBuilder {
    client: OAuthClient,
    browsers: Arc<dyn BrowserSessionStore>,
    public_url: Url,
    cookie_key: Option<CookieKey>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    allowed_scopes: Vec<String>,
    accounts_per_browser: usize,
    after_login: String,
    proxy_body_limit: usize,
    browser_ttl: Duration,
    logins_per_minute: u32,
    concurrent_uploads: usize,
    trusted_proxies: Vec<IpNet>,
    client_metadata: Option<serde_json::Value>,
}

impl AtoauthWeb {
    /// Starts configuring the web layer of `client`, served at `public_url`.
    pub fn builder(
        client: OAuthClient,
        browsers: Arc<dyn BrowserSessionStore>,
        public_url: Url,
    ) -> AtoauthWebBuilder {
        AtoauthWebBuilder {
            client,
            browsers,
            public_url,
            cookie_key: None,
            redirect_uri: None,
            scope: None,
            allowed_scopes: Vec::new(),
            accounts_per_browser: 1,
            after_login: "/".to_owned(),
            proxy_body_limit: DEFAULT_PROXY_BODY_LIMIT,
            browser_ttl: Duration::from_secs(30 * 24 * 3600),
            logins_per_minute: 20,
            concurrent_uploads: DEFAULT_CONCURRENT_UPLOADS,
            trusted_proxies: Vec::new(),
            client_metadata: None,
        }
    }

    /// The OAuth client.
    #[must_use]
    pub fn client(&self) -> &OAuthClient {
        &self.inner.client
    }

    /// How many accounts one browser may hold at once.
    #[must_use]
    pub fn accounts_per_browser(&self) -> usize {
        self.inner.accounts_per_browser
    }

    /// The scopes a sign-in form may ask for (`scope` field of `POST /oauth/login`), besides
    /// the default.
    #[must_use]
    pub fn allowed_scopes(&self) -> &[String] {
        &self.inner.allowed_scopes
    }

    /// Our origin (`scheme://host[:port]`), as `Origin` headers must say it.
    #[must_use]
    pub fn public_origin(&self) -> &str {
        &self.inner.public_origin
    }

    /// Whether the browser-session store answers, for a readiness probe (`/readyz`): a read of
    /// a session that does not exist.
    ///
    /// # Errors
    /// The store's error.
    pub async fn ready(&self) -> Result<(), atoauth::store::StoreError> {
        let probe = atoauth::secret::SessionId::new("readiness-probe");
        self.inner.browsers.get_browser(&probe).await.map(|_| ())
    }

    /// The routes listed in the crate documentation, with this web state.
    pub fn router<S>(&self) -> Router<S> {
        Router::new()
            .route("/oauth-client-metadata.json", get(routes::client_metadata))
            .route("/oauth/jwks.json", get(routes::jwks))
            .route("/oauth/login", post(routes::login))
            .route("/oauth/callback", get(routes::callback))
            .route("/oauth/switch", post(routes::switch))
            .route("/oauth/logout", post(routes::logout))
            .route(
                "/xrpc/{nsid}",
                // The handler reads the body itself, after its checks, within this limit.
                get(proxy::forward)
                    .post(proxy::forward)
                    .layer(DefaultBodyLimit::disable())
                    .layer(axum::middleware::from_fn(metrics::count_proxied)),
            )
            .with_state(self.clone())
    }

    /// Wraps a whole app in the middleware it should run under: the canonical host redirect
    /// and request logs without query strings. Call it on the final router.
    pub fn wrap<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let router = router
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                guard::canonical_host,
            ))
            .layer(axum::middleware::from_fn(headers::security_headers));
        let router = if self.inner.secure_cookie {
            router.layer(axum::middleware::from_fn(headers::strict_transport))
        } else {
            router
        };
        router.layer(axum::middleware::from_fn(guard::log_requests))
    }
}

impl AtoauthWebBuilder {
    /// The key that authenticates session cookies (required).
    pub fn cookie_key(mut self, key: CookieKey) -> Self {
        self.cookie_key = Some(key);
        self
    }

    /// The redirect URI sent with every authorization (required): our `/oauth/callback`.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// The scope to request (default: every scope the client declares).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// A scope the sign-in form may ask for instead of the default (repeatable), so an app can
    /// ask for more permissions later: the form's `scope` field must be one of these. The
    /// client must declare every token of it (G2).
    pub fn allow_scope(mut self, scope: impl AsRef<str>) -> Self {
        self.allowed_scopes.push(normalized_scope(scope.as_ref()));
        self
    }

    /// How many accounts one browser may hold at once (default 1, at least 1). A sign-in
    /// beyond it revokes the least recently used session.
    pub fn accounts_per_browser(mut self, count: usize) -> Self {
        self.accounts_per_browser = count.max(1);
        self
    }

    /// Where the browser goes after signing in or out (default `/`).
    pub fn after_login(mut self, path: impl Into<String>) -> Self {
        self.after_login = path.into();
        self
    }

    /// The largest request body the XRPC proxy accepts (default 50 MiB); larger gets 413.
    pub fn proxy_body_limit(mut self, bytes: usize) -> Self {
        self.proxy_body_limit = bytes;
        self
    }

    /// How long a browser stays signed in without visiting (default 30 days).
    pub fn browser_ttl(mut self, ttl: Duration) -> Self {
        self.browser_ttl = ttl;
        self
    }

    /// Sign-in attempts allowed per client address and minute (default 20).
    pub fn logins_per_minute(mut self, count: u32) -> Self {
        self.logins_per_minute = count;
        self
    }

    /// The reverse proxies in front of the app: from these peers, the client's address (for the
    /// sign-in rate limit) is read from `X-Forwarded-For`. From any other peer the header is
    /// ignored, so clients cannot pick their own bucket. Default: none.
    pub fn trusted_proxies(mut self, networks: impl IntoIterator<Item = IpNet>) -> Self {
        self.trusted_proxies = networks.into_iter().collect();
        self
    }

    /// Proxied request bodies held in memory at once (default
    /// [`DEFAULT_CONCURRENT_UPLOADS`]); at least one.
    pub fn concurrent_uploads(mut self, count: usize) -> Self {
        self.concurrent_uploads = count.max(1);
        self
    }

    /// The document served at `/oauth-client-metadata.json` (default: derived from the client).
    pub fn client_metadata(mut self, document: serde_json::Value) -> Self {
        self.client_metadata = Some(document);
        self
    }

    /// The web state.
    ///
    /// # Errors
    /// A public URL that is not an origin, or a missing cookie key or redirect URI.
    pub fn build(self) -> Result<AtoauthWeb, WebConfigError> {
        let url = &self.public_url;
        let origin_only = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
        if !matches!(url.scheme(), "http" | "https") || !origin_only || url.host_str().is_none() {
            return Err(WebConfigError::PublicUrl(url.to_string()));
        }
        let public_origin = url.origin().ascii_serialization();
        let public_authority = public_origin
            .split_once("://")
            .map(|(_, authority)| authority.to_owned())
            .unwrap_or_default();
        let client_metadata = self
            .client_metadata
            .unwrap_or_else(|| routes::derived_metadata(&self.client));
        Ok(AtoauthWeb {
            inner: Arc::new(Inner {
                secure_cookie: url.scheme() == "https",
                client: self.client,
                browsers: self.browsers,
                cookie_key: self.cookie_key.ok_or(WebConfigError::NoCookieKey)?,
                public_origin,
                public_authority,
                redirect_uri: self.redirect_uri.ok_or(WebConfigError::NoRedirectUri)?,
                scope: self.scope,
                allowed_scopes: self.allowed_scopes,
                accounts_per_browser: self.accounts_per_browser,
                after_login: self.after_login,
                proxy_body_limit: self.proxy_body_limit,
                browser_ttl: self.browser_ttl,
                limiter: guard::RateLimiter::new(self.logins_per_minute, Duration::from_secs(60)),
                uploads: tokio::sync::Semaphore::new(self.concurrent_uploads),
                trusted_proxies: self.trusted_proxies,
                client_metadata,
            }),
        })
    }
}

/// A scope string with single spaces between its tokens, for comparing.
pub(crate) fn normalized_scope(scope: &str) -> String {
    scope.split_whitespace().collect::<Vec<_>>().join(" ")
}
