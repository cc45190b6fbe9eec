//! Requests to the authorization server: form bodies with client authentication (J2, J9), sent
//! with DPoP (I1); and revocation (P1).

use url::Url;

use super::Engine;
use crate::client_auth::CLIENT_ASSERTION_TYPE;
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
    /// The binding new authorizations use: `none`, or `private_key_jwt` with the current key.
    pub(crate) fn new_binding(&self) -> ClientAuthBinding {
        match &self.config.keyset {
            Some(keys) => ClientAuthBinding {
                method: TokenEndpointAuthMethod::PrivateKeyJwt,
                kid: Some(keys.current_kid().to_owned()),
            },
            None => ClientAuthBinding {
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
        let assertion = self.client_assertion(binding, &server.issuer, did)?;
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
    fn client_assertion(
        &self,
        binding: &ClientAuthBinding,
        issuer: &str,
        did: Option<&Did>,
    ) -> Result<Option<String>, OAuthError> {
        if binding.method == TokenEndpointAuthMethod::None {
            return Ok(None);
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
