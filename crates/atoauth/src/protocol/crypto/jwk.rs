//! JSON Web Keys (RFC 7517) for P-256, and the RFC 7638 thumbprint.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An elliptic-curve JWK. Only P-256 keys are created here, but any EC key can be read (a JWKS
/// may hold others, which the validator reports).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type; `EC` for the keys atoauth uses.
    pub kty: String,
    /// Curve; `P-256` for ES256.
    #[serde(default)]
    pub crv: String,
    /// The public x coordinate, base64url.
    #[serde(default)]
    pub x: String,
    /// The public y coordinate, base64url.
    #[serde(default)]
    pub y: String,
    /// The private scalar, base64url; absent in public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    /// Key id (J1, J3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm; `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use; `sig`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Other members (`key_ops`, `revoked`, …), kept so that a JWKS round-trips.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

// The private scalar is wiped from memory when the key goes.
impl Drop for Jwk {
    fn drop(&mut self) {
        if let Some(d) = &mut self.d {
            zeroize::Zeroize::zeroize(d);
        }
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("crv", &self.crv)
            .field("x", &self.x)
            .field("y", &self.y)
            .field("d", &self.d.as_ref().map(|_| "[redacted]"))
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// A public EC P-256 key from its base64url coordinates (as a WebCrypto export gives them).
    #[must_use]
    pub fn public_p256(x: String, y: String) -> Self {
        Self {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x,
            y,
            d: None,
            kid: None,
            alg: None,
            key_use: None,
            other: serde_json::Map::new(),
        }
    }

    /// The private scalar, when this is a private key.
    ///
    /// # Security Warning
    /// This is secret key material.
    #[must_use]
    pub fn private_scalar(&self) -> Option<&str> {
        self.d.as_deref()
    }

    pub(super) fn set_private_scalar(&mut self, d: String) {
        self.d = Some(d);
    }

    /// Whether this JWK carries a private part.
    #[must_use]
    pub fn is_private(&self) -> bool {
        self.d.is_some()
    }

    /// The public half: this key without `d`.
    #[must_use]
    pub fn to_public(&self) -> Self {
        let mut public = self.clone();
        if let Some(mut d) = public.d.take() {
            zeroize::Zeroize::zeroize(&mut d);
        }
        public
    }

    /// The same key marked for publication in a client JWKS: `alg` ES256, `use` sig.
    #[must_use]
    pub fn for_signing(mut self) -> Self {
        self.alg = Some("ES256".to_owned());
        self.key_use = Some("sig".to_owned());
        self
    }

    /// RFC 7638 §3.2: SHA-256 over the required members in lexicographic order, no white space.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        // The values are base64url or fixed names, so no JSON escaping is needed; serde_json
        // would escape anyway, but this keeps the member order explicit.
        let canonical = serde_json::json!({
            "crv": self.crv, "kty": self.kty, "x": self.x, "y": self.y,
        });
        super::sha256_base64url(canonical.to_string().as_bytes())
    }
}

/// A JWK Set (`{"keys": [...]}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_member_order_and_known_answer() {
        // RFC 7638 has only an RSA example; this P-256 vector is computed independently:
        // SHA-256('{"crv":"P-256","kty":"EC","x":"…","y":"…"}').
        let jwk = Jwk::public_p256(
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".to_owned(),
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".to_owned(),
        );
        assert_eq!(
            jwk.thumbprint(),
            crate::crypto::sha256_base64url(
                br#"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#
            )
        );
    }

    #[test]
    fn public_half_drops_d_and_debug_redacts_it() {
        let mut jwk = Jwk::public_p256("x".into(), "y".into());
        jwk.set_private_scalar("c2VjcmV0".into());
        assert!(format!("{jwk:?}").contains("[redacted]"));
        assert!(!format!("{jwk:?}").contains("c2VjcmV0"));
        let public = jwk.to_public();
        assert!(!public.is_private());
        assert!(!serde_json::to_string(&public).unwrap().contains("\"d\""));
    }
}
