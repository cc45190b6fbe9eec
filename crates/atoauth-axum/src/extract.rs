//! Extractors: [`Browser`] (the visitor's cookie session, signed in or not) and [`SignedIn`]
//! (the visitor's OAuth session, or a redirect to the start page).

use atoauth::OAuthSession;
use atoauth::crypto::{OsRandomness, random_token};
use atoauth::secret::{SessionId, State};
use atoauth::store::BrowserSession;
use atoauth::syntax::Did;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::AtoauthWeb;
use crate::cookie::{read_cookie, set_cookie};

/// The visitor's browser session: the CSRF token for forms and, once signed in, the account.
/// A missing, forged or expired cookie simply means "no session" (never an error page).
///
/// Only signed-in browsers are stored. A visitor who has not signed in holds a signed random id
/// in the cookie, and the CSRF token of its forms is derived from that id, so anonymous page
/// views never write to the store.
#[derive(Debug)]
pub struct Browser {
    web: AtoauthWeb,
    id: Option<SessionId>,
    session: Option<BrowserSession>,
    csrf: Option<State>,
}

fn server_error(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "session storage failed");
    crate::html::page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The session store is unavailable. Try again in a moment.",
    )
}

impl<S> FromRequestParts<S> for Browser
where
    AtoauthWeb: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let web = AtoauthWeb::from_ref(state);
        let id = read_cookie(&parts.headers).and_then(|value| web.inner.cookie_key.verify(&value));
        let session = match &id {
            Some(id) => web
                .inner
                .browsers
                .get_browser(id)
                .await
                .map_err(|e| server_error(&e))?,
            None => None,
        };
        let csrf = match (&session, &id) {
            (Some(session), _) => Some(session.csrf_token.clone()),
            (None, Some(id)) => Some(State::new(web.inner.cookie_key.anonymous_csrf(id))),
            (None, None) => None,
        };
        Ok(Self {
            web,
            id,
            session,
            csrf,
        })
    }
}

impl Browser {
    /// The CSRF token to put in every form (`<input type="hidden" name="csrf" value="…">`), once
    /// [`Browser::ensure`] has run.
    #[must_use]
    pub fn csrf_token(&self) -> Option<&str> {
        self.csrf.as_ref().map(State::secret)
    }

    /// Whether `token` is this browser's CSRF token (constant time).
    pub(crate) fn csrf_matches(&self, token: &str) -> bool {
        !token.is_empty() && self.csrf.as_ref().is_some_and(|csrf| csrf.ct_eq(token))
    }

    /// Whether a signed-in account is attached.
    #[must_use]
    pub fn is_signed_in(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.accounts.is_empty())
    }

    /// The browser's accounts as recorded, the active one first.
    #[must_use]
    pub fn accounts(&self) -> Vec<Did> {
        self.session.as_ref().map_or_else(Vec::new, |record| {
            record.accounts.iter().map(|(did, _)| did.clone()).collect()
        })
    }

    pub(crate) fn id(&self) -> Option<&SessionId> {
        self.id.as_ref()
    }

    pub(crate) fn record(&self) -> Option<&BrowserSession> {
        self.session.as_ref()
    }

    /// Makes sure the browser has an id (for the CSRF token of a sign-in form), without storing
    /// anything. Returns the `Set-Cookie` header to send when one was minted.
    ///
    /// # Errors
    /// An error page when randomness fails.
    pub async fn ensure(&mut self) -> Result<Option<HeaderValue>, Response> {
        if self.id.is_some() {
            return Ok(None);
        }
        let (id, value) = self
            .web
            .inner
            .cookie_key
            .new_id()
            .map_err(|e| server_error(&e))?;
        let cookie = set_cookie(
            &value,
            self.web.inner.secure_cookie,
            self.web.inner.browser_ttl.as_secs(),
        );
        let header = HeaderValue::from_str(&cookie).map_err(|e| server_error(&e))?;
        self.csrf = Some(State::new(self.web.inner.cookie_key.anonymous_csrf(&id)));
        self.id = Some(id);
        Ok(Some(header))
    }

    /// The OAuth sessions of every account this browser holds that is still usable, the active
    /// one first: for an account switcher that shows handles.
    pub async fn oauth_sessions(&self) -> Vec<OAuthSession> {
        let Some(record) = &self.session else {
            return Vec::new();
        };
        let mut sessions = Vec::with_capacity(record.accounts.len());
        for (did, session_id) in &record.accounts {
            if let Ok(session) = self.web.inner.client.restore(did, session_id).await {
                sessions.push(session);
            }
        }
        sessions
    }

    /// The active account's OAuth session, if any and still usable. A session that ended is
    /// detached from the browser, and the next account (if any) becomes the active one.
    pub async fn oauth_session(&mut self) -> Option<OAuthSession> {
        let mut record = self.session.clone()?;
        let mut found = None;
        while let Some((did, session_id)) = record.accounts.first().cloned() {
            match self.web.inner.client.restore(&did, &session_id).await {
                Ok(session) => {
                    found = Some(session);
                    break;
                }
                Err(error) => {
                    tracing::info!(%error, "a browser's OAuth session is gone");
                    record.accounts.remove(0);
                }
            }
        }
        if self.session.as_ref() != Some(&record) {
            if let Some(id) = &self.id {
                let _ = self
                    .web
                    .inner
                    .browsers
                    .put_browser(id, &record, self.web.inner.browser_ttl)
                    .await;
            }
            self.session = Some(record);
        }
        found
    }
}

impl AtoauthWeb {
    /// Creates a signed-in browser session: its id, record and `Set-Cookie`.
    pub(crate) async fn new_browser(
        &self,
        accounts: Vec<(Did, SessionId)>,
    ) -> Result<(SessionId, BrowserSession, HeaderValue), Response> {
        let (id, value) = self
            .inner
            .cookie_key
            .new_id()
            .map_err(|e| server_error(&e))?;
        let csrf = random_token(&OsRandomness, 24).map_err(|e| server_error(&e))?;
        let record = BrowserSession {
            csrf_token: State::new(csrf),
            accounts,
            created_at: unix_now(),
        };
        self.inner
            .browsers
            .put_browser(&id, &record, self.inner.browser_ttl)
            .await
            .map_err(|e| server_error(&e))?;
        let cookie = set_cookie(
            &value,
            self.inner.secure_cookie,
            self.inner.browser_ttl.as_secs(),
        );
        let header = HeaderValue::from_str(&cookie).map_err(|e| server_error(&e))?;
        Ok((id, record, header))
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The signed-in user. Without one, handlers using it answer with a redirect to `/`.
#[derive(Debug)]
pub struct SignedIn {
    /// The user's OAuth session: call their PDS with it.
    pub session: OAuthSession,
    /// The CSRF token for this browser's forms.
    pub csrf_token: String,
    /// Every account this browser holds, the active one (`session`) first.
    pub accounts: Vec<Did>,
}

impl<S> FromRequestParts<S> for SignedIn
where
    AtoauthWeb: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let mut browser = Browser::from_request_parts(parts, state).await?;
        let csrf_token = browser.csrf_token().map(str::to_owned);
        match (browser.oauth_session().await, csrf_token) {
            (Some(session), Some(csrf_token)) => Ok(Self {
                session,
                csrf_token,
                accounts: browser.accounts(),
            }),
            _ => Err(Redirect::to("/").into_response()),
        }
    }
}
