//! [`OAuthSession`]: one signed-in account. It sends authenticated requests to the account's PDS
//! (never to the issuer, O1), refreshes before expiry and on `invalid_token` (M5, O2), exposes
//! what was granted (L7), and signs out (P1, P2).

mod refresh;
mod xrpc;

pub use xrpc::{IntoNsid, xrpc_error};

use std::sync::{Arc, RwLock};

use url::Url;

use crate::dpop::{DpopKey, NonceCache};
use crate::engine::Engine;
pub use crate::engine::Revocation;
use crate::error::{OAuthError, SessionEndCause};
use crate::events::SessionEvent;
use crate::metadata::AuthorizationServerMetadata;
use crate::scope::{Permissions, Scope, ScopeDiff};
use crate::secret::SessionId;
use crate::store::SessionData;
use crate::syntax::{Did, Handle};

/// A finished sign-in.
#[derive(Debug)]
pub struct CompletedAuthorization {
    /// The new session.
    pub session: OAuthSession,
    /// The app state given to `start_authorization`.
    pub app_state: Option<String>,
}

/// A signed-in session. Cheap to clone; clones share tokens and nonces.
///
/// It refreshes its tokens by itself (once across every process that shares the store) and
/// retries once when the PDS asks for a new DPoP nonce, so a call either works or says why.
///
/// # Examples
/// Check what the user granted before offering a feature, then act:
///
/// ```no_run
/// use atoauth::scope::RepoAction;
///
/// # async fn demo(session: atoauth::OAuthSession) -> Result<(), atoauth::OAuthError> {
/// let posts = atoauth::nsid!("app.bsky.feed.post");
/// if session.permissions().allows_repo(&posts, RepoAction::Create) {
///     let record = serde_json::json!({
///         "repo": session.did(),
///         "collection": posts,
///         "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-12-03T00:00:00Z"},
///     });
///     let _: serde_json::Value = session.procedure("com.atproto.repo.createRecord", &record).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OAuthSession {
    inner: Arc<SessionInner>,
    /// The `atproto-proxy` header for this view of the session ([`OAuthSession::with_proxy`]),
    /// checked once and kept ready to send.
    proxy: Option<http::HeaderValue>,
}

struct SessionInner {
    client: Arc<Engine>,
    did: Did,
    id: SessionId,
    dpop: Arc<DpopKey>,
    nonces: NonceCache,
    data: RwLock<SessionData>,
    server: tokio::sync::Mutex<Option<Arc<AuthorizationServerMetadata>>>,
}

impl std::fmt::Debug for SessionInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSession")
            .field("did", &self.did)
            .field("session_id", &self.id)
            .finish_non_exhaustive()
    }
}

impl OAuthSession {
    pub(crate) fn from_parts(
        client: Arc<Engine>,
        data: SessionData,
        dpop: Arc<DpopKey>,
        server: Option<Arc<AuthorizationServerMetadata>>,
    ) -> Self {
        Self {
            inner: Arc::new(SessionInner {
                client,
                did: data.did.clone(),
                id: data.session_id.clone(),
                dpop,
                nonces: NonceCache::from_map(data.dpop_nonces.clone()),
                data: RwLock::new(data),
                server: tokio::sync::Mutex::new(server),
            }),
            proxy: None,
        }
    }

