//! Extractors: [`Browser`] (the visitor's cookie session, signed in or not) and [`SignedIn`]
//! (the visitor's OAuth session, or a redirect to the start page).

use atoauth::OAuthSession;
use atoauth::protocol::crypto::{OsRandomness, random_token};
use atoauth::secret::{SessionId, State};
use atoauth::store::BrowserSession;
use atoauth::syntax::Did;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::AtoauthWeb;
use crate::cookie::{read_cookie, set_cookie};
use crate::error::{NotSignedIn, SignedInRejection};

/// The visitor's browser session: the CSRF token for forms and, once signed in, the account.
/// A missing, forged or expired cookie simply means "no session" (never an error page).
///
/// Only signed-in browsers are stored. A visitor who has not signed in holds a signed random id
/// in the cookie, and the CSRF token of its forms is derived from that id, so anonymous page
/// views never write to the store.
///
/// # Examples
/// A page for everyone, with a sign-in form or the account:
///
/// ```no_run
/// use atoauth_axum::html::{csrf_form, document, escape};
/// use atoauth_axum::Browser;
/// use axum::response::Html;
///
/// async fn home(mut browser: Browser) -> Html<String> {
///     let csrf = browser.csrf_token().unwrap_or_default().to_owned();
///     let body = match browser.oauth_session().await {
///         Some(session) => format!("<p>Hello, {}</p>", escape(session.did().as_str())),
///         None => csrf_form("/oauth/login", &csrf, "<input name=identifier><button>Sign in</button>"),
///     };
///     document("Home", &body)
/// }
/// ```
#[derive(Debug)]
pub struct Browser {
    web: AtoauthWeb,
    id: Option<SessionId>,
    /// An id minted for this request (its cookie goes out with the response), when the
    /// visitor came without one.
    minted: Option<SessionId>,
    session: Option<BrowserSession>,
    csrf: Option<State>,
}

/// Where the [`Browser`] extractor leaves the cookie of an id it minted; the `wrap` middleware
/// sends it with the response (unless the handler set a cookie itself).
#[derive(Clone, Debug, Default)]
pub(crate) struct CookieSlot(std::sync::Arc<std::sync::Mutex<Option<HeaderValue>>>);

impl CookieSlot {
    fn put(&self, cookie: HeaderValue) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cookie);
    }

    fn take(&self) -> Option<HeaderValue> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// Middleware: gives extractors a [`CookieSlot`] and sends what they left in it.
pub(crate) async fn cookie_slot(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let slot = CookieSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(cookie) = slot.take()
        && !response
            .headers()
            .contains_key(axum::http::header::SET_COOKIE)
    {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
    response
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
        let mut minted = None;
        let csrf = match (&session, &id) {
            (Some(session), _) => Some(session.csrf_token.clone()),
            (None, Some(id)) => Some(State::new(web.inner.cookie_key.anonymous_csrf(id))),
            // A first visit: a signed id (nothing stored) so its forms have a token at once.
            (None, None) => match parts.extensions.get::<CookieSlot>() {
                Some(slot) => {
                    let (new, cookie) = mint(&web).map_err(|e| server_error(&e))?;
                    slot.put(cookie);
                    let csrf = State::new(web.inner.cookie_key.anonymous_csrf(&new));
                    minted = Some(new);
                    Some(csrf)
                }
                None => None,
            },
        };
        Ok(Self {
            web,
            id,
            minted,
            session,
            csrf,
        })
    }
}

impl Browser {
    /// The CSRF token to put in every form (`<input type="hidden" name="csrf" value="…">`).
    /// A first-time visitor gets one too, with a cookie sent along by the `wrap` middleware.
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
        if let Some(id) = self.minted.take() {
            // Its cookie is already on its way (the `wrap` middleware sends it).
            self.id = Some(id);
            return Ok(None);
        }
        let (id, header) = mint(&self.web).map_err(|e| server_error(&e))?;
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

/// A new browser id and its `Set-Cookie`.
fn mint(web: &AtoauthWeb) -> Result<(SessionId, HeaderValue), String> {
    let (id, value) = web.inner.cookie_key.new_id().map_err(|e| e.to_string())?;
    let cookie = set_cookie(
        &value,
        web.inner.secure_cookie,
        web.inner.browser_ttl.as_secs(),
    );
    let header = HeaderValue::from_str(&cookie).map_err(|e| e.to_string())?;
    Ok((id, header))
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

/// The signed-in user. Without one, handlers using it answer [`NotSignedIn`]: a redirect to
/// the sign-in page (`AtoauthWebBuilder::sign_in_page`, default `/`).
///
/// # Examples
/// A protected page that calls the user's PDS; `?` turns SDK errors into answers:
///
/// ```no_run
/// use atoauth_axum::{Error, SignedIn};
///
/// async fn me(user: SignedIn) -> Result<String, Error> {
///     let me: serde_json::Value = user.session.query("com.atproto.server.getSession", &[]).await?;
///     Ok(format!("You are {}", me["handle"]))
/// }
/// ```
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
    type Rejection = SignedInRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let mut browser = Browser::from_request_parts(parts, state)
            .await
            .map_err(SignedInRejection::Unavailable)?;
        let csrf_token = browser.csrf_token().map(str::to_owned);
        match (browser.oauth_session().await, csrf_token) {
            (Some(session), Some(csrf_token)) => Ok(Self {
                session,
                csrf_token,
                accounts: browser.accounts(),
            }),
            _ => Err(SignedInRejection::NotSignedIn(NotSignedIn {
                sign_in_page: browser.web.inner.sign_in_page.clone(),
            })),
        }
    }
}
