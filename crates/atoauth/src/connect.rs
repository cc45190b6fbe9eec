//! Where the client hands over to the session: finishing a sign-in and resuming a stored
//! session both end in an [`OAuthSession`]. This is the one place that knows both sides, so
//! that `client/` and `session/` each depend only on the engine.

use std::sync::Arc;

use crate::client::{CallbackParams, OAuthClient};
use crate::error::OAuthError;
use crate::secret::SessionId;
use crate::session::{CompletedAuthorization, OAuthSession};
use crate::store::SessionData;
use crate::syntax::Did;

impl OAuthClient {
    /// Finishes a sign-in from the callback parameters.
    ///
    /// # Errors
    /// [`OAuthError::Callback`] for an unknown, expired or replayed `state` or a wrong `iss`;
    /// [`OAuthError::AuthorizationFailed`] when the server sent an error (e.g. `access_denied`);
    /// token, subject and authority failures (tokens are then revoked, L5); store failures.
    pub async fn complete_authorization(
        &self,
        params: CallbackParams,
    ) -> Result<CompletedAuthorization, OAuthError> {
        self.complete(params, None).await
    }

    /// [`OAuthClient::complete_authorization`] for a flow bound to one browser: the app state
    /// given to `start_authorization` must equal `expected_app_state` (for example a hash of the
    /// browser's session cookie), checked before the code is exchanged. A callback opened in
    /// another browser is refused and its code never used.
    ///
    /// # Errors
    /// As `complete_authorization`, plus [`OAuthError::Callback`] (`K2`) for another browser.
    pub async fn complete_authorization_bound(
        &self,
        params: CallbackParams,
        expected_app_state: &str,
    ) -> Result<CompletedAuthorization, OAuthError> {
        self.complete(params, Some(expected_app_state)).await
    }

    async fn complete(
        &self,
        params: CallbackParams,
        expected_app_state: Option<&str>,
    ) -> Result<CompletedAuthorization, OAuthError> {
        let done = self.establish(params, expected_app_state).await?;
        if self.inner.config().replace_sessions {
            self.sign_out_others(&done.data).await;
        }
        let session = OAuthSession::from_parts(
            Arc::clone(&self.inner),
            done.data,
            done.dpop,
            Some(done.server),
        );
        Ok(CompletedAuthorization {
            session,
            app_state: done.app_state,
        })
    }

    /// L8: after a new sign-in, the account's older sessions are signed out.
    async fn sign_out_others(&self, new: &SessionData) {
        let Ok(others) = self.inner.config().sessions.list_by_did(&new.did).await else {
            return;
        };
        for old in others
            .into_iter()
            .filter(|s| s.session_id != new.session_id)
        {
            match OAuthSession::resume(Arc::clone(&self.inner), old).await {
                Ok(session) => {
                    let _ = session.sign_out().await;
                }
                Err(error) => tracing::debug!(%error, "an older session was already unusable"),
            }
        }
    }

    /// Resumes a stored session (Q3). It refreshes only when needed, on first use.
    ///
    /// # Examples
    /// After a restart, from the DID and session id the app kept (in its own user table, or a
    /// cookie's browser session):
    ///
    /// ```no_run
    /// # async fn demo(client: atoauth::OAuthClient, did: atoauth::Did, id: atoauth::SessionId)
    /// # -> Result<(), atoauth::OAuthError> {
    /// match client.restore(&did, &id).await {
    ///     Ok(session) => println!("welcome back, {}", session.did()),
    ///     Err(error) if error.requires_sign_in() => println!("please sign in again"),
    ///     Err(error) => return Err(error),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`OAuthError::SessionNotFound`], a store failure, or an ended session (which is deleted).
    pub async fn restore(&self, did: &Did, id: &SessionId) -> Result<OAuthSession, OAuthError> {
        let data = self
            .inner
            .config()
            .sessions
            .get(did, id)
            .await?
            .ok_or_else(|| OAuthError::SessionNotFound { did: did.clone() })?;
        OAuthSession::resume(Arc::clone(&self.inner), data).await
    }
}