    /// The same session, with its XRPC calls sent to the service `did#service_id` through the
    /// PDS (the `atproto-proxy` header), for example the Bluesky AppView:
    /// `with_proxy(&"did:web:api.bsky.app".parse()?, "bsky_appview")`. Tokens, nonces and
    /// refreshes stay shared with the original. A granular grant needs `rpc:<method>?aud=did#service_id`
    /// for each method ([`Permissions::check_rpc`]).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(session: atoauth::OAuthSession) -> Result<(), atoauth::OAuthError> {
    /// let appview = session.with_proxy(&"did:web:api.bsky.app".parse()?, "bsky_appview")?;
    /// let profile: serde_json::Value = appview
    ///     .query("app.bsky.actor.getProfile", &[("actor", session.did().as_str())])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`OAuthError::InvalidInput`] when `did#service_id` is not a service reference the PDS
    /// accepts (a `did:plc` or `did:web` DID, a fragment as the service id; §3.15, §9.46).
    pub fn with_proxy(&self, did: &Did, service_id: &str) -> Result<Self, OAuthError> {
        let target = format!("{did}#{service_id}");
        let refused = |reason: String| OAuthError::InvalidInput {
            input: target.clone(),
            reason,
        };
        if let Some(reason) = crate::scope::service_ref_problem(&target) {
            return Err(refused(reason.to_owned()));
        }
        let header = http::HeaderValue::from_str(&target).map_err(|e| refused(e.to_string()))?;
        Ok(Self {
            inner: Arc::clone(&self.inner),
            proxy: Some(header),
        })
    }

    /// The service this view's XRPC calls go to through the PDS (`did#service_id`), if any.
    #[must_use]
    pub fn proxy(&self) -> Option<&str> {
        // Built from a checked service reference: always visible ASCII.
        self.proxy.as_ref().and_then(|value| value.to_str().ok())
    }

    /// Q3: checks a stored session is still usable by this client, and wraps it.
    pub(crate) async fn resume(client: Arc<Engine>, data: SessionData) -> Result<Self, OAuthError> {
        let cause = if data.client_id != client.config().client_id {
            Some(SessionEndCause::ClientChanged)
        } else {
            // With assertions from a backend, only the backend knows its keys (it answers
            // `unknown_key` for a removed one).
            let remote = client.config().assertion_source.is_some();
            match (&data.auth.kid, &client.config().keyset) {
                (Some(kid), Some(keys)) if !keys.contains(kid) => {
                    Some(SessionEndCause::KeyRemoved { kid: kid.clone() })
                }
                (Some(kid), None) if !remote => {
                    Some(SessionEndCause::KeyRemoved { kid: kid.clone() })
                }
                _ => None,
            }
        };
        let dpop = match cause {
            Some(_) => None,
            None => client.dpop_key(&data).await?,
        };
        let cause = match (&dpop, cause) {
            (None, None) => Some(SessionEndCause::DpopKeyMissing),
            (_, cause) => cause,
        };
        if let Some(cause) = cause {
            client
                .config()
                .sessions
                .delete(&data.did, &data.session_id)
                .await?;
            client
                .discard_dpop_key(&data.did, &data.session_id, &data.dpop_key)
                .await;
            client.emit(&SessionEvent::Deleted {
                did: data.did.clone(),
                session_id: data.session_id.clone(),
                cause: cause.clone(),
            });
            return Err(OAuthError::SessionEnded {
                did: data.did.clone(),
                cause,
            });
        }
        match dpop {
            Some(dpop) => Ok(Self::from_parts(client, data, dpop, None)),
            None => Err(OAuthError::Internal(
                "a session without a DPoP key was not ended".to_owned(),
            )),
        }
    }

    fn data(&self) -> std::sync::RwLockReadGuard<'_, SessionData> {
        // Every write replaces the whole record, so a poisoned lock still holds a valid one.
        self.inner
            .data
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current access token, without copying the whole record (every request reads it).
    fn access_token(&self) -> crate::secret::AccessToken {
        self.data().access_token.clone()
    }

    fn replace_data(&self, data: SessionData) {
        *self
            .inner
            .data
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = data;
    }

    /// The account's DID: the session's identity (E6).
    #[must_use]
    pub fn did(&self) -> &Did {
        &self.inner.did
    }

    /// The session id (several sessions may exist per DID).
    #[must_use]
    pub fn session_id(&self) -> &SessionId {
        &self.inner.id
    }

    /// The handle verified at sign-in, for display.
    #[must_use]
    pub fn handle(&self) -> Option<Handle> {
        self.data().handle.clone()
    }

