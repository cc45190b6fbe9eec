//! `atoauth serve`: the backend-for-frontend web app. A visitor signs in with their handle,
//! sees who they are and what they granted, posts, and signs out. Sessions live in the
//! embedded SQLite store; the browser holds only a cookie.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use atoauth::OAuthClient;
use atoauth::client_metadata::{ClientMetadata, LoopbackClient};
use atoauth_axum::{AtoauthWeb, CookieKey, IpNet, ServerLimits, TlsConfig};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::Args;
use url::Url;

use crate::config::Config;
use crate::keygen::read_keyset;
use crate::login::DEFAULT_SCOPE;
use crate::resolve::identity_resolver;

mod cab;
mod pages;
mod spa;

/// Run the web app: sign in with an AT Protocol account, see the session, post, sign out
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  atoauth serve\n  atoauth serve --listen 0.0.0.0:8080 --public-url https://app.example.com\n  atoauth serve --public-url https://app.example.com --keys keys.json\n  atoauth serve --listen 0.0.0.0:443 --public-url https://app.example.com --tls-cert fullchain.pem --tls-key key.pem\n\n\
Modes:\n  public, development  the default: public URL http://127.0.0.1:<port>, client_id http://localhost?…\n  public, web          --public-url https://…: serves its own client metadata at /oauth-client-metadata.json\n  confidential         --keys <file from atoauth keygen> (+ --client-id/--redirect-uri when the\n                       metadata is hosted elsewhere): private_key_jwt, keys served at /oauth/jwks.json\n\n\
Logs go to stderr (RUST_LOG=debug for more); they never contain query strings."
)]
pub(crate) struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,

    /// The URL visitors use [default: http://127.0.0.1:<port>]
    #[arg(long, value_name = "URL")]
    public_url: Option<Url>,

    /// The scope to request
    #[arg(long, default_value = DEFAULT_SCOPE)]
    scope: String,

    /// A larger scope the app may ask for later, from its home page (repeatable); the client
    /// declares every token of --scope and of each --allow-scope
    #[arg(long = "allow-scope", value_name = "SCOPE")]
    allowed_scopes: Vec<String>,

    /// Accounts one browser may be signed in to at once; signing in to one more signs out the
    /// least recently used
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    accounts_per_browser: u16,

    /// Confidential mode: the client_id (an https URL serving this app's client metadata)
    /// [default with --keys: <public-url>/oauth-client-metadata.json; required with --spa]
    #[arg(long, value_name = "HTTPS URL", requires = "keys")]
    client_id: Option<String>,

    /// Confidential mode: the redirect URI registered in the metadata
    /// [default: <public-url>/oauth/callback]
    #[arg(long, value_name = "HTTPS URL", requires = "keys")]
    redirect_uri: Option<String>,

    /// Confidential mode: the private JWKS written by `atoauth keygen`
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,

    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key and an https
    /// --public-url naming a host in the certificate
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "public_url"])]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Log lines as text, or as one JSON object each (for log collectors)
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Seconds a client may take to send its request headers, or pause while sending a body,
    /// before its connection is closed
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    read_timeout: u64,

    /// Connections open at once; more wait to be accepted
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,

    /// A reverse proxy in front of this server (CIDR or address; repeatable): from it, the
    /// client's address for the sign-in rate limit is read from X-Forwarded-For
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_network)]
    trusted_proxies: Vec<IpNet>,

    /// Serve Prometheus metrics at http://<ADDR>/metrics, on a listener of its own (keep it
    /// on loopback or a private network: it is not behind the app's checks)
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// Serve this directory's single-page app at / instead of the server-rendered pages (an
    /// app that is its own OAuth client, built with atoauth-browser); no session store is used.
    /// With --keys and --client-id, also its client-assertion backend at
    /// POST /oauth/client-assertion: the app is then a confidential client
    #[arg(long, value_name = "DIR")]
    spa: Option<PathBuf>,

    /// Client-assertion backend: another origin whose pages may ask for assertions
    /// (repeatable; the public URL's origin always may)
    #[arg(long = "cab-origin", value_name = "ORIGIN", requires = "spa")]
    cab_origins: Vec<String>,

    /// Client-assertion backend: a file of denied devices, one DPoP key thumbprint per line
    /// (`#` comments), read again whenever it changes; a denied device's session ends at its
    /// next refresh
    #[arg(long, value_name = "FILE", requires = "spa")]
    denied_keys: Option<PathBuf>,

    /// Client-assertion backend: only browsers that also send this cookie (the app's own
    /// sign-in cookie) get assertions
    #[arg(long, value_name = "NAME", requires = "spa")]
    require_cookie: Option<String>,

    /// The cookie signing key, 64 hex characters [default: <data-dir>/cookie.key, created once]
    #[arg(
        long,
        env = "ATOAUTH_COOKIE_KEY",
        value_name = "HEX",
        hide_env_values = true
    )]
    cookie_key: Option<String>,
}

