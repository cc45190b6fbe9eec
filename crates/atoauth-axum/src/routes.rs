//! The OAuth routes: client metadata and JWKS, sign-in, callback, sign-out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use atoauth::OAuthClient;
use atoauth::client::{AuthorizeOptions, CallbackParams, ClientKind};
use atoauth::store::browser_key;
use axum::Json;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Form, RawQuery, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::guard::{self, forbidden_cross_site, same_origin};
use crate::html::page;
use crate::{AtoauthWeb, Browser};

/// The metadata document for this client: the published one, or, for the loopback development
/// client, what the authorization server synthesises (C5).
pub(crate) fn derived_metadata(client: &OAuthClient) -> Value {
    match client.kind() {
        ClientKind::Published(metadata) => metadata.to_json(),
        ClientKind::Loopback(loopback) => json!({
            "client_id": client.client_id(),
            "application_type": "native",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": loopback.scope(),
            "response_types": ["code"],
            "redirect_uris": loopback.effective_redirect_uris(),
            "token_endpoint_auth_method": "none",
            "dpop_bound_access_tokens": true,
        }),
        _ => Value::Null,
    }
}

pub(crate) async fn client_metadata(State(web): State<AtoauthWeb>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(web.inner.client_metadata.clone()),
    )
        .into_response()
}

pub(crate) async fn jwks(State(web): State<AtoauthWeb>) -> Response {
    match web.inner.client.public_jwks() {
        Some(jwks) => Json(jwks).into_response(),
        None => (StatusCode::NOT_FOUND, "a public client has no keys").into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    csrf: String,
    /// One of the allowed scopes, instead of the default.
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
    /// Any non-empty value: sign out every account of this browser.
    #[serde(default)]
    all: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    did: String,
}

fn csrf_ok(browser: &Browser, token: &str) -> bool {
    browser.csrf_matches(token)
}

fn client_address(web: &AtoauthWeb, extensions: &Extensions, headers: &HeaderMap) -> IpAddr {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let peer = match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(info) => info.0.ip(),
        None => {
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    "requests carry no client address, so every visitor shares one sign-in \
                     rate limit: serve the app with atoauth_axum::serve (or axum's \
                     into_make_service_with_connect_info::<SocketAddr>)"
                );
            }
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
    };
    guard::client_address(peer, headers, &web.inner.trusted_proxies)
}

pub(crate) async fn login(
    State(web): State<AtoauthWeb>,
    extensions: Extensions,
    headers: HeaderMap,
    browser: Browser,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers, &web.inner.public_origin) || !csrf_ok(&browser, &form.csrf) {
        return forbidden_cross_site();
    }
    if !web
        .inner
        .limiter
        .allow(client_address(&web, &extensions, &headers))
    {
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many sign-in attempts from this address; wait a minute and try again.",
        );
    }
    let Some(browser_id) = browser.id() else {
        return forbidden_cross_site();
    };
    let identifier = form.identifier.trim();
    if identifier.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "Enter your handle (like alice.bsky.social), your DID, or your server's address.",
        );
    }
    let mut options = AuthorizeOptions::default()
        .redirect_uri(&web.inner.redirect_uri)
        // Binds the flow to this browser: the callback must come back with the same cookie.
        .app_state(browser_key(browser_id));
    let requested = form
        .scope
        .as_deref()
        .map(crate::normalized_scope)
        .filter(|scope| !scope.is_empty());
    match requested {
        Some(scope) if web.inner.allowed_scopes.contains(&scope) => options = options.scope(scope),
        Some(_) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "This app does not ask for that set of permissions.",
            );
        }
        None => {
            if let Some(scope) = &web.inner.scope {
                options = options.scope(scope);
            }
        }
    }
    let started = std::time::Instant::now();
    let authorization = web
        .inner
        .client
        .start_authorization(identifier, options)
        .await;
    crate::metrics::upstream_time("sign_in_start", started);
    match authorization {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(error) => {
            tracing::info!(%error, "sign-in could not start");
            page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                &format!("Could not start signing in as {identifier}: {error}"),
            )
        }
    }
}

