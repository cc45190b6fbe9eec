//! Client configuration (sections B, C, D): the client metadata document an app publishes at its
//! `client_id`, a builder that produces valid ones, the validator that checks any document, and
//! the `http://localhost` development client.

mod jwks;
mod loopback;
mod members;
mod redirect;
mod validate;

pub use jwks::check_jwks_document;
pub use loopback::{
    DEFAULT_LOOPBACK_REDIRECTS, LOOPBACK_REDIRECT_URI, LoopbackClient, is_loopback_client_id,
    redirect_matches,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
pub use validate::{MAX_CLIENT_METADATA_BYTES, ValidationOptions, check_client_metadata};

use crate::crypto::JwkSet;
use crate::rules::{Violation, Violations};

/// `web` (https redirects) or `native` (custom scheme or loopback redirects) (A2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationType {
    /// A native app.
    Native,
    /// A web app; the default.
    #[default]
    Web,
}

/// How the client authenticates at the token endpoint (A1, B5.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// A public client.
    None,
    /// A confidential client signing assertions (section J).
    PrivateKeyJwt,
}

/// A client metadata document (B5). Serialises to what the app publishes at `client_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    /// The URL the document is served at (B1, B5.1).
    pub client_id: String,
    /// `web` or `native` (B5.2).
    pub application_type: ApplicationType,
    /// Grant types (B5.3).
    pub grant_types: Vec<String>,
    /// Every scope the client may request (B5.4).
    pub scope: String,
    /// `["code"]` (B5.5).
    pub response_types: Vec<String>,
    /// Redirect URIs (B5.6, section D).
    pub redirect_uris: Vec<String>,
    /// Always written (B5.7).
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// `ES256` for confidential clients, absent for public ones (B5.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Always `true` (B5.9).
    pub dpop_bound_access_tokens: bool,
    /// The public keys, inline (B5.10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// Or where they are published (B5.10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Display name (B5.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Home page (B5.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Logo (B5.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Terms of service (B5.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Privacy policy (B5.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
}

impl ClientMetadata {
    /// A builder for a web client served at `client_id`.
    pub fn builder(client_id: impl Into<String>) -> ClientMetadataBuilder {
        ClientMetadataBuilder {
            metadata: Self {
                client_id: client_id.into(),
                application_type: ApplicationType::Web,
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                scope: "atproto".into(),
                response_types: vec!["code".into()],
                redirect_uris: Vec::new(),
                token_endpoint_auth_method: TokenEndpointAuthMethod::None,
                token_endpoint_auth_signing_alg: None,
                dpop_bound_access_tokens: true,
                jwks: None,
                jwks_uri: None,
                client_name: None,
                client_uri: None,
                logo_uri: None,
                tos_uri: None,
                policy_uri: None,
            },
            options: ValidationOptions::default(),
        }
    }

    /// The document as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Every finding of sections B and D (B10): errors and warnings.
    #[must_use]
    pub fn check(&self, options: &ValidationOptions) -> Vec<Violation> {
        check_client_metadata(&self.to_json(), options)
    }

    /// Whether this is a confidential client.
    #[must_use]
    pub fn is_confidential(&self) -> bool {
        self.token_endpoint_auth_method == TokenEndpointAuthMethod::PrivateKeyJwt
    }
}

/// Builds a [`ClientMetadata`] and validates it in [`ClientMetadataBuilder::build`] (B10).
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientMetadataBuilder {
    metadata: ClientMetadata,
    options: ValidationOptions,
}

impl ClientMetadataBuilder {
    /// `web` (default) or `native`.
    pub fn application_type(mut self, application_type: ApplicationType) -> Self {
        self.metadata.application_type = application_type;
        self
    }

    /// Every scope the client may request; must include `atproto` (B5.4).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.metadata.scope = scope.into();
        self
    }

    /// Adds a redirect URI.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.metadata.redirect_uris.push(uri.into());
        self
    }

    /// A confidential client whose public keys are inline (J1).
    pub fn private_key_jwt_with_jwks(mut self, jwks: JwkSet) -> Self {
        self.metadata.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        self.metadata.token_endpoint_auth_signing_alg = Some("ES256".into());
        self.metadata.jwks = Some(jwks);
        self.metadata.jwks_uri = None;
        self
    }

    /// A confidential client whose public keys are served at `jwks_uri` (J1).
    pub fn private_key_jwt_with_jwks_uri(mut self, jwks_uri: impl Into<String>) -> Self {
        self.metadata.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        self.metadata.token_endpoint_auth_signing_alg = Some("ES256".into());
        self.metadata.jwks_uri = Some(jwks_uri.into());
        self.metadata.jwks = None;
        self
    }

    /// Display name.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.metadata.client_name = Some(name.into());
        self
    }

    /// Home page: same origin as `client_id`, a parent of its path (B5.11).
    pub fn client_uri(mut self, uri: impl Into<String>) -> Self {
        self.metadata.client_uri = Some(uri.into());
        self
    }

    /// Logo, terms of service and privacy policy (https).
    pub fn links(
        mut self,
        logo_uri: Option<String>,
        tos_uri: Option<String>,
        policy_uri: Option<String>,
    ) -> Self {
        self.metadata.logo_uri = logo_uri;
        self.metadata.tos_uri = tos_uri;
        self.metadata.policy_uri = policy_uri;
        self
    }

    /// Accepts a port in `client_id`: only for a client host on a test machine (the spec
    /// forbids it, B1; the official authorization server accepts it).
    pub fn insecure_allow_client_id_port(mut self) -> Self {
        self.options.insecure_allow_client_id_port = true;
        self
    }

    /// The document, if it has no error (warnings do not stop it).
    ///
    /// # Errors
    /// Every error, each with its rule id.
    pub fn build(self) -> Result<ClientMetadata, Violations> {
        let errors: Vec<Violation> = self
            .metadata
            .check(&self.options)
            .into_iter()
            .filter(Violation::is_error)
            .collect();
        if errors.is_empty() {
            Ok(self.metadata)
        } else {
            Err(Violations(errors))
        }
    }
}

#[cfg(test)]
mod tests;
