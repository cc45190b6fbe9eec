//! `atoauth login`: sign in through the browser with a loopback redirect (RFC 8252 §7.3) on
//! 127.0.0.1 — never 0.0.0.0 — and keep the session in the store (`--db`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use atoauth::client::{AuthorizeOptions, CallbackParams};
use atoauth::client_metadata::LoopbackClient;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::account::client_for;
use crate::config::Config;

/// The scope `login` asks for when `--scope` is not given.
pub(crate) const DEFAULT_SCOPE: &str = "atproto repo:app.bsky.feed.post?action=create";

/// Sign in with an AT Protocol account (opens the browser)
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  atoauth login alice.bsky.social\n  atoauth login did:plc:ewvi7nxzyoun6zhxrhs64oiz --scope \"atproto transition:generic\"\n  atoauth login https://bsky.social --no-browser\n\n\
The authorization URL is always printed to stderr on a line of its own. The session is kept in\n\
<data-dir>/atoauth.db; signing in again as the same account replaces its older session."
)]
pub(crate) struct LoginArgs {
    /// A handle, a DID, or a PDS / entryway URL
    identifier: String,

    /// The scope to request
    #[arg(long, default_value = DEFAULT_SCOPE)]
    scope: String,

    /// Do not open a browser; only print the authorization URL
    #[arg(long)]
    no_browser: bool,

    /// Give up waiting for the browser after this many seconds
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    timeout: u64,

    /// Use this published client (an https URL serving native-client metadata with a
    /// http://127.0.0.1 redirect URI) instead of the http://localhost development client
    #[arg(long, value_name = "HTTPS URL")]
    client_id: Option<String>,
}

const CLOSE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>atoauth</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>You can close this tab.</h1>\
<p>atoauth received the answer; see your terminal.</p></body>";

pub(crate) async fn run(config: &Config, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot listen on 127.0.0.1 for the browser's redirect")?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");

    let client_id = match &args.client_id {
        Some(id) => id.clone(),
        None => LoopbackClient::new(["http://127.0.0.1/callback"], Some(&args.scope))
            .map_err(|violations| anyhow::anyhow!("invalid scope: {violations}"))?
            .client_id(),
    };
    let stores = crate::stores::open(config).await?;
    let client = client_for(config, &stores, &client_id).await?;
    let url = client
        .start_authorization(
            &args.identifier,
            AuthorizeOptions::default()
                .scope(&args.scope)
                .redirect_uri(&redirect_uri),
        )
        .await?;

    eprintln!("Open this URL to sign in:");
    eprintln!("{url}");
    if !args.no_browser
        && let Err(error) = open::that_detached(url.as_str())
    {
        eprintln!("(could not open a browser: {error}; open the URL yourself)");
    }

    let query = tokio::time::timeout(
        Duration::from_secs(args.timeout),
        wait_for_callback(&listener),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "no answer from the browser within {} s (--timeout)",
            args.timeout
        )
    })??;
    let done = client
        .complete_authorization(CallbackParams::from_query(&query))
        .await?;
    let session = done.session;
    let handle = session
        .handle()
        .map_or_else(|| "handle.invalid".to_owned(), |h| h.to_string());
    if config.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "did": session.did(),
                "handle": session.handle(),
                "pds": session.pds().as_str(),
                "scope": session.granted_scope().to_string(),
            }))?
        );
    }
    eprintln!("Logged in as {handle} ({})", session.did());
    let diff = session.scope_diff();
    if !diff.is_complete() {
        eprintln!(
            "note: not granted: {}",
            diff.missing
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves the loopback redirect: answers other paths with 404 and returns the query of the
/// first `GET /callback`.
async fn wait_for_callback(listener: &TcpListener) -> anyhow::Result<String> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut buffer = vec![0u8; 16 * 1024];
        let mut read = 0;
        // Read the request head (the redirect is a GET: no body).
        while read < buffer.len() && !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
            let n = match stream.read(&mut buffer[read..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            read += n;
        }
        let head = String::from_utf8_lossy(&buffer[..read]);
        let target = head
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_default()
            .to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != "/callback" {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
             cache-control: no-store\r\nconnection: close\r\n\r\n{CLOSE_PAGE}",
            CLOSE_PAGE.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        if query.is_empty() {
            bail!("the browser came back without any parameters");
        }
        return Ok(query.to_owned());
    }
}
