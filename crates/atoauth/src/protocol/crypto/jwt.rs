//! Compact JWS (RFC 7515 §7.1) signing with a header serialised once per key.

use serde::Serialize;

use super::{Es256Key, KeyError, base64url};

/// `base64url(header) + "."`, computed once per key and reused for every token it signs, so a
/// DPoP proof costs one claims serialisation and one signature (issue #5 item 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwsHeaderPrefix(String);

impl JwsHeaderPrefix {
    /// Serialises `header` once.
    ///
    /// # Errors
    /// Only if `header` cannot be serialised as JSON.
    pub fn new(header: &impl Serialize) -> Result<Self, serde_json::Error> {
        let json = serde_json::to_vec(header)?;
        let mut prefix = base64url(&json);
        prefix.push('.');
        Ok(Self(prefix))
    }

    /// Signs `claims` with `key`, returning `header.claims.signature`.
    ///
    /// # Errors
    /// When the claims cannot be serialised or the signer fails.
    pub fn sign(&self, key: &Es256Key, claims: &impl Serialize) -> Result<String, KeyError> {
        let mut token = self.signing_input(claims)?;
        let signature = key.sign(token.as_bytes())?;
        Self::append_signature(&mut token, &signature);
        Ok(token)
    }

    /// `header.claims`, the bytes a signer signs (for signers that work asynchronously).
    ///
    /// # Errors
    /// When the claims cannot be serialised.
    pub fn signing_input(&self, claims: &impl Serialize) -> Result<String, KeyError> {
        let claims = serde_json::to_vec(claims).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let encoded_claims = base64url(&claims);
        let mut token = String::with_capacity(self.0.len() + encoded_claims.len() + 88);
        token.push_str(&self.0);
        token.push_str(&encoded_claims);
        Ok(token)
    }

    /// Completes a [`signing_input`](Self::signing_input) into a compact JWS.
    pub fn append_signature(signing_input: &mut String, signature: &[u8]) {
        signing_input.push('.');
        signing_input.push_str(&base64url(signature));
    }
}
