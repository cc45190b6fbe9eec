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
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn csrf_ok(browser: &Browser, token: &str) -> bool {
    browser.csrf_matches(token)
}

fn client_address(web: &AtoauthWeb, extensions: &Extensions, headers: &HeaderMap) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
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
    if let Some(scope) = &web.inner.scope {
        options = options.scope(scope);
    }
    match web
        .inner
        .client
        .start_authorization(identifier, options)
        .await
    {
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
    let done = match web
        .inner
        .client
        .complete_authorization_bound(params, &browser_key(&browser_id))
        .await
    {
        Ok(done) => done,
        Err(error) if error.oauth_error_code() == Some("access_denied") => {
            return page(
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                "You did not grant access, so you are not signed in.",
            );
        }
        Err(error) => {
            tracing::info!(%error, "sign-in failed at the callback");
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                &format!("The sign-in could not be completed: {error}"),
            );
        }
    };
    // One account per browser: the session this browser held before (another account, or an
    // older sign-in of the same one) is revoked and deleted, never left live and unreferenced.
    let previous = browser
        .record()
        .and_then(|record| record.account.clone())
        .filter(|(_, id)| id != done.session.session_id());
    if let Some((did, session_id)) = previous
        && let Ok(old) = web.inner.client.restore(&did, &session_id).await
        && let Err(error) = old.sign_out().await
    {
        tracing::info!(%error, "the previous session of this browser could not be revoked");
    }
    // A new cookie id after sign-in: an id planted before sign-in is worth nothing after it.
    let account = (
        done.session.did().clone(),
        done.session.session_id().clone(),
    );
    let (_, _, cookie) = match web.new_browser(account).await {
        Ok(created) => created,
        Err(response) => return response,
    };
    let _ = web.inner.browsers.delete_browser(&browser_id).await;
    see_other(&web.inner.after_login, Some(cookie))
}

pub(crate) async fn logout(
    State(web): State<AtoauthWeb>,
    headers: HeaderMap,
    browser: Browser,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_origin(&headers, &web.inner.public_origin) || !csrf_ok(&browser, &form.csrf) {
        return forbidden_cross_site();
    }
    if let Some(session) = browser.oauth_session().await {
        match session.sign_out().await {
            Ok(outcome) => tracing::info!(?outcome, "signed out"),
            Err(error) => tracing::warn!(%error, "sign-out could not delete the session"),
        }
    }
    if let Some(id) = browser.id() {
        let _ = web.inner.browsers.delete_browser(id).await;
    }
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