pub(crate) async fn run(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logs(config.verbose, args.log_format);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let public_url = match &args.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://127.0.0.1:{}", bound.port()))?,
    };
    let public_origin = public_url.origin().ascii_serialization();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            if public_url.scheme() != "https" {
                bail!("--tls-cert: the --public-url must be https, not {public_url}");
            }
            Some(TlsConfig::from_pem_files(cert, key)?)
        }
        _ => None,
    };

    let limits = ServerLimits {
        read_timeout: Duration::from_secs(args.read_timeout.max(1)),
        max_connections: args.max_connections,
    };
    if let Some(dir) = &args.spa {
        let mut app = spa::router(dir, config.target_policy().is_insecure())?;
        if let Some(keys) = &args.keys {
            let backend = cab::backend(config, &args, keys, &public_url).await?;
            app = app.merge(backend.router());
            eprintln!(
                "atoauth serve: client assertions for {} at {public_origin}{}",
                backend.client_id(),
                atoauth_axum::cab::PATH
            );
        }
        eprintln!(
            "atoauth serve: the single-page app in {}; listening on {bound}, open {public_url}",
            dir.display()
        );
        match tls {
            Some(tls) => {
                atoauth_axum::serve_tls(listener, app, limits, tls, shutdown_signal()).await?;
            }
            None => atoauth_axum::serve(listener, app, limits, shutdown_signal()).await?,
        }
        eprintln!("atoauth serve: stopped");
        return Ok(ExitCode::SUCCESS);
    }

    let stores = crate::stores::open(config).await?;
    if let Some(address) = args.metrics_listen {
        serve_metrics(address, &stores)?;
    }
    let (client, redirect_uri, metadata) =
        build_client(config, &args, &public_origin, &stores).await?;
    let cookie_key = match &args.cookie_key {
        Some(hex) => CookieKey::from_hex(hex).context("--cookie-key")?,
        None => CookieKey::load_or_create(&config.private_data_dir()?.join("cookie.key"))
            .context("cannot set up the cookie key")?,
    };
    let browsers = atoauth_axum::metrics::metered_browsers(stores.browsers.clone());
    let mut web = AtoauthWeb::builder(client, public_url.clone())
        .browser_store(browsers)
        .cookie_key(cookie_key)
        .redirect_uri(redirect_uri)
        .scope(&args.scope)
        .accounts_per_browser(usize::from(args.accounts_per_browser))
        .trusted_proxies(args.trusted_proxies.iter().copied());
    for scope in &args.allowed_scopes {
        web = web.allow_scope(scope);
    }
    if let Some(metadata) = metadata {
        web = web.client_metadata(metadata);
    }
    let web = web.build()?;

    let app = Router::new()
        .route("/", get(pages::home))
        .route("/post", post(pages::post))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(web.router())
        .with_state(web.clone());
    let app = web.wrap(app);

    eprintln!(
        "atoauth serve: sessions in {}; listening on {bound}, open {public_url}",
        stores.description
    );
    tracing::info!(%bound, %public_url, client_id = web.client().client_id(), "serving");
    match tls {
        Some(tls) => atoauth_axum::serve_tls(listener, app, limits, tls, shutdown_signal()).await?,
        None => atoauth_axum::serve(listener, app, limits, shutdown_signal()).await?,
    }
    eprintln!("atoauth serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The OAuth client for the chosen mode, its redirect URI, and the metadata document to serve.
async fn build_client(
    config: &Config,
    args: &ServeArgs,
    public_origin: &str,
    stores: &crate::stores::Stores,
) -> anyhow::Result<(OAuthClient, String, Option<serde_json::Value>)> {
    let builder = OAuthClient::builder()
        .target_policy(config.target_policy())
        .identity_resolver(identity_resolver(config)?)
        .state_store(stores.states.clone())
        .session_store(atoauth_axum::metrics::metered_sessions(
            stores.sessions.clone(),
        ))
        .on_session_event(atoauth_axum::metrics::event_handler())
        .refresh_lock(stores.lock.clone());
    let default_redirect = format!("{public_origin}/oauth/callback");
    let declared = declared_scope(args);
    if let Some(keys) = &args.keys {
        let keys = read_keyset(keys)?;
        let client_id = args
            .client_id
            .clone()
            .unwrap_or_else(|| format!("{public_origin}/oauth-client-metadata.json"));
        let redirect_uri = args.redirect_uri.clone().unwrap_or(default_redirect);
        let mut metadata = ClientMetadata::builder(&client_id)
            .scope(&declared)
            .redirect_uri(&redirect_uri)
            .client_name("atoauth")
            .private_key_jwt_with_jwks(keys.public_jwks());
        let mut builder = builder;
        if config.insecure_dev {
            metadata = metadata.insecure_allow_client_id_port();
            builder = builder.insecure_allow_client_id_port();
        }
        let metadata = metadata.build()?;
        let document = metadata.to_json();
        let client = builder.metadata(metadata).keyset(keys).build()?;
        return Ok((client, redirect_uri, Some(document)));
    }
    let loopback =
        public_origin.starts_with("http://127.0.0.1") || public_origin.starts_with("http://[::1]");
    if public_origin.starts_with("http://localhost") {
        bail!(
            "--public-url: use http://127.0.0.1:<port>, not localhost (loopback redirect URIs must be IP addresses, RFC 8252)"
        );
    }
    if loopback {
        let host = if public_origin.starts_with("http://[::1]") {
            "[::1]"
        } else {
            "127.0.0.1"
        };
        let client =
            LoopbackClient::new([format!("http://{host}/oauth/callback")], Some(&declared))
                .map_err(|v| anyhow::anyhow!("invalid scope: {v}"))?;
        return Ok((builder.loopback(client).build()?, default_redirect, None));
    }
    let client_id = format!("{public_origin}/oauth-client-metadata.json");
    let mut metadata = ClientMetadata::builder(&client_id)
        .scope(&declared)
        .redirect_uri(&default_redirect)
        .client_name("atoauth");
    let mut builder = builder;
    if config.insecure_dev {
        metadata = metadata.insecure_allow_client_id_port();
        builder = builder.insecure_allow_client_id_port();
    }
    Ok((
        builder.metadata(metadata.build()?).build()?,
        default_redirect,
        None,
    ))
}

/// The scope the client declares: every token of `--scope` and of each `--allow-scope`, in
/// that order, each once (G2: a request may only ask for declared tokens).
fn declared_scope(args: &ServeArgs) -> String {
    let mut tokens: Vec<&str> = Vec::new();
    for scope in std::iter::once(&args.scope).chain(&args.allowed_scopes) {
        for token in scope.split_whitespace() {
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
    }
    tokens.join(" ")
}

/// Installs the Prometheus recorder with its own listener, lists every series at zero, and
/// keeps the active-sessions gauge current.
fn serve_metrics(address: SocketAddr, stores: &crate::stores::Stores) -> anyhow::Result<()> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "metrics are served beyond loopback; keep that network private");
    }
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            &atoauth_axum::metrics::SECONDS_BUCKETS,
        )?
        .install()
        .with_context(|| format!("cannot serve metrics on {address}"))?;
    atoauth_axum::metrics::register();
    tokio::spawn(atoauth_axum::metrics::count_active_sessions(
        stores.sessions.clone(),
        Duration::from_secs(10),
    ));
    eprintln!("atoauth serve: metrics at http://{address}/metrics");
    Ok(())
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One readable line each.
    Text,
    /// One JSON object each, with the request id in `span.id`.
    Json,
}

fn init_logs(verbose: bool, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if verbose { "debug" } else { "info" })
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs.json().with_current_span(true).try_init(),
    };
}

/// `/readyz`: 200 when the store answers, 503 otherwise (for load balancers).
async fn readyz(State(web): State<AtoauthWeb>) -> (StatusCode, &'static str) {
    match web.ready().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the session store does not answer",
            )
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = interrupt.await;
            return;
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// A network in CIDR notation, or one address.
fn parse_network(value: &str) -> Result<IpNet, String> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{value:?} is neither a CIDR network (10.0.0.0/8) nor an address"))
}
