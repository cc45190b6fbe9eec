//! `atoauth serve --spa <dir> --keys <jwks> --client-id <url>`: the single-page app and its
//! client-assertion backend from one origin. The app's OAuth client runs in the browser and is
//! a confidential client: each PAR, code exchange, refresh and revocation carries an assertion
//! this server signs for the browser's DPoP key. Nothing here holds a session or a token.

use std::sync::Arc;

use anyhow::{Context, bail};
use atoauth_axum::CookieKey;
use atoauth_axum::cab::{CabConfig, ClientAssertionBackend, DenyList};
use url::Url;

use super::ServeArgs;
use crate::config::Config;
use crate::keygen::read_keyset;

/// The backend for `args`, its keys read from `keys`.
pub(super) async fn backend(
    config: &Config,
    args: &ServeArgs,
    keys: &std::path::Path,
    public_url: &Url,
) -> anyhow::Result<ClientAssertionBackend> {
    let Some(client_id) = &args.client_id else {
        bail!(
            "--spa with --keys: give --client-id, the URL of the app's client metadata \
             (token_endpoint_auth_method private_key_jwt, these keys' public halves in jwks)"
        );
    };
    let keyset = read_keyset(keys)?;
    let mut cab = CabConfig::new(client_id, keyset, public_url.clone());
    cab.allowed_origins.extend(args.cab_origins.iter().cloned());
    cab.target_policy = config.target_policy();
    cab.http = Some(Arc::new(config.http_client()?));
    // The store remembers used proofs, so instances sharing it refuse each other's replays.
    cab.replay = crate::stores::open(config).await?.replay;
    cab.trusted_proxies.clone_from(&args.trusted_proxies);
    if let Some(path) = &args.denied_keys {
        cab.denied_keys = DenyList::from_file(path);
    }
    cab.required_cookie.clone_from(&args.require_cookie);
    let cookie_key = match &args.cookie_key {
        Some(hex) => CookieKey::from_hex(hex).context("--cookie-key")?,
        None => CookieKey::load_or_create(&config.private_data_dir()?.join("cookie.key"))
            .context("cannot set up the cookie key")?,
    };
    cab.nonce_secret = Some(cookie_key.derive("atoauth client-assertion nonces"));
    Ok(ClientAssertionBackend::new(cab)?)
}
