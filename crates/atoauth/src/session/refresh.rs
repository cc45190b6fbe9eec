//! Refresh (section N): one at a time per session, re-reading the store under the lock so a
//! refresh token is never sent twice (N4, N4b); the account's authorization server re-checked
//! first (N6, R1–R3); run on a spawned task so a dropped caller cannot lose the response (N4).

use std::sync::Arc;

use super::OAuthSession;
use crate::engine::token::{TokenSet, parse_token_response};
use crate::error::{Endpoint, OAuthError, SessionEndCause};
use crate::events::SessionEvent;
use crate::metadata::AuthorizationServerMetadata;
use crate::scope::Scope;
use crate::secret::{AccessToken, RefreshToken};
use crate::store::SessionData;
use crate::syntax::AtIdentifier;

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
    /// Forces a refresh now (unless another task or process refreshed while this one waited
    /// for the lock: then its tokens are used).
    ///
    /// # Errors
    /// [`OAuthError::SessionEnded`] when the server refuses the refresh token (the session is
    /// deleted), network and store failures otherwise.
    pub async fn refresh(&self) -> Result<(), OAuthError> {
        self.refresh_for(Reason::Forced).await
    }

    /// M5: refresh a little before expiry, earlier by a per-session jitter so that instances
    /// sharing a store spread their refreshes.
    pub(super) fn needs_refresh(&self) -> bool {
        let client = &self.inner.client;
        let early = client.config().refresh_margin_secs + self.jitter();
        self.expires_at()
            .is_some_and(|expires_at| expires_at.saturating_sub(early) <= client.clock().local())
    }

    /// A stable 0..=jitter seconds for this session (FNV-1a of its id).
    fn jitter(&self) -> i64 {
        let range = self.inner.client.config().refresh_jitter_secs;
        if range <= 0 {
            return 0;
        }
        let hash = self
            .inner
            .id
            .secret()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        i64::try_from(hash % u64::try_from(range + 1).unwrap_or(1)).unwrap_or(0)
    }

    pub(super) async fn refresh_for(&self, reason: Reason) -> Result<(), OAuthError> {
        let session = self.clone();
        // N4: the task owns the refresh; dropping the caller's future does not cancel it.
        crate::task::run_detached(async move { session.refresh_locked(reason).await })
            .await
            .map_err(|e| OAuthError::Internal(format!("the refresh task failed: {e}")))?
    }

    async fn refresh_locked(&self, reason: Reason) -> Result<(), OAuthError> {
        let client = Arc::clone(&self.inner.client);
        let result = match client.refresh_guards(&self.inner.did, &self.inner.id).await {
            Ok(guards) => {
                let result = self.refresh_under_lock(reason).await;
                // The shared lock first, then the in-process one (the reverse of taking them).
                for guard in guards.into_iter().rev() {
                    guard.release().await;
                }
                result
            }
            Err(error) => Err(error),
        };
        // An ended session has told the app already (`Deleted`); this is the one that stays.
        if let Err(error) = &result
            && !matches!(error, OAuthError::SessionEnded { .. })
        {
            client.emit(&SessionEvent::RefreshFailed {
                did: self.inner.did.clone(),
                session_id: self.inner.id.clone(),
                error: error.to_string(),
            });
        }
        result
    }

    async fn refresh_under_lock(&self, reason: Reason) -> Result<(), OAuthError> {
        let client = Arc::clone(&self.inner.client);

        // N4b: re-read under the lock; someone else may have refreshed already.
        let stored = self.reread().await?;
        let held = self.snapshot();
        let someone_refreshed = stored.refresh_token != held.refresh_token;
        let still_needed = match &reason {
            Reason::Forced => !someone_refreshed,
            Reason::Rejected(token) => stored.access_token == *token,
            Reason::Expiring => {
                !someone_refreshed
                    && stored.expires_at.is_some_and(|at| {
                        at.saturating_sub(client.config().refresh_margin_secs)
                            <= client.clock().local()
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
            .config()
            .resolver
            .resolve_fresh(&AtIdentifier::Did(self.inner.did.clone()))
            .await?;
        let found = client
            .config()
            .discovery
            .for_pds(&identity.pds, true)
            .await?;
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

        let tokens = match self.request_refresh(&server, &stored, &refresh_token).await {
            Ok(tokens) => tokens,
            Err(OAuthError::Server {
                error, description, ..
            }) if error == "invalid_grant" => {
                // N5: a worker without our lock may have stored new tokens meanwhile.
                let again = self.reread().await?;
                if again.refresh_token.as_ref() != Some(&refresh_token) {
                    self.replace_data(again);
                    return Ok(());
                }
                return Err(self
                    .end(SessionEndCause::RefreshRejected { description })
                    .await);
            }
            Err(OAuthError::SessionEnded { cause, .. }) => return Err(self.end(cause).await),
            Err(error) => return Err(error),
        };
        // N7: the same account.
        if tokens.sub != self.inner.did {
            self.revoke_quietly(&server, &tokens.access_token, &stored)
                .await;
            let _ = self.end(SessionEndCause::TokenRejected).await;
            return Err(OAuthError::SubjectMismatch {
                expected: self.inner.did.clone(),
                actual: tokens.sub.clone(),
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
            updated_at: client.clock().local(),
            ..stored
        };
        // N3: stored as one unit before use; P3: if that fails, the new tokens are revoked.
        if let Err(error) = client.config().sessions.upsert(&updated).await {
            self.revoke_quietly(&server, &updated.access_token, &updated)
                .await;
            return Err(OAuthError::PersistFailed(error));
        }
        let before = stored.scope.clone();
        let after = updated.scope.clone();
        self.replace_data(updated);
        client.emit(&SessionEvent::Updated {
            did: self.inner.did.clone(),
            session_id: self.inner.id.clone(),
        });
        // Compared by meaning: the same permissions in another order are no change (§6.40).
        if before != after
            && Scope::parse(&before).permissions() != Scope::parse(&after).permissions()
        {
            client.emit(&SessionEvent::ScopeChanged {
                did: self.inner.did.clone(),
                session_id: self.inner.id.clone(),
                before,
                after,
            });
        }
        Ok(())
    }

    /// The refresh request, sent at most twice: when the first attempt is lost in transit (no
    /// answer at all), the same refresh token is sent once more. If the server never saw the
    /// first request this succeeds; if it did, the server calls it a replay (`invalid_grant`)
    /// and the session ends with a typed cause — never a loop, never half-written tokens.
    async fn request_refresh(
        &self,
        server: &AuthorizationServerMetadata,
        stored: &SessionData,
        refresh_token: &RefreshToken,
    ) -> Result<TokenSet, OAuthError> {
        let client = &self.inner.client;
        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.secret()),
        ];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = client
                .post_to_server(
                    server,
                    &server.token_endpoint,
                    &params,
                    &stored.auth,
                    (self.inner.dpop.as_ref(), &self.inner.nonces),
                    Some(&self.inner.did),
                )
                .await;
            match sent {
                Ok(response) => {
                    return parse_token_response(
                        Endpoint::Refresh,
                        &response,
                        client.clock().local(),
                    );
                }
                Err(OAuthError::Http { url, source }) if attempt == 1 => {
                    tracing::warn!(%url, error = %source, "refresh answer lost; retrying once");
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn reread(&self) -> Result<SessionData, OAuthError> {
        self.inner
            .client
            .config()
            .sessions
            .get(&self.inner.did, &self.inner.id)
            .await?
            .ok_or_else(|| OAuthError::SessionNotFound {
                did: self.inner.did.clone(),
            })
    }

    async fn revoke_quietly(
        &self,
        server: &AuthorizationServerMetadata,
        token: &AccessToken,
        data: &SessionData,
    ) {
        let _ = self
            .inner
            .client
            .revoke(
                server,
                token.secret(),
                "access_token",
                &data.auth,
                (self.inner.dpop.as_ref(), &self.inner.nonces),
            )
            .await;
    }

    /// Deletes the session, tells the app, and returns the error that explains why.
    pub(super) async fn end(&self, cause: SessionEndCause) -> OAuthError {
        let client = &self.inner.client;
        let jwk = self.snapshot().dpop_key;
        client
            .discard_dpop_key(&self.inner.did, &self.inner.id, &jwk)
            .await;
        match client
            .config()
            .sessions
            .delete(&self.inner.did, &self.inner.id)
            .await
        {
            Ok(_) => client.emit(&SessionEvent::Deleted {
                did: self.inner.did.clone(),
                session_id: self.inner.id.clone(),
                cause: cause.clone(),
            }),
            Err(error) => tracing::warn!(%error, "could not delete an ended session"),
        }
        OAuthError::SessionEnded {
            did: self.inner.did.clone(),
            cause,
        }
    }
}
