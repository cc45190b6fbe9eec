//! `complete_authorization`: check the callback (section K), exchange the code (L1), check the
//! tokens and prove the issuer is authoritative for the account (L2–L5), and store the session.

use std::sync::Arc;

use super::OAuthClient;
use crate::crypto::{KeyError, random_token};
use crate::dpop::{DpopKey, NonceCache};
use crate::engine::Revocation;
use crate::engine::token::{TokenSet, issued_access_token, parse_token_response};
use crate::error::{Endpoint, OAuthError};
use crate::events::SessionEvent;
use crate::http::origin_of;
use crate::identity::ResolvedIdentity;
use crate::metadata::AuthorizationServerMetadata;
use crate::secret::{AccessToken, AuthorizationCode, SessionId, State};
use crate::store::{ClientAuthBinding, PendingAuthorization, SessionData};
use crate::syntax::{AtIdentifier, Did};

/// The query parameters of the redirect back to the app (K1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallbackParams {
    /// `state`.
    pub state: Option<State>,
    /// `code`.
    pub code: Option<AuthorizationCode>,
    /// `iss` (RFC 9207).
    pub iss: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `error_uri`.
    pub error_uri: Option<String>,
    /// A JARM `response` (unsupported, K1).
    pub response: Option<String>,
}

impl CallbackParams {
    /// Reads the parameters from a query string (with or without the leading `?`).
    #[must_use]
    pub fn from_query(query: &str) -> Self {
        let mut params = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            let value = value.into_owned();
            match name.as_ref() {
                "state" => params.state = Some(State::new(value)),
                "code" => params.code = Some(AuthorizationCode::new(value)),
                "iss" => params.iss = Some(value),
                "error" => params.error = Some(value),
                "error_description" => params.error_description = Some(value),
                "error_uri" => params.error_uri = Some(value),
                "response" => params.response = Some(value),
                _ => {}
            }
        }
        params
    }

    /// Reads the parameters from the full redirect URL.
    #[must_use]
    pub fn from_url(url: &url::Url) -> Self {
        Self::from_query(url.query().unwrap_or_default())
    }
}

/// A sign-in that went through: the stored session, its parsed DPoP key, the server that
/// issued it, and the app state. [`crate::OAuthSession`] is made from it one level up.
pub(crate) struct Established {
    pub(crate) data: SessionData,
    pub(crate) dpop: Arc<DpopKey>,
    pub(crate) server: Arc<AuthorizationServerMetadata>,
    pub(crate) app_state: Option<String>,
}

fn callback_error(rule: &'static str, reason: &str) -> OAuthError {
    OAuthError::Callback {
        rule,
        reason: reason.to_owned(),
    }
}