pub(crate) async fn callback(
    State(web): State<AtoauthWeb>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(browser_id) = browser.id().cloned() else {
        return page(
            StatusCode::FORBIDDEN,
            "Sign-in failed",
            "This browser did not start this sign-in (or its cookie expired). Start again.",
        );
    };
    let params = CallbackParams::from_query(query.as_deref().unwrap_or_default());
    let started = std::time::Instant::now();
    let completed = web
        .inner
        .client
        .complete_authorization_bound(params, &browser_key(&browser_id))
        .await;
    crate::metrics::upstream_time("sign_in_finish", started);
    let done = match completed {
        Ok(done) => {
            crate::metrics::sign_in("ok");
            done
        }
        Err(error) if error.oauth_error_code() == Some("access_denied") => {
            crate::metrics::sign_in("denied");
            return page(
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                "You did not grant access, so you are not signed in.",
            );
        }
        Err(error) => {
            crate::metrics::sign_in("failed");
            tracing::info!(%error, "sign-in failed at the callback");
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                &format!("The sign-in could not be completed: {error}"),
            );
        }
    };
    let new_account = (
        done.session.did().clone(),
        done.session.session_id().clone(),
    );
    let held = browser
        .record()
        .map(|record| record.accounts.clone())
        .unwrap_or_default();
    let (accounts, dropped) = admit(held, new_account, web.inner.accounts_per_browser);
    // Never left live and unreferenced: an older session of the same account (a re-sign-in or
    // a scope upgrade) and the least recently used one beyond the limit are revoked.
    for (did, session_id) in dropped {
        if let Ok(old) = web.inner.client.restore(&did, &session_id).await
            && let Err(error) = old.sign_out().await
        {
            tracing::info!(%error, "a replaced session of this browser could not be revoked");
        }
    }
    // A new cookie id after sign-in: an id planted before sign-in is worth nothing after it.
    let (_, _, cookie) = match web.new_browser(accounts).await {
        Ok(created) => created,
        Err(response) => return response,
    };
    let _ = web.inner.browsers.delete_browser(&browser_id).await;
    see_other(&web.inner.after_login, Some(cookie))
}

type Account = (atoauth::syntax::Did, atoauth::secret::SessionId);

/// The browser's accounts after signing in as `new` (which becomes the active one), and the
/// sessions to revoke: an older session of the same DID, and the least recently used ones
/// beyond `limit`.
fn admit(held: Vec<Account>, new: Account, limit: usize) -> (Vec<Account>, Vec<Account>) {
    let (same_did, mut others): (Vec<Account>, Vec<Account>) =
        held.into_iter().partition(|(did, _)| *did == new.0);
    let mut dropped: Vec<Account> = same_did.into_iter().filter(|a| a.1 != new.1).collect();
    others.insert(0, new);
    if others.len() > limit {
        dropped.extend(others.drain(limit.max(1)..));
    }
    (others, dropped)
}

pub(crate) async fn switch(
    State(web): State<AtoauthWeb>,
    headers: HeaderMap,
    browser: Browser,
    Form(form): Form<SwitchForm>,
) -> Response {
    if !same_origin(&headers, &web.inner.public_origin) || !csrf_ok(&browser, &form.csrf) {
        return forbidden_cross_site();
    }
    let (Some(id), Some(record)) = (browser.id(), browser.record()) else {
        return see_other("/", None);
    };
    let mut record = record.clone();
    let Some(position) = record
        .accounts
        .iter()
        .position(|(did, _)| did.as_str() == form.did)
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Switch failed",
            "This browser is not signed in to that account.",
        );
    };
    let chosen = record.accounts.remove(position);
    record.accounts.insert(0, chosen);
    if let Err(error) = web
        .inner
        .browsers
        .put_browser(id, &record, web.inner.browser_ttl)
        .await
    {
        tracing::error!(%error, "session storage failed");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The session store is unavailable. Try again in a moment.",
        );
    }
    see_other(&web.inner.after_login, None)
}

