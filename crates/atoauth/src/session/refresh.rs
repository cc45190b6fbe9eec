//! Refresh (section N): one at a time per session, re-reading the store under the lock so a
//! refresh token is never sent twice (N4, N4b); the account's authorization server re-checked
//! first (N6, R1–R3); run on a spawned task so a dropped caller cannot lose the response (N4).

use std::sync::Arc;

use super::OAuthSession;
use crate::error::{Endpoint, OAuthError, SessionEndCause};
use crate::secret::AccessToken;
use crate::store::SessionData;
use crate::syntax::AtIdentifier;
use crate::token::parse_token_response;

/// Why a refresh is wanted.
#[derive(Clone, Debug)]
pub(super) enum Reason {
    /// The caller asked for one.
    Forced,
    /// The access token is (nearly) expired.
    Expiring,
    /// The PDS refused this access token (O2).
    Rejected(AccessToken),
}

impl OAuthSession {
    /// Forces a refresh now.
    ///
    /// # Errors
    /// [`OAuthError::SessionEnded`] when the server refuses the refresh token (the session is
    /// deleted), network and store failures otherwise.
    pub async fn refresh(&self) -> Result<(), OAuthError> {
        self.refresh_for(Reason::Forced).await
    }

    pub(super) fn needs_refresh(&self) -> bool {
        let margin = self.inner.client.refresh_margin_secs;
        let now = self.inner.client.clock.unix_time();
        self.expires_at()
            .is_some_and(|expires_at| expires_at.saturating_sub(margin) <= now)
    }

    pub(super) async fn refresh_for(&self, reason: Reason) -> Result<(), OAuthError> {
        let session = self.clone();
        // N4: the task owns the refresh; dropping the caller's future does not cancel it.
        let task = tokio::spawn(async move { session.refresh_locked(reason).await });
        task.await
            .map_err(|e| OAuthError::Config(format!("the refresh task failed: {e}")))?
    }

    async fn refresh_locked(&self, reason: Reason) -> Result<(), OAuthError> {
        let client = Arc::clone(&self.inner.client);
        let lock = client.refresh_lock(&self.inner.did, &self.inner.id);
        let _held = lock.lock().await;

        // N4b: re-read under the lock; someone else may have refreshed already.
        let stored = client
            .sessions
            .get(&self.inner.did, &self.inner.id)
            .await?
            .ok_or_else(|| OAuthError::SessionNotFound {
                did: self.inner.did.to_string(),
            })?;
        let held = self.snapshot();
        let someone_refreshed = stored.refresh_token != held.refresh_token;
        let still_needed = match &reason {
            Reason::Forced => !someone_refreshed,
            Reason::Rejected(token) => stored.access_token == *token,
            Reason::Expiring => {
                !someone_refreshed
                    && stored.expires_at.is_some_and(|at| {
                        at.saturating_sub(client.refresh_margin_secs) <= client.clock.unix_time()
                    })
            }
        };
        if !still_needed {
            self.replace_data(stored);
            return Ok(());
        }
        let Some(refresh_token) = stored.refresh_token.clone() else {
            return Err(self.end(SessionEndCause::Expired).await);
        };

        // N6, R1–R3: is the account still served by this authorization server?
        let identity = client
            .resolver
            .resolve_fresh(&AtIdentifier::Did(self.inner.did.clone()))
            .await?;
        let found = client.discovery.for_pds(&identity.pds, true).await?;
        if found.server.issuer != stored.issuer {
            return Err(self
                .end(SessionEndCause::AuthorizationServerChanged {
                    was: stored.issuer.clone(),
                    now: found.server.issuer.clone(),
                })
                .await);
        }
        let server = found.server;
        *self.inner.server.lock().await = Some(Arc::clone(&server));

        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.secret()),
        ];
        let sent = client
            .post_to_server(
                &server,
                &server.token_endpoint,
                &params,
                &stored.auth,
                (&self.inner.dpop, &self.inner.nonces),
                Some(&self.inner.did),
            )
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(OAuthError::SessionEnded { cause, .. }) => return Err(self.end(cause).await),
            Err(error) => return Err(error),
        };
        let now = client.clock.unix_time();
        let tokens = match parse_token_response(Endpoint::Refresh, &response, now) {
            Ok(tokens) => tokens,
            Err(OAuthError::Server {
                error, description, ..
            }) if error == "invalid_grant" => {
                return Err(self
                    .end(SessionEndCause::RefreshRejected { description })
                    .await);
            }
            Err(error) => return Err(error),
        };
        // N7: the same account.
        if tokens.sub != self.inner.did {
            let _ = client
                .revoke(
                    &server,
                    tokens.access_token.secret(),
                    "access_token",
                    &stored.auth,
                    (&self.inner.dpop, &self.inner.nonces),
                )
                .await;
            let _ = client
                .sessions
                .delete(&self.inner.did, &self.inner.id)
                .await;
            return Err(OAuthError::SubjectMismatch {
                expected: self.inner.did.to_string(),
                actual: tokens.sub.to_string(),
            });
        }
        let updated = SessionData {
            pds: identity.pds,
            scope: tokens.scope,
            access_token: tokens.access_token,
            // A server that does not rotate refresh tokens keeps the old one valid.
            refresh_token: tokens.refresh_token.or(Some(refresh_token)),
            expires_at: tokens.expires_at,
            dpop_nonces: self.inner.nonces.snapshot(),
            updated_at: now,
            ..stored
        };
        // N3: stored as one unit before use; P3: if that fails, the new tokens are revoked.
        if let Err(error) = client.sessions.upsert(&updated).await {
            let _ = client
                .revoke(
                    &server,
                    updated.access_token.secret(),
                    "access_token",
                    &updated.auth,
                    (&self.inner.dpop, &self.inner.nonces),
                )
                .await;
            return Err(OAuthError::PersistFailed(error));
        }
        self.replace_data(updated);
        Ok(())
    }

    /// Deletes the session and returns the error that explains why.
    pub(super) async fn end(&self, cause: SessionEndCause) -> OAuthError {
        if let Err(error) = self
            .inner
            .client
            .sessions
            .delete(&self.inner.did, &self.inner.id)
            .await
        {
            tracing::warn!(%error, "could not delete an ended session");
        }
        OAuthError::SessionEnded {
            did: self.inner.did.to_string(),
            cause,
        }
    }
}
