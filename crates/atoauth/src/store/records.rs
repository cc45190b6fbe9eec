//! What the stores hold: a pending authorization (G7) and a session (L6). Both serialise to JSON
//! for backends that store documents; their `Debug` output redacts every secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::client_metadata::TokenEndpointAuthMethod;
use crate::crypto::Jwk;
use crate::secret::{AccessToken, CodeVerifier, RefreshToken, SessionId};
use crate::syntax::{Did, Handle};

/// How a session authenticates to its authorization server; fixed for its life (J6, M4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAuthBinding {
    /// `none` or `private_key_jwt`.
    pub method: TokenEndpointAuthMethod,
    /// The signing key's id, for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// Everything the callback needs, saved before the redirect (G7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The authorization server's issuer (K4).
    pub issuer: String,
    /// The client id the flow used (byte-identical in PAR and token requests).
    pub client_id: String,
    /// The DPoP private key of this authorization (I2).
    pub dpop_key: Jwk,
    /// The AS nonce last seen (I6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_nonce: Option<String>,
    /// PKCE verifier (H3).
    pub code_verifier: CodeVerifier,
    /// Sent again in the code exchange (D6).
    pub redirect_uri: String,
    /// Client authentication and key (J6).
    pub auth: ClientAuthBinding,
    /// The scope requested.
    pub scope: String,
    /// The requested scope with its permission sets expanded, as the client predicted the grant
    /// (when it has a permission-set resolver and the scope has `include:` tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expanded_scope: Option<String>,
    /// The DID the flow started from, when it started from an account (L3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_did: Option<Did>,
    /// The app's own data, returned by `complete_authorization` (never sent to the AS, G6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_state: Option<String>,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time after which the callback is refused.
    pub expires_at: i64,
}

/// A signed-in session (L6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    /// The account (`sub`): the session's primary key (E6).
    pub did: Did,
    /// Tells apart several sessions of one DID.
    pub session_id: SessionId,
    /// The handle at sign-in, verified both ways; display only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<Handle>,
    /// The authorization server (`iss`).
    pub issuer: String,
    /// The PDS, from the DID document (O1, R3).
    pub pds: Url,
    /// The client id the session belongs to.
    pub client_id: String,
    /// Client authentication (J6).
    pub auth: ClientAuthBinding,
    /// The scope the server granted (L7).
    pub scope: String,
    /// The scope the app asked for.
    pub requested_scope: String,
    /// The access token (opaque, M1).
    pub access_token: AccessToken,
    /// The refresh token, single-use (N3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// Unix time the access token expires, when the server said (L2.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The session's DPoP private key (I2).
    pub dpop_key: Jwk,
    /// DPoP nonces by server origin (I6).
    #[serde(default)]
    pub dpop_nonces: BTreeMap<String, String>,
    /// Unix time of sign-in.
    pub created_at: i64,
    /// Unix time of the last token change.
    pub updated_at: i64,
}
