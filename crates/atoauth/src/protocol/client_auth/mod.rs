//! Client authentication at the authorization server (section J): `none` for public clients,
//! `private_key_jwt` (RFC 7523) for confidential ones, signed here with a keyset of ES256 keys
//! or fetched from a backend that holds them ([`remote`], a client-assertion backend).

pub mod remote;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::crypto::{
    Clock, Es256Key, Jwk, JwkSet, JwsHeaderPrefix, KeyError, Randomness, SignerBackend,
    random_token,
};

/// The assertion type sent with `client_assertion` (J2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid (J4: short, e.g. 60 s).
const ASSERTION_LIFETIME_SECS: i64 = 60;

/// A confidential client's signing keys, each with a unique `kid` (J1). The first key signs new
/// sessions; the others keep the sessions bound to them alive until removed (J6, J7).
#[derive(Debug, Clone)]
pub struct Keyset {
    keys: Vec<Arc<SigningEntry>>,
}

#[derive(Debug)]
struct SigningEntry {
    key: Es256Key,
    header: JwsHeaderPrefix,
}

/// Why a keyset cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysetError {
    /// No key at all.
    #[error("[J1] the keyset is empty")]
    Empty,
    /// A key without `kid`, or a `kid` used twice.
    #[error("[J1] {0}")]
    Kid(String),
    /// A key that is not an ES256 private key.
    #[error("key {kid:?}: {source}")]
    Key {
        /// The key's id.
        kid: Option<String>,
        /// Why it was refused.
        #[source]
        source: KeyError,
    },
    /// The JWKS file is not JSON of the documented shape.
    #[error("not a JWKS ({{\"keys\": [private JWK, …]}}): {0}")]
    Format(String),
}

#[derive(Serialize)]
struct AssertionHeader<'a> {
    alg: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation<'a>>,
}

/// RFC 7800 confirmation: the DPoP key (by RFC 7638 thumbprint) the assertion is for (U5).
#[derive(Serialize)]
struct Confirmation<'a> {
    jkt: &'a str,
}

impl Keyset {
    /// A keyset from keys that all have distinct `kid`s.
    ///
    /// # Errors
    /// [`KeysetError`] when empty or a `kid` is missing or repeated.
    pub fn new(keys: impl IntoIterator<Item = Es256Key>) -> Result<Self, KeysetError> {
        let mut seen = BTreeMap::new();
        let mut entries = Vec::new();
        for key in keys {
            let kid = key
                .kid()
                .ok_or_else(|| KeysetError::Kid("every key needs a \"kid\"".to_owned()))?
                .to_owned();
            if seen.insert(kid.clone(), ()).is_some() {
                return Err(KeysetError::Kid(format!("\"kid\" {kid:?} is used twice")));
            }
            let header = JwsHeaderPrefix::new(&AssertionHeader {
                alg: "ES256",
                kid: &kid,
            })
            .map_err(|e| KeysetError::Format(e.to_string()))?;
            entries.push(Arc::new(SigningEntry { key, header }));
        }
        if entries.is_empty() {
            return Err(KeysetError::Empty);
        }
        Ok(Self { keys: entries })
    }

