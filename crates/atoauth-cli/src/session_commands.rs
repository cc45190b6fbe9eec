//! `whoami`, `post`, `refresh`, `sessions` and `logout`: the stored sessions at work.

use std::process::ExitCode;

use anyhow::Context;
use atoauth::session::{OAuthSession, Revocation};
use atoauth::syntax::Nsid;
use clap::Args;
use serde_json::json;

use crate::account::{client_for, display_account, pick_session, rfc3339};
use crate::config::Config;

/// Show the signed-in account, asking the PDS (com.atproto.server.getSession)
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  atoauth whoami\n  atoauth whoami --as bob.bsky.social --json\n\n\
--json prints {\"did\", \"handle\", \"pds\", \"scope\", \"expires_at\" (RFC 3339 or null), \"email\" (or null)}.\n\
Exit code 1 when not signed in."
)]
pub(crate) struct WhoamiArgs {
    /// The account (handle or DID) when several are signed in
    #[arg(long = "as", value_name = "HANDLE|DID")]
    who: Option<String>,
}

/// Publish a post (app.bsky.feed.post) and print its at:// URI
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  atoauth post \"Hello from atoauth\"")]
pub(crate) struct PostArgs {
    /// The text of the post
    text: String,
    /// The account (handle or DID) when several are signed in
    #[arg(long = "as", value_name = "HANDLE|DID")]
    who: Option<String>,
}

/// Refresh the tokens now and print the new expiry
#[derive(Args, Debug)]
pub(crate) struct RefreshArgs {
    /// The account (handle or DID) when several are signed in
    #[arg(long = "as", value_name = "HANDLE|DID")]
    who: Option<String>,
}

/// List the stored sessions
#[derive(Args, Debug)]
#[command(
    after_help = "--json prints [{\"did\", \"handle\", \"pds\", \"issuer\", \"scope\", \"expires_at\", \"updated_at\"}]."
)]
pub(crate) struct SessionsArgs {}

/// Sign out: revoke the tokens at the server and delete the session
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  atoauth logout\n  atoauth logout bob.bsky.social")]
pub(crate) struct LogoutArgs {
    /// The account (handle or DID); optional when only one is signed in
    who: Option<String>,
}

async fn session(config: &Config, who: Option<&str>) -> anyhow::Result<OAuthSession> {
    let stores = crate::stores::open(config).await?;
    let data = pick_session(stores.sessions.as_ref(), who).await?;
    let client = client_for(config, &stores, &data.client_id).await?;
    Ok(client.restore(&data.did, &data.session_id).await?)
}

fn nsid(name: &str) -> anyhow::Result<Nsid> {
    Nsid::new(name).with_context(|| format!("bad NSID {name}"))
}

pub(crate) async fn whoami(config: &Config, args: WhoamiArgs) -> anyhow::Result<ExitCode> {
    let session = session(config, args.who.as_deref()).await?;
    let me: serde_json::Value = session
        .query(&nsid("com.atproto.server.getSession")?, &[])
        .await?;
    let handle = me["handle"].as_str().unwrap_or("handle.invalid");
    if config.json {
        let value = json!({
            "did": session.did(),
            "handle": handle,
            "pds": session.pds().as_str(),
            "scope": session.granted_scope().to_string(),
            "expires_at": session.expires_at().map(rfc3339),
            "email": me.get("email"),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{handle} ({})", session.did());
        println!("PDS:     {}", session.pds());
        println!("scope:   {}", session.granted_scope());
        if let Some(expires_at) = session.expires_at() {
            println!("expires: {}", rfc3339(expires_at));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn post(config: &Config, args: PostArgs) -> anyhow::Result<ExitCode> {
    let session = session(config, args.who.as_deref()).await?;
    let created_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let record = json!({
        "repo": session.did(),
        "collection": "app.bsky.feed.post",
        "record": {"$type": "app.bsky.feed.post", "text": args.text, "createdAt": created_at},
    });
    let created: serde_json::Value = session
        .procedure(&nsid("com.atproto.repo.createRecord")?, &record)
        .await?;
    let uri = created["uri"]
        .as_str()
        .context("the PDS did not return the record's URI")?;
    println!("{uri}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn refresh(config: &Config, args: RefreshArgs) -> anyhow::Result<ExitCode> {
    let session = session(config, args.who.as_deref()).await?;
    session.refresh().await?;
    let expires = session.expires_at().map_or_else(
        || "unknown (the server gave no lifetime)".to_owned(),
        rfc3339,
    );
    if config.json {
        println!(
            "{}",
            json!({"did": session.did(), "expires_at": session.expires_at().map(rfc3339)})
        );
    } else {
        println!("Refreshed; the new access token expires {expires}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn sessions(config: &Config, _: SessionsArgs) -> anyhow::Result<ExitCode> {
    let stores = crate::stores::open(config).await?;
    let mut sessions = stores.sessions.list_all().await?;
    sessions.sort_by(|a, b| a.did.as_str().cmp(b.did.as_str()));
    if config.json {
        let list: Vec<_> = sessions
            .iter()
            .map(|s| {
                json!({
                    "did": s.did, "handle": s.handle, "pds": s.pds.as_str(), "issuer": s.issuer,
                    "scope": s.scope, "expires_at": s.expires_at.map(rfc3339),
                    "updated_at": rfc3339(s.updated_at),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if sessions.is_empty() {
        println!("No sessions. Sign in with `atoauth login <handle>`.");
    } else {
        for s in &sessions {
            println!("{}  {}  scope: {}", display_account(s), s.pds, s.scope);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn logout(config: &Config, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let stores = crate::stores::open(config).await?;
    let data = pick_session(stores.sessions.as_ref(), args.who.as_deref()).await?;
    let account = display_account(&data);
    let client = client_for(config, &stores, &data.client_id).await?;
    let outcome = match client.restore(&data.did, &data.session_id).await {
        Ok(session) => session.sign_out().await?,
        Err(error) => {
            // Unusable sessions are deleted by `restore`; make sure nothing is left.
            stores.sessions.delete(&data.did, &data.session_id).await?;
            Revocation::Failed(error.to_string())
        }
    };
    match outcome {
        Revocation::Revoked => println!("Logged out {account}; the tokens were revoked."),
        Revocation::Unsupported => println!(
            "Logged out {account}; the server offers no revocation, so the tokens stay valid until they expire."
        ),
        Revocation::Failed(reason) => {
            println!("Logged out {account} locally; revoking at the server failed: {reason}");
        }
        _ => println!("Logged out {account}."),
    }
    Ok(ExitCode::SUCCESS)
}
