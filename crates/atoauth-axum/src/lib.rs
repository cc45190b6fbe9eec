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
//! | `POST /oauth/client-assertion` | with [`AtoauthWebBuilder::client_assertion_backend`]: assertions for single-page apps that are their own confidential client ([`cab`]) |
//!
//! Handlers get the user with the [`SignedIn`] extractor (or a redirect to the sign-in page,
//! [`NotSignedIn`]), the CSRF token for their forms with [`Browser`], their own checked form
//! posts with [`CsrfForm`], and return the SDK's errors with `?` through [`Error`].
//!
//! A browser holds one account by default. With [`AtoauthWebBuilder::accounts_per_browser`] it
//! holds several, one of them active; signing in beyond the limit revokes the least recently
//! used. Signing in again as an account the browser already holds (for example with a larger
//! scope) replaces and revokes its older session.
//!
//! For development, [`AtoauthWeb::loopback_dev`] needs nothing else (see
//! `examples/web.rs`). In production, with a published client:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use atoauth::{ClientMetadata, MemoryStore, OAuthClient};
//! use atoauth_axum::{AtoauthWeb, CookieKey, SignedIn};
//! use axum::routing::get;
//!
//! // SqliteStore, PostgresStore or RedisStore in production: one store for everything.
//! let store = Arc::new(MemoryStore::default());
//! let metadata = ClientMetadata::builder("https://app.example.com/oauth-client-metadata.json")
//!     .scope("atproto")
//!     .redirect_uri("https://app.example.com/oauth/callback")
//!     .client_name("app")
//!     .build()?;
//! let client = OAuthClient::builder().metadata(metadata).store(store.clone()).build()?;
//! let web = AtoauthWeb::builder(client, "https://app.example.com".parse()?)
//!     .store(store)
//!     .cookie_key(CookieKey::load_or_create("data/cookie.key".as_ref())?)
//!     .build()?;
//! let app = axum::Router::new()
//!     .route("/me", get(|user: SignedIn| async move { user.session.did().to_string() }));
//! // Our routes and middleware mounted; read timeouts, a connection limit, client addresses.
//! web.run("127.0.0.1:8080", app).await?;
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

mod builder;
pub mod cab;
mod cookie;
mod csrf;
mod error;
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
pub use builder::{AtoauthWebBuilder, WebConfigError};
pub use cookie::{COOKIE_NAME, CookieKey, CookieKeyError};
pub use csrf::CsrfForm;
pub use error::{Error, ErrorDetails, ErrorPage, NotSignedIn, SignedInRejection};
pub use extract::{Browser, SignedIn};
/// A network in CIDR notation, for [`AtoauthWebBuilder::trusted_proxies`].
pub use ipnet::IpNet;
pub use server::{ServerLimits, serve, serve_tls};
pub use tls::{TlsConfig, TlsError};

/// The default cap on proxied request bodies: 50 MiB (buffered so a DPoP retry can replay it).
pub const DEFAULT_PROXY_BODY_LIMIT: usize = 50 * 1024 * 1024;

/// The default number of proxied request bodies held in memory at once (each up to the body
/// limit); more uploads at the same moment are answered 503 with `Retry-After`.
pub const DEFAULT_CONCURRENT_UPLOADS: usize = 8;

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtoauthWeb")
            .field("public_origin", &self.public_origin)
            .field("client_id", &self.client.client_id())
            .finish_non_exhaustive()
    }
}

/// The web layer's shared state. Cheap to clone; use it as (part of) the axum state.
#[derive(Clone, Debug)]
pub struct AtoauthWeb {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: OAuthClient,
    pub(crate) client_assertion_backend: Option<cab::ClientAssertionBackend>,
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
    /// Where `SignedIn` sends a visitor who is not signed in.
    pub(crate) sign_in_page: String,
    pub(crate) error_page: Option<ErrorPage>,
    pub(crate) proxy_body_limit: usize,
    pub(crate) browser_ttl: Duration,
    pub(crate) limiter: guard::RateLimiter,
    /// Proxied request bodies held in memory at once.
    pub(crate) uploads: tokio::sync::Semaphore,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) client_metadata: serde_json::Value,
}

impl AtoauthWeb {
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
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let routes = Router::new()
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
            .with_state(self.clone());
        match &self.inner.client_assertion_backend {
            Some(backend) => routes.merge(backend.router()),
            None => routes,
        }
    }

    /// The whole app in one call: `app`'s routes (whose state is this `AtoauthWeb`), ours
    /// ([`AtoauthWeb::router`]), and the middleware ([`AtoauthWeb::wrap`]). Serve the result
    /// with [`serve`], which gives each request its client address.
    pub fn mount(&self, app: Router<Self>) -> Router {
        self.wrap(app.merge(self.router()).with_state(self.clone()))
    }

    /// Serves `app` ([`AtoauthWeb::mount`]ed) on `address` with the default [`ServerLimits`]
    /// until the process ends: the short way to run an app.
    ///
    /// # Errors
    /// When `address` cannot be bound, or serving fails for good.
    pub async fn run(
        &self,
        address: impl tokio::net::ToSocketAddrs,
        app: Router<Self>,
    ) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        tracing::info!(address = %listener.local_addr()?, "serving");
        serve(
            listener,
            self.mount(app),
            ServerLimits::default(),
            std::future::pending(),
        )
        .await
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
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                error::render_errors,
            ))
            .layer(axum::middleware::from_fn(extract::cookie_slot))
            .layer(axum::middleware::from_fn(headers::security_headers));
        let router = if self.inner.secure_cookie {
            router.layer(axum::middleware::from_fn(headers::strict_transport))
        } else {
            router
        };
        router.layer(axum::middleware::from_fn(guard::log_requests))
    }
}

/// A scope string with single spaces between its tokens, for comparing.
pub(crate) fn normalized_scope(scope: &str) -> String {
    scope.split_whitespace().collect::<Vec<_>>().join(" ")
}