    /// A keyset from a private JWKS (`{"keys":[{private JWK with "kid"}]}`, the format written by
    /// `atoauth keygen`).
    ///
    /// # Errors
    /// When the JSON or a key is invalid.
    pub fn from_jwks_json(json: &str) -> Result<Self, KeysetError> {
        let set: JwkSet =
            serde_json::from_str(json).map_err(|e| KeysetError::Format(e.to_string()))?;
        let keys = set
            .keys
            .iter()
            .map(|jwk| {
                Es256Key::from_private_jwk(jwk, SignerBackend::default()).map_err(|source| {
                    KeysetError::Key {
                        kid: jwk.kid.clone(),
                        source,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// The private JWKS, for writing a key file.
    #[must_use]
    pub fn to_private_jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .keys
                .iter()
                .map(|entry| entry.key.to_private_jwk().for_signing())
                .collect(),
        }
    }

    /// The public JWKS to publish (in metadata `jwks` or at `jwks_uri`).
    #[must_use]
    pub fn public_jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .keys
                .iter()
                .map(|entry| entry.key.public_jwk().clone().for_signing())
                .collect(),
        }
    }

    /// The `kid` new sessions are bound to.
    #[must_use]
    pub fn current_kid(&self) -> &str {
        self.keys
            .first()
            .and_then(|entry| entry.key.kid())
            .unwrap_or_default()
    }

    /// Whether the keyset still holds `kid` (J6: a session bound to a removed key is dead).
    #[must_use]
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.iter().any(|entry| entry.key.kid() == Some(kid))
    }

    /// The public JWK of `kid`.
    #[must_use]
    pub fn public_jwk(&self, kid: &str) -> Option<&Jwk> {
        self.keys
            .iter()
            .find(|entry| entry.key.kid() == Some(kid))
            .map(|entry| entry.key.public_jwk())
    }

    /// A fresh assertion (J3–J5) signed by `kid`: `iss` = `sub` = `client_id`, `aud` = the
    /// issuer, random `jti`, `iat` now, `exp` 60 s later. `None` when `kid` is not in the set.
    ///
    /// # Errors
    /// When randomness or signing fails.
    pub fn assertion(
        &self,
        kid: &str,
        client_id: &str,
        issuer: &str,
        clock: &dyn Clock,
        random: &dyn Randomness,
    ) -> Result<Option<String>, KeyError> {
        self.sign_assertion(kid, client_id, issuer, None, clock, random)
    }

    /// A fresh assertion as [`assertion`](Self::assertion), bound to one DPoP key: `cnf.jkt` is
    /// that key's thumbprint (U5). A client-assertion backend mints these for a browser, so an
    /// assertion taken from one device is worth nothing with another device's key.
    ///
    /// # Errors
    /// When randomness or signing fails.
    pub fn assertion_for_dpop_key(
        &self,
        kid: &str,
        client_id: &str,
        issuer: &str,
        dpop_jkt: &str,
        clock: &dyn Clock,
        random: &dyn Randomness,
    ) -> Result<Option<String>, KeyError> {
        self.sign_assertion(kid, client_id, issuer, Some(dpop_jkt), clock, random)
    }

    fn sign_assertion(
        &self,
        kid: &str,
        client_id: &str,
        issuer: &str,
        dpop_jkt: Option<&str>,
        clock: &dyn Clock,
        random: &dyn Randomness,
    ) -> Result<Option<String>, KeyError> {
        let Some(entry) = self.keys.iter().find(|entry| entry.key.kid() == Some(kid)) else {
            return Ok(None);
        };
        let jti = random_token(random, 16)?;
        let iat = clock.unix_time();
        let claims = AssertionClaims {
            iss: client_id,
            sub: client_id,
            aud: issuer,
            jti: &jti,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
            cnf: dpop_jkt.map(|jkt| Confirmation { jkt }),
        };
        entry.header.sign(&entry.key, &claims).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use base64ct::{Base64UrlUnpadded, Encoding};

    use super::*;
    use crate::testing::{FixedClock, SeededRandomness};

    fn keyset() -> Keyset {
        let random = SeededRandomness::new(5);
        Keyset::new([
            Es256Key::generate(&random).unwrap().with_kid("new"),
            Es256Key::generate(&random).unwrap().with_kid("old"),
        ])
        .unwrap()
    }

    fn part(token: &str, index: usize) -> serde_json::Value {
        let bytes = Base64UrlUnpadded::decode_vec(token.split('.').nth(index).unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn j3_j4_assertion_header_and_claims() {
        let keys = keyset();
        let random = SeededRandomness::new(9);
        let token = keys
            .assertion(
                "old",
                "https://app.example/c.json",
                "https://as.example",
                &FixedClock(100),
                &random,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            part(&token, 0),
            serde_json::json!({"alg": "ES256", "kid": "old"})
        );
        let claims = part(&token, 1);
        assert_eq!(claims["iss"], "https://app.example/c.json");
        assert_eq!(claims["sub"], "https://app.example/c.json");
        assert_eq!(claims["aud"], "https://as.example");
        assert_eq!(claims["iat"], 100);
        assert_eq!(claims["exp"], 160);
        let again = keys
            .assertion(
                "old",
                "https://app.example/c.json",
                "https://as.example",
                &FixedClock(100),
                &random,
            )
            .unwrap()
            .unwrap();
        assert_ne!(
            part(&again, 1)["jti"],
            claims["jti"],
            "J5: a fresh jti every time"
        );
        assert!(claims.get("cnf").is_none());
    }

    #[test]
    fn u5_an_assertion_for_a_dpop_key_names_its_thumbprint() {
        let token = keyset()
            .assertion_for_dpop_key(
                "new",
                "https://app.example/c.json",
                "https://as.example",
                "jkt-of-the-browser-key",
                &FixedClock(100),
                &SeededRandomness::new(3),
            )
            .unwrap()
            .unwrap();
        let claims = part(&token, 1);
        assert_eq!(
            claims["cnf"],
            serde_json::json!({"jkt": "jkt-of-the-browser-key"})
        );
        assert_eq!(claims["exp"], 160, "U5: at most 60 s");
    }

    #[test]
    fn j6_unknown_kid_gives_no_assertion() {
        let keys = keyset();
        assert_eq!(keys.current_kid(), "new");
        assert!(keys.contains("old"));
        assert!(
            keys.assertion("gone", "c", "i", &FixedClock(0), &SeededRandomness::new(1))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn j1_kids_are_required_and_unique_and_the_jwks_round_trips() {
        let random = SeededRandomness::new(6);
        assert!(matches!(
            Keyset::new([Es256Key::generate(&random).unwrap()]),
            Err(KeysetError::Kid(_))
        ));
        assert!(matches!(
            Keyset::new([
                Es256Key::generate(&random).unwrap().with_kid("a"),
                Es256Key::generate(&random).unwrap().with_kid("a"),
            ]),
            Err(KeysetError::Kid(_))
        ));
        assert!(matches!(Keyset::new([]), Err(KeysetError::Empty)));
        let keys = keyset();
        let json = serde_json::to_string(&keys.to_private_jwks()).unwrap();
        let again = Keyset::from_jwks_json(&json).unwrap();
        assert_eq!(again.public_jwks(), keys.public_jwks());
        assert!(keys.public_jwks().keys.iter().all(|k| !k.is_private()));
        assert!(Keyset::from_jwks_json("{\"keys\": 1}").is_err());
    }
}
