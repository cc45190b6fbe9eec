//! Errors as answers: [`Error`] lets a handler return the SDK's errors with `?`, and
//! [`NotSignedIn`] is what [`SignedIn`](crate::SignedIn) answers when nobody is signed in.
//! Pages go through the app's [`ErrorPage`] when it set one.

use std::sync::Arc;

use atoauth::OAuthError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

/// What an error page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorDetails {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short title.
    pub title: String,
    /// What happened and what the visitor can do, in a sentence or two.
    pub message: String,
}

/// Renders error pages: set with `AtoauthWebBuilder::error_page`.
pub type ErrorPage = Arc<dyn Fn(&ErrorDetails) -> Response + Send + Sync>;

/// An SDK error as an answer: return `Result<_, atoauth_axum::Error>` from a handler and use
/// `?` on any `OAuthError`. An ended session sends the visitor to the sign-in page; a missing
/// permission is 403; a PDS or network failure 502; a store failure 503.
///
/// # Examples
/// ```no_run
/// use atoauth_axum::{Error, SignedIn};
///
/// async fn delete_post(user: SignedIn) -> Result<&'static str, Error> {
///     let input = serde_json::json!({
///         "repo": user.session.did(),
///         "collection": "app.bsky.feed.post",
///         "rkey": "3l4example",
///     });
///     let _: serde_json::Value = user.session.procedure("com.atproto.repo.deleteRecord", &input).await?;
///     Ok("deleted")
/// }
/// ```
#[derive(Debug)]
pub struct Error(pub OAuthError);

impl From<OAuthError> for Error {
    fn from(error: OAuthError) -> Self {
        Self(error)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Marks an answer that should send the visitor to the sign-in page (the middleware knows
/// where that is).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ToSignIn;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let error = &self.0;
        if error.requires_sign_in() {
            tracing::info!(%error, "the session ended; sending the visitor to sign in");
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response.extensions_mut().insert(ToSignIn);
            return response;
        }
        let (status, title, message) = match error {
            OAuthError::ScopeMissing { permission, .. } => (
                StatusCode::FORBIDDEN,
                "Permission needed",
                format!("You did not grant this app the permission {permission}."),
            ),
            OAuthError::Xrpc(xrpc) if (400..500).contains(&xrpc.status) => (
                StatusCode::BAD_REQUEST,
                "Refused",
                format!("Your server refused the request: {xrpc}"),
            ),
            OAuthError::InvalidInput { .. } | OAuthError::Syntax(_) => {
                (StatusCode::BAD_REQUEST, "Bad request", error.to_string())
            }
            OAuthError::Store(_) | OAuthError::PersistFailed(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The session store is unavailable. Try again in a moment.".to_owned(),
            ),
            OAuthError::Xrpc(_)
            | OAuthError::Http { .. }
            | OAuthError::Identity(_)
            | OAuthError::Metadata(_)
            | OAuthError::Server { .. }
            | OAuthError::InvalidResponse { .. } => (
                StatusCode::BAD_GATEWAY,
                "Server trouble",
                format!("Your server could not be reached or answered badly: {error}"),
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on our side.".to_owned(),
            ),
        };
        tracing::warn!(%error, %status, "a request failed");
        error_response(ErrorDetails {
            status,
            title: title.to_owned(),
            message,
        })
    }
}

/// The default page for `details`, carrying them for a custom [`ErrorPage`].
pub(crate) fn error_response(details: ErrorDetails) -> Response {
    let mut response = crate::html::page(details.status, &details.title, &details.message);
    response.extensions_mut().insert(details);
    response
}

/// Nobody is signed in: a redirect to the sign-in page (`AtoauthWebBuilder::sign_in_page`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotSignedIn {
    /// Where the visitor is sent.
    pub sign_in_page: String,
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        Redirect::to(&self.sign_in_page).into_response()
    }
}

/// Why [`SignedIn`](crate::SignedIn) could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum SignedInRejection {
    /// Nobody is signed in (or the session ended).
    NotSignedIn(NotSignedIn),
    /// The session store did not answer: an error page.
    Unavailable(Response),
}

impl IntoResponse for SignedInRejection {
    fn into_response(self) -> Response {
        match self {
            Self::NotSignedIn(redirect) => redirect.into_response(),
            Self::Unavailable(response) => response,
        }
    }
}

/// Middleware: sends [`Error`]s that need a sign-in to the sign-in page, and renders error
/// pages with the app's [`ErrorPage`].
pub(crate) async fn render_errors(
    axum::extract::State(web): axum::extract::State<crate::AtoauthWeb>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<ToSignIn>().is_some() {
        return Redirect::to(&web.inner.sign_in_page).into_response();
    }
    match (
        response.extensions().get::<ErrorDetails>(),
        &web.inner.error_page,
    ) {
        (Some(details), Some(page)) => page(details),
        _ => response,
    }
}
