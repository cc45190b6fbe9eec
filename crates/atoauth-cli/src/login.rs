//! `atoauth login`: sign in through the browser with a loopback redirect (RFC 8252 §7.3) on
//! 127.0.0.1 — never 0.0.0.0 — and keep the session in the store (`--db`).

use std::process::ExitCode;
use std::time::Duration;

use atoauth::loopback::{CallbackServer, LoopbackError};
use atoauth::{AuthorizeOptions, LoopbackClient};
use clap::Args;

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

pub(crate) async fn run(config: &Config, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let server = CallbackServer::bind().await?;

    let client_id = match &args.client_id {
        Some(id) => id.clone(),
        None => LoopbackClient::with_scope(&args.scope)
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
                .redirect_uri(server.redirect_uri()),
        )
        .await?;

    eprintln!("Open this URL to sign in:");
    eprintln!("{url}");
    if !args.no_browser
        && let Err(error) = open::that_detached(url.as_str())
    {
        eprintln!("(could not open a browser: {error}; open the URL yourself)");
    }

    let params = server
        .wait(Duration::from_secs(args.timeout))
        .await
        .map_err(|error| match error {
            LoopbackError::TimedOut(_) => anyhow::anyhow!("{error} (--timeout)"),
            other => other.into(),
        })?;
    let done = client.complete_authorization(params).await?;
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
