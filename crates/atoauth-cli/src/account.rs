//! What the session commands share: the OAuth client a
//! stored session belongs to, and picking the account a command acts for (`--as`).

use anyhow::bail;
use atoauth::client::OAuthClient;
use atoauth::client_metadata::{
    ClientMetadata, LoopbackClient, ValidationOptions, check_client_metadata, is_loopback_client_id,
};
use atoauth::store::{SessionData, SessionStore};

use crate::config::Config;
use crate::resolve::identity_resolver;
use crate::stores::Stores;

/// An OAuth client for `client_id` (a loopback id, or an https URL whose metadata is fetched),
/// on the shared store. Sign-ins replace the account's older session (L8).
pub(crate) async fn client_for(
    config: &Config,
    stores: &Stores,
    client_id: &str,
) -> anyhow::Result<OAuthClient> {
    let mut builder = OAuthClient::builder()
        .target_policy(config.target_policy())
        .http_client(std::sync::Arc::new(config.http_client()?))
        .identity_resolver(identity_resolver(config)?)
        .state_store(stores.states.clone())
        .session_store(stores.sessions.clone())
        .refresh_lock(stores.lock.clone())
        .replace_existing_sessions();
    if config.insecure_dev {
        // B1: a test machine's client host has a port.
        builder = builder.insecure_allow_client_id_port();
    }
    let builder = if is_loopback_client_id(client_id) {
        let loopback = LoopbackClient::parse(client_id)
            .map_err(|violations| anyhow::anyhow!("invalid loopback client id: {violations}"))?;
        builder.loopback(loopback)
    } else {
        builder.metadata(fetch_client_metadata(config, client_id).await?)
    };
    Ok(builder.build()?)
}

/// Fetches and validates a published client metadata document (B4, B5.1, B10).
pub(crate) async fn fetch_client_metadata(
    config: &Config,
    client_id: &str,
) -> anyhow::Result<ClientMetadata> {
    let document = crate::client_metadata::fetch(config, client_id).await?;
    let violations = check_client_metadata(
        &document,
        &ValidationOptions {
            fetched_from: Some(client_id.to_owned()),
            insecure_allow_client_id_port: config.insecure_dev,
        },
    );
    if !violations.is_empty() {
        bail!(
            "the client metadata at {client_id} is invalid: {}",
            atoauth::protocol::rules::Violations(violations)
        );
    }
    Ok(serde_json::from_value(document)?)
}

/// The session a command acts for: the one matching `--as` (a handle or DID), or the only one.
pub(crate) async fn pick_session(
    sessions: &dyn SessionStore,
    who: Option<&str>,
) -> anyhow::Result<SessionData> {
    let sessions = sessions.list_all().await?;
    let wanted = who.map(|w| w.trim_start_matches('@').to_ascii_lowercase());
    let mut matching: Vec<SessionData> = sessions
        .into_iter()
        .filter(|s| {
            wanted.as_deref().is_none_or(|w| {
                s.did.as_str() == w || s.handle.as_ref().is_some_and(|h| h.as_str() == w)
            })
        })
        .collect();
    matching.sort_by_key(|s| std::cmp::Reverse(s.updated_at));
    match (matching.len(), who) {
        (0, None) => bail!("not signed in: run `atoauth login <handle>` first"),
        (0, Some(who)) => bail!("no session for {who}: run `atoauth login {who}`"),
        (1, _) => Ok(matching.remove(0)),
        (_, Some(_)) => Ok(matching.remove(0)),
        (_, None) => bail!(
            "several accounts are signed in ({}); pick one with --as <handle|did>",
            matching
                .iter()
                .map(display_account)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `handle (did)`, or the DID alone.
pub(crate) fn display_account(session: &SessionData) -> String {
    match &session.handle {
        Some(handle) => format!("{handle} ({})", session.did),
        None => session.did.to_string(),
    }
}

/// A Unix time as RFC 3339 (UTC).
pub(crate) fn rfc3339(unix: i64) -> String {
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}
