//! Requests to the authorization server: form bodies with client authentication (J2, J9), sent
//! with DPoP (I1); and revocation (P1).

use url::Url;

use super::Engine;
use crate::client_auth::CLIENT_ASSERTION_TYPE;
use crate::client_auth::remote::{AssertionError, AssertionRequest};
use crate::client_metadata::TokenEndpointAuthMethod;
use crate::dpop::{DpopKey, NonceCache};
use crate::engine::transport::{DpopSender, Replayable, Server};
use crate::error::{OAuthError, SessionEndCause};
use crate::http::Response;
use crate::metadata::AuthorizationServerMetadata;
use crate::store::ClientAuthBinding;
use crate::syntax::Did;

/// What became of a revocation request (P1: best effort).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// The server confirmed (HTTP 200 or 204, or any 2xx).
    Revoked,
    /// The server has no revocation endpoint.
    Unsupported,
    /// The request failed; the reason, for logs.
    Failed(String),
}

impl Engine {
    /// The binding new authorizations use: `none`, or `private_key_jwt` with the current key
    /// (for assertions from elsewhere, the key that signs the first one: see
    /// [`post_to_server_binding`](Self::post_to_server_binding)).
    pub(crate) fn new_binding(&self) -> ClientAuthBinding {
        match (&self.config.keyset, &self.config.assertion_source) {
            (Some(keys), _) => ClientAuthBinding {
                method: TokenEndpointAuthMethod::PrivateKeyJwt,
                kid: Some(keys.current_kid().to_owned()),
            },
            (None, Some(_)) => ClientAuthBinding {
                method: TokenEndpointAuthMethod::PrivateKeyJwt,
                kid: None,
            },
            (None, None) => ClientAuthBinding {
                method: TokenEndpointAuthMethod::None,
                kid: None,
            },
        }
    }

    pub(crate) fn dpop_sender<'a>(
        &'a self,
        key: &'a DpopKey,
        nonces: &'a NonceCache,
    ) -> DpopSender<'a> {
        DpopSender {
            http: self.config.http.as_ref(),
            key,
            nonces,
            clock: &self.clock,
            random: self.config.random.as_ref(),
            require_nonce: self.config.require_dpop_nonce,
        }
    }

    /// POSTs `params` plus client authentication to an AS endpoint, with DPoP.
    pub(crate) async fn post_to_server(
        &self,
        server: &AuthorizationServerMetadata,
        endpoint: &Url,
        params: &[(&str, &str)],
        binding: &ClientAuthBinding,
        dpop: (&DpopKey, &NonceCache),
        did: Option<&Did>,
    ) -> Result<Response, OAuthError> {
        let mut binding = binding.clone();
        self.post_to_server_binding(server, endpoint, params, &mut binding, dpop, did)
            .await
    }

    /// As [`post_to_server`](Self::post_to_server); a binding without a `kid` learns the one
    /// that signed (a new authorization whose assertions come from a backend, J6).
    pub(crate) async fn post_to_server_binding(
        &self,
        server: &AuthorizationServerMetadata,
        endpoint: &Url,
        params: &[(&str, &str)],
        binding: &mut ClientAuthBinding,
        dpop: (&DpopKey, &NonceCache),
        did: Option<&Did>,
    ) -> Result<Response, OAuthError> {
        let assertion = self
            .client_assertion(binding, &server.issuer, did, dpop.0)
            .await?;
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(params.len() + 3);
        form.extend_from_slice(params);
        form.push(("client_id", &self.config.client_id));
        if let Some(assertion) = &assertion {
            form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
            form.push(("client_assertion", assertion));
        }
        let mut request = Replayable::form(endpoint, &form);
        if let Some(timeout) = self.config.request_timeout {
            request.limits.timeout = timeout;
        }
        self.dpop_sender(dpop.0, dpop.1)
            .send(Server::Authorization, &request, None)
            .await
    }

    /// J2/J6: a fresh assertion signed by the session's key, or nothing for a public client.
    async fn client_assertion(
        &self,
        binding: &mut ClientAuthBinding,
        issuer: &str,
        did: Option<&Did>,
        dpop_key: &DpopKey,
    ) -> Result<Option<String>, OAuthError> {
        if binding.method == TokenEndpointAuthMethod::None {
            return Ok(None);
        }
        if let Some(source) = &self.config.assertion_source {
            let request = AssertionRequest {
                client_id: &self.config.client_id,
                audience: issuer,
                kid: binding.kid.as_deref(),
                dpop_key,
                clock: self.clock.base(),
                random: self.config.random.as_ref(),
            };
            let signed = source
                .assertion(request)
                .await
                .map_err(|error| assertion_failure(error, did))?;
            binding.kid = Some(signed.kid);
            return Ok(Some(signed.token));
        }
        let kid = binding.kid.as_deref().unwrap_or_default();
        let ended = || match did {
            Some(did) => OAuthError::SessionEnded {
                did: did.clone(),
                cause: SessionEndCause::KeyRemoved {
                    kid: kid.to_owned(),
                },
            },
            None => OAuthError::Config(crate::error::ConfigError::KeyNotInKeyset {
                kid: kid.to_owned(),
            }),
        };
        let keys = self.config.keyset.as_ref().ok_or_else(ended)?;
        // The issuer is an origin (F3): its own clock, as learnt from its answers.
        let assertion = keys.assertion(
            kid,
            &self.config.client_id,
            issuer,
            &self.clock.at(issuer),
            self.config.random.as_ref(),
        )?;
        assertion.map(Some).ok_or_else(ended)
    }

    /// Revokes `token` (P1). Never fails: the outcome is reported.
    pub(crate) async fn revoke(
        &self,
        server: &AuthorizationServerMetadata,
        token: &str,
        token_type_hint: &str,
        binding: &ClientAuthBinding,
        dpop: (&DpopKey, &NonceCache),
    ) -> Revocation {
        let Some(endpoint) = &server.revocation_endpoint else {
            return Revocation::Unsupported;
        };
        let params = [("token", token), ("token_type_hint", token_type_hint)];
        match self
            .post_to_server(server, endpoint, &params, binding, dpop, None)
            .await
        {
            Ok(response) if response.status().is_success() => Revocation::Revoked,
            Ok(response) => Revocation::Failed(
                crate::engine::token::server_error(crate::error::Endpoint::Revocation, &response)
                    .to_string(),
            ),
            Err(error) => Revocation::Failed(error.to_string()),
        }
    }
}

/// What a backend's refusal means: the end of a session that cannot get assertions any more
/// (J6, U8), or an error that leaves everything as it was.
fn assertion_failure(error: AssertionError, did: Option<&Did>) -> OAuthError {
    let cause = match &error {
        AssertionError::KeyRemoved { kid } => SessionEndCause::KeyRemoved { kid: kid.clone() },
        AssertionError::Refused { reason, .. } => SessionEndCause::AssertionRefused {
            reason: reason.clone(),
        },
        _ => return error.into(),
    };
    match did {
        Some(did) => OAuthError::SessionEnded {
            did: did.clone(),
            cause,
        },
        None => error.into(),
    }
}