impl OAuthClient {
    /// Checks the callback, exchanges the code and stores the session (K, L).
    pub(crate) async fn establish(
        &self,
        params: CallbackParams,
        expected_app_state: Option<&str>,
    ) -> Result<Established, OAuthError> {
        let inner = &self.inner;
        if params.response.is_some() {
            return Err(callback_error("K1", "JARM responses are not supported"));
        }
        let state = params
            .state
            .as_ref()
            .ok_or_else(|| callback_error("K2", "no state parameter"))?;
        // K2: single use — taken, not read.
        let pending = inner.config().states.take(state).await?.ok_or_else(|| {
            callback_error(
                "K2",
                "unknown or already used state (start the sign-in again)",
            )
        })?;
        if pending.expires_at <= inner.clock().local() {
            return Err(callback_error(
                "K2",
                "the sign-in took too long; start again",
            ));
        }
        if let Some(expected) = expected_app_state {
            let bound = pending.app_state.as_deref().is_some_and(|actual| {
                subtle::ConstantTimeEq::ct_eq(actual.as_bytes(), expected.as_bytes()).into()
            });
            if !bound {
                // The real user's browser may still come back with this state: put it back,
                // so that a link opened elsewhere cannot burn the sign-in.
                let left = pending.expires_at - inner.clock().local();
                if let Ok(seconds) = u64::try_from(left) {
                    let ttl = std::time::Duration::from_secs(seconds);
                    inner.config().states.create(state, &pending, ttl).await?;
                }
                return Err(callback_error(
                    "K2",
                    "this sign-in was started in another browser",
                ));
            }
        }
        if let Some(error) = params.error {
            return Err(OAuthError::AuthorizationFailed {
                error,
                description: params.error_description,
                uri: params.error_uri,
                app_state: pending.app_state,
            });
        }
        let code = params
            .code
            .ok_or_else(|| callback_error("K4", "no code parameter"))?;
        let iss = params
            .iss
            .ok_or_else(|| callback_error("K4", "no iss parameter"))?;
        if iss != pending.issuer {
            return Err(callback_error(
                "K4",
                &format!("iss {iss:?} is not the issuer the flow started with"),
            ));
        }
        let server = inner
            .config()
            .discovery
            .authorization_server(&pending.issuer, false)
            .await?;
        let dpop = inner
            .restore_dpop_key(&pending.dpop_key)
            .await?
            .ok_or_else(|| {
                KeyError::External(
                    "the DPoP key of this sign-in is gone from the key store; sign in again"
                        .to_owned(),
                )
            })?;
        let nonces = NonceCache::default();
        if let Some(nonce) = &pending.dpop_nonce {
            nonces.update(&origin_of(&server.token_endpoint), nonce);
        }
        let params = [
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.code_verifier.secret()),
        ];
        let response = inner
            .post_to_server(
                &server,
                &server.token_endpoint,
                &params,
                &pending.auth,
                (&dpop, &nonces),
                None,
            )
            .await?;
        let now = inner.clock().local();
        let tokens = match parse_token_response(Endpoint::Token, &response, now) {
            Ok(tokens) => tokens,
            Err(error) => {
                // L5: a response that carried a token but failed a check is revoked.
                if let Some(token) = issued_access_token(&response) {
                    self.revoke_stray(&server, &token, &pending.auth, (&dpop, &nonces))
                        .await;
                }
                return Err(error);
            }
        };
        // L3, L4: the right account, and (from a fresh DID document) an issuer authoritative
        // for it; the same resolution gives the session its PDS and verified handle.
        let identity = match self.check_subject(&pending, &server, &tokens).await {
            Ok(identity) => identity,
            Err(error) => {
                self.revoke_stray(
                    &server,
                    &tokens.access_token,
                    &pending.auth,
                    (&dpop, &nonces),
                )
                .await;
                return Err(error);
            }
        };
        let handle = identity.handle.filter(|_| identity.handle_verified);
        let pds = identity.pds;
        let session_id = SessionId::new(random_token(inner.config().random.as_ref(), 16)?);
        let data = SessionData {
            did: tokens.sub.clone(),
            session_id,
            handle,
            issuer: server.issuer.clone(),
            pds,
            client_id: inner.config().client_id.clone(),
            auth: pending.auth.clone(),
            scope: tokens.scope.clone(),
            // Permission sets expanded (when the client resolves them), so that the requested
            // scope compares with the grant, which the server expanded too.
            requested_scope: pending
                .expanded_scope
                .clone()
                .unwrap_or_else(|| pending.scope.clone()),
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            dpop_key: pending.dpop_key.clone(),
            dpop_nonces: nonces.snapshot(),
            created_at: now,
            updated_at: now,
        };
        if let Err(error) = inner.config().sessions.upsert(&data).await {
            // P3: tokens we cannot keep must not stay valid.
            self.revoke_stray(
                &server,
                &tokens.access_token,
                &pending.auth,
                (&dpop, &nonces),
            )
            .await;
            return Err(OAuthError::PersistFailed(error));
        }
        inner.emit(&SessionEvent::Created {
            did: data.did.clone(),
            session_id: data.session_id.clone(),
        });
        let dpop = inner.remember_dpop_key(&data, dpop);
        Ok(Established {
            data,
            dpop,
            server,
            app_state: pending.app_state,
        })
    }

    /// L3 and L4: the right account, and an issuer authoritative for it.
    async fn check_subject(
        &self,
        pending: &PendingAuthorization,
        server: &AuthorizationServerMetadata,
        tokens: &TokenSet,
    ) -> Result<ResolvedIdentity, OAuthError> {
        if let Some(expected) = &pending.expected_did
            && expected != &tokens.sub
        {
            return Err(OAuthError::SubjectMismatch {
                expected: expected.clone(),
                actual: tokens.sub.clone(),
            });
        }
        self.check_authoritative(&tokens.sub, &server.issuer).await
    }

    /// L4: resolve `did` afresh (the identity cache bypassed, E5), take its PDS, and check the
    /// AS that PDS names is `issuer`. The PDS's metadata may come from the short metadata cache:
    /// it was fetched for this very flow moments ago, and a PDS that changed is fetched anew.
    pub(crate) async fn check_authoritative(
        &self,
        did: &Did,
        issuer: &str,
    ) -> Result<ResolvedIdentity, OAuthError> {
        let inner = &self.inner;
        let identity = inner
            .config()
            .resolver
            .resolve_fresh(&AtIdentifier::Did(did.clone()))
            .await?;
        let found = inner
            .config()
            .discovery
            .for_pds(&identity.pds, false)
            .await?;
        if found.server.issuer != issuer {
            return Err(OAuthError::NotAuthoritative {
                did: did.clone(),
                issuer: issuer.to_owned(),
                found: found.server.issuer.clone(),
            });
        }
        Ok(identity)
    }

    async fn revoke_stray(
        &self,
        server: &AuthorizationServerMetadata,
        token: &AccessToken,
        binding: &ClientAuthBinding,
        dpop: (&DpopKey, &NonceCache),
    ) {
        let outcome = self
            .inner
            .revoke(server, token.secret(), "access_token", binding, dpop)
            .await;
        if outcome != Revocation::Revoked {
            tracing::warn!(
                ?outcome,
                "could not revoke tokens issued to a failed sign-in"
            );
        }
    }
}
