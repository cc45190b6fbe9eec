//! [`CsrfForm`]: the app's own form posts, checked like ours — the request comes from our
//! `Origin`, and its `csrf` field equals the browser's token (compared in constant time).

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::guard::{forbidden_cross_site, same_origin};
use crate::{AtoauthWeb, Browser};

/// The largest form body [`CsrfForm`] reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A form from one of our own pages: `T` read from a urlencoded body whose `csrf` field is the
/// browser's token ([`Browser::csrf_token`], or `SignedIn::csrf_token`), sent from our origin.
/// Anything else is refused with 403 before `T` is read.
///
/// # Examples
/// ```no_run
/// use atoauth_axum::{CsrfForm, SignedIn};
///
/// #[derive(serde::Deserialize)]
/// struct Post { text: String }
///
/// async fn post(user: SignedIn, CsrfForm(form): CsrfForm<Post>) -> String {
///     format!("{} posts {}", user.session.did(), form.text)
/// }
/// ```
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    AtoauthWeb: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let web = AtoauthWeb::from_ref(state);
        let (mut parts, body) = request.into_parts();
        if !same_origin(&parts.headers, web.public_origin()) {
            return Err(forbidden_cross_site());
        }
        let browser = Browser::from_request_parts(&mut parts, state).await?;
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return Err(StatusCode::PAYLOAD_TOO_LARGE.into_response());
        };
        let token: Token = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| StatusCode::BAD_REQUEST.into_response())?;
        if !browser.csrf_matches(&token.csrf) {
            return Err(forbidden_cross_site());
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(CsrfForm)
            .map_err(|error| (StatusCode::BAD_REQUEST, error.to_string()).into_response())
    }
}