pub(crate) async fn logout(
    State(web): State<AtoauthWeb>,
    headers: HeaderMap,
    browser: Browser,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !same_origin(&headers, &web.inner.public_origin) || !csrf_ok(&browser, &form.csrf) {
        return forbidden_cross_site();
    }
    let mut record = browser.record().cloned();
    let all = form.all.is_some_and(|value| !value.is_empty());
    let leaving: Vec<Account> = match &mut record {
        Some(record) if all => std::mem::take(&mut record.accounts),
        Some(record) if !record.accounts.is_empty() => vec![record.accounts.remove(0)],
        _ => Vec::new(),
    };
    for (did, session_id) in leaving {
        match web.inner.client.restore(&did, &session_id).await {
            Ok(session) => match session.sign_out().await {
                Ok(outcome) => tracing::info!(?outcome, "signed out"),
                Err(error) => tracing::warn!(%error, "sign-out could not delete the session"),
            },
            Err(error) => tracing::info!(%error, "the session had already ended"),
        }
    }
    let Some(id) = browser.id() else {
        return see_other(&web.inner.after_login, None);
    };
    // Other accounts stay signed in on this browser, the most recently used now active.
    if let Some(record) = record.filter(|record| !record.accounts.is_empty()) {
        let _ = web
            .inner
            .browsers
            .put_browser(id, &record, web.inner.browser_ttl)
            .await;
        return see_other(&web.inner.after_login, None);
    }
    let _ = web.inner.browsers.delete_browser(id).await;
    let expired = crate::cookie::set_cookie("", web.inner.secure_cookie, 0);
    see_other(&web.inner.after_login, HeaderValue::from_str(&expired).ok())
}

fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = Redirect::to(location).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use atoauth::secret::SessionId;
    use atoauth::syntax::Did;

    use super::{Account, admit};

    fn account(n: u8, session: &str) -> Account {
        (
            Did::new(&format!(
                "did:plc:{}",
                char::from(b'a' + n).to_string().repeat(24)
            ))
            .expect("a DID"),
            SessionId::new(session),
        )
    }

    fn sessions(accounts: &[Account]) -> Vec<&str> {
        accounts.iter().map(|(_, id)| id.secret()).collect()
    }

    #[test]
    fn with_one_account_per_browser_a_new_account_revokes_the_old_one() {
        let (kept, dropped) = admit(vec![account(1, "a")], account(2, "b"), 1);
        assert_eq!(sessions(&kept), ["b"]);
        assert_eq!(sessions(&dropped), ["a"]);
    }

    #[test]
    fn beyond_the_limit_the_least_recently_used_is_revoked() {
        let held = vec![account(1, "a"), account(2, "b"), account(3, "c")];
        let (kept, dropped) = admit(held, account(4, "d"), 3);
        assert_eq!(sessions(&kept), ["d", "a", "b"]);
        assert_eq!(sessions(&dropped), ["c"]);
    }

    #[test]
    fn signing_in_again_as_a_held_account_replaces_its_session_and_makes_it_active() {
        let held = vec![account(1, "a"), account(2, "b")];
        let (kept, dropped) = admit(held, account(2, "b2"), 3);
        assert_eq!(sessions(&kept), ["b2", "a"]);
        assert_eq!(sessions(&dropped), ["b"]);
    }

    #[test]
    fn the_same_session_twice_is_not_revoked() {
        let (kept, dropped) = admit(vec![account(1, "a")], account(1, "a"), 1);
        assert_eq!(sessions(&kept), ["a"]);
        assert!(dropped.is_empty());
    }
}
