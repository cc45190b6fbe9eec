//! Configuring the web layer: [`AtoauthWeb::builder`] for an app with its own OAuth client,
//! [`AtoauthWeb::loopback_dev`] for development with no setup at all.

use std::sync::Arc;
use std::time::Duration;

use atoauth::store::{BrowserSessionStore, MemoryStore, Store};
use atoauth::{LoopbackClient, OAuthClient, OAuthClientBuilder, OAuthError};
use url::Url;

use crate::error::ErrorPage;
use crate::{
    AtoauthWeb, CookieKey, DEFAULT_CONCURRENT_UPLOADS, DEFAULT_PROXY_BODY_LIMIT, Inner, IpNet,
    guard, normalized_scope, routes,
};

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
    /// No store for browser sessions was given.
    #[error("a store is required: .store(…) (SQLite, PostgreSQL, Redis or MemoryStore)")]
    NoStore,
    /// The OAuth client could not be built (development mode builds it).
    #[error(transparent)]
    Client(#[from] OAuthError),
    /// `client_options` was given with a client that is already built.
    #[error("client_options only applies to loopback_dev; configure your OAuthClient directly")]
    ClientAlreadyBuilt,
    /// The client-assertion backend's configuration is unusable.
    #[error(transparent)]
    ClientAssertionBackend(#[from] crate::cab::CabConfigError),
}

/// The OAuth client: given, or built by [`AtoauthWebBuilder::build`] (development mode).
enum ClientSource {
    Ready(OAuthClient),
    Loopback {
        scope: String,
        options: Vec<Box<dyn FnOnce(OAuthClientBuilder) -> OAuthClientBuilder + Send>>,
    },
}

/// Configures an [`AtoauthWeb`].
#[must_use]
pub struct AtoauthWebBuilder {
    client: ClientSource,
    store: Option<Arc<dyn Store>>,
    browsers: Option<Arc<dyn BrowserSessionStore>>,
    public_url: Url,
    cookie_key: Option<CookieKey>,
    development: bool,
    client_options_misused: bool,
    redirect_uri: Option<String>,
    scope: Option<String>,
    allowed_scopes: Vec<String>,
    accounts_per_browser: usize,
    after_login: String,
    sign_in_page: String,
    error_page: Option<ErrorPage>,
    proxy_body_limit: usize,
    browser_ttl: Duration,
    logins_per_minute: u32,
    concurrent_uploads: usize,
    trusted_proxies: Vec<IpNet>,
    client_metadata: Option<serde_json::Value>,
    client_assertion_backend: Option<crate::cab::CabConfig>,
}

impl std::fmt::Debug for AtoauthWebBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtoauthWebBuilder")
            .field("public_url", &self.public_url.as_str())
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

impl AtoauthWeb {
    /// Starts configuring the web layer of `client`, served at `public_url`. Give it a store
    /// ([`AtoauthWebBuilder::store`]) and a cookie key.
    pub fn builder(client: OAuthClient, public_url: Url) -> AtoauthWebBuilder {
        AtoauthWebBuilder::new(ClientSource::Ready(client), public_url, false)
    }

    /// Development with no setup: the `http://localhost` development client asking for
    /// `scope`, served at `http://127.0.0.1:<port>`, sessions in memory ([`MemoryStore`]; give
    /// [`AtoauthWebBuilder::store`] to keep them) and a cookie key that lives as long as the
    /// process. The authorization server accepts this client only from this machine.
    ///
    /// # Panics
    /// Never: the URL is built from a port.
    pub fn loopback_dev(port: u16, scope: &str) -> AtoauthWebBuilder {
        let url = Url::parse(&format!("http://127.0.0.1:{port}"))
            .unwrap_or_else(|_| unreachable!("an origin built from a port always parses"));
        let source = ClientSource::Loopback {
            scope: scope.to_owned(),
            options: Vec::new(),
        };
        AtoauthWebBuilder::new(source, url, true)
    }
}

impl AtoauthWebBuilder {
    fn new(client: ClientSource, public_url: Url, development: bool) -> Self {
        Self {
            client,
            store: None,
            browsers: None,
            public_url,
            cookie_key: None,
            development,
            client_options_misused: false,
            redirect_uri: None,
            scope: None,
            allowed_scopes: Vec::new(),
            accounts_per_browser: 1,
            after_login: "/".to_owned(),
            sign_in_page: "/".to_owned(),
            error_page: None,
            proxy_body_limit: DEFAULT_PROXY_BODY_LIMIT,
            browser_ttl: Duration::from_secs(30 * 24 * 3600),
            logins_per_minute: 20,
            concurrent_uploads: DEFAULT_CONCURRENT_UPLOADS,
            trusted_proxies: Vec::new(),
            client_metadata: None,
            client_assertion_backend: None,
        }
    }

    /// The store for browser sessions (and, in development mode, for the OAuth client's
    /// sessions too): SQLite, PostgreSQL, Redis or [`MemoryStore`].
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// A store for browser sessions alone, when it differs from the client's.
    pub fn browser_store(mut self, store: Arc<dyn BrowserSessionStore>) -> Self {
        self.browsers = Some(store);
        self
    }

    /// Development mode: adjusts the OAuth client before it is built (a local PLC directory
    /// and handle resolver, a target policy for a PDS on this machine, …).
    pub fn client_options(
        mut self,
        options: impl FnOnce(OAuthClientBuilder) -> OAuthClientBuilder + Send + 'static,
    ) -> Self {
        match &mut self.client {
            ClientSource::Loopback { options: list, .. } => list.push(Box::new(options)),
            ClientSource::Ready(_) => self.client_options_misused = true,
        }
        self
    }

    /// The key that authenticates session cookies (required, except in development mode).
    pub fn cookie_key(mut self, key: CookieKey) -> Self {
        self.cookie_key = Some(key);
        self
    }

    /// The redirect URI sent with every authorization (default: `/oauth/callback` on the
    /// public URL).
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

    /// Where a visitor who is not signed in is sent by [`SignedIn`](crate::SignedIn)
    /// (default `/`): the page with your sign-in form.
    pub fn sign_in_page(mut self, path: impl Into<String>) -> Self {
        self.sign_in_page = path.into();
        self
    }

    /// Renders the pages of [`Error`](crate::Error) answers (default: a plain page with the
    /// status, a title and a message).
    pub fn error_page(mut self, page: ErrorPage) -> Self {
        self.error_page = Some(page);
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

    /// Also serve a client-assertion backend at `POST /oauth/client-assertion` (section U):
    /// single-page apps (atoauth-browser) of the allowed origins then get assertions for their
    /// own confidential client, signed by `config`'s keys.
    pub fn client_assertion_backend(mut self, config: crate::cab::CabConfig) -> Self {
        self.client_assertion_backend = Some(config);
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
    /// A public URL that is not an origin, a missing store or cookie key, or (development mode)
    /// a client that cannot be built.
    pub fn build(self) -> Result<AtoauthWeb, WebConfigError> {
        if self.client_options_misused {
            return Err(WebConfigError::ClientAlreadyBuilt);
        }
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
        let (client, store) = match self.client {
            ClientSource::Ready(client) => (client, self.store),
            ClientSource::Loopback { scope, options } => {
                let store: Arc<dyn Store> = self
                    .store
                    .unwrap_or_else(|| Arc::new(MemoryStore::default()));
                // Our callback route, on 127.0.0.1 at any port (C4).
                let loopback =
                    LoopbackClient::new(["http://127.0.0.1/oauth/callback"], Some(&scope))
                        .map_err(OAuthError::from)?;
                let mut builder = OAuthClient::builder()
                    .loopback(loopback)
                    .store(Arc::clone(&store));
                for option in options {
                    builder = option(builder);
                }
                (builder.build()?, Some(store))
            }
        };
        if !self.development && self.cookie_key.is_none() {
            return Err(WebConfigError::NoCookieKey);
        }
        let cookie_key = match self.cookie_key {
            Some(key) => key,
            None => CookieKey::generate().map_err(|_| WebConfigError::NoCookieKey)?,
        };
        let browsers: Arc<dyn BrowserSessionStore> = match (self.browsers, store) {
            (Some(browsers), _) => browsers,
            (None, Some(store)) => store,
            (None, None) => return Err(WebConfigError::NoStore),
        };
        let client_metadata = self
            .client_metadata
            .unwrap_or_else(|| routes::derived_metadata(&client));
        let client_assertion_backend = self
            .client_assertion_backend
            .map(crate::cab::ClientAssertionBackend::new)
            .transpose()?;
        Ok(AtoauthWeb {
            inner: Arc::new(Inner {
                secure_cookie: url.scheme() == "https",
                redirect_uri: self
                    .redirect_uri
                    .unwrap_or_else(|| format!("{public_origin}/oauth/callback")),
                client,
                browsers,
                cookie_key,
                public_origin,
                public_authority,
                scope: self.scope,
                allowed_scopes: self.allowed_scopes,
                accounts_per_browser: self.accounts_per_browser,
                after_login: self.after_login,
                sign_in_page: self.sign_in_page,
                error_page: self.error_page,
                proxy_body_limit: self.proxy_body_limit,
                browser_ttl: self.browser_ttl,
                limiter: guard::RateLimiter::new(self.logins_per_minute, Duration::from_secs(60)),
                uploads: tokio::sync::Semaphore::new(self.concurrent_uploads),
                trusted_proxies: self.trusted_proxies,
                client_metadata,
                client_assertion_backend,
            }),
        })
    }
}