    /// The PDS requests go to.
    #[must_use]
    pub fn pds(&self) -> Url {
        self.data().pds.clone()
    }

    /// The authorization server.
    #[must_use]
    pub fn issuer(&self) -> String {
        self.data().issuer.clone()
    }

    /// When the access token expires (Unix seconds), if the server said.
    #[must_use]
    pub fn expires_at(&self) -> Option<i64> {
        self.data().expires_at
    }

    /// The scope the server granted (L7).
    #[must_use]
    pub fn granted_scope(&self) -> Scope {
        Scope::parse(&self.data().scope)
    }

    /// What the granted scope allows; gate features on this (L7).
    ///
    /// # Examples
    /// ```no_run
    /// # fn demo(session: atoauth::OAuthSession) {
    /// let granted = session.permissions();
    /// let can_upload = granted.allows_blob("image/png");
    /// let can_post = granted.allows_repo(&atoauth::nsid!("app.bsky.feed.post"),
    ///     atoauth::scope::RepoAction::Create);
    /// # }
    /// ```
    #[must_use]
    pub fn permissions(&self) -> Permissions {
        Permissions::from(&self.granted_scope())
    }

    /// What was asked for but not granted, and the reverse (G8: plan an upgrade flow).
    #[must_use]
    pub fn scope_diff(&self) -> ScopeDiff {
        let data = self.data();
        ScopeDiff::between(
            &Scope::parse(&data.requested_scope),
            &Scope::parse(&data.scope),
        )
    }

    /// A copy of the stored record (secrets stay redacted in its `Debug`).
    #[must_use]
    pub fn snapshot(&self) -> SessionData {
        self.data().clone()
    }

    /// The authorization server's metadata (cached by discovery).
    async fn server(&self) -> Result<Arc<AuthorizationServerMetadata>, OAuthError> {
        let mut cached = self.inner.server.lock().await;
        if let Some(server) = cached.as_ref() {
            return Ok(Arc::clone(server));
        }
        let issuer = self.issuer();
        let server = self
            .inner
            .client
            .config()
            .discovery
            .authorization_server(&issuer, false)
            .await?;
        *cached = Some(Arc::clone(&server));
        Ok(server)
    }

    /// Signs out: revokes the tokens at the server (best effort, P1) and always deletes the
    /// session locally (P2).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(session: atoauth::OAuthSession) -> Result<(), atoauth::OAuthError> {
    /// let revocation = session.sign_out().await?;
    /// // Signed out here either way; a failed revocation leaves tokens that expire by themselves.
    /// println!("{revocation:?}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Only when the local deletion fails; the revocation outcome is returned either way.
    pub async fn sign_out(&self) -> Result<Revocation, OAuthError> {
        let data = self.snapshot();
        let outcome = match self.server().await {
            Ok(server) => {
                // Revoking the refresh token ends the whole grant on the reference AS.
                let (token, hint) = match &data.refresh_token {
                    Some(token) => (token.secret(), "refresh_token"),
                    None => (data.access_token.secret(), "access_token"),
                };
                self.inner
                    .client
                    .revoke(
                        &server,
                        token,
                        hint,
                        &data.auth,
                        (self.inner.dpop.as_ref(), &self.inner.nonces),
                    )
                    .await
            }
            Err(error) => Revocation::Failed(error.to_string()),
        };
        let client = &self.inner.client;
        let deleted = client
            .config()
            .sessions
            .delete(&self.inner.did, &self.inner.id)
            .await?;
        client
            .discard_dpop_key(&self.inner.did, &self.inner.id, &data.dpop_key)
            .await;
        if deleted {
            client.emit(&SessionEvent::Deleted {
                did: self.inner.did.clone(),
                session_id: self.inner.id.clone(),
                cause: SessionEndCause::SignedOut,
            });
        }
        Ok(outcome)
    }
}
