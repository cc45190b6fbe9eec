//! ES256 (ECDSA on P-256 with SHA-256, RFC 7518 §3.4) keys: generation, import, export as a JWK,
//! and fixed-size `r || s` signatures.
//!
//! The parsed signing key and its public JWK are computed once per key, so a signature is the
//! only per-proof cost (issue #5 item 4). Two backends sign: RustCrypto's `p256` (always present)
//! and, with the `ring` feature, ring, which is about four times faster.

use std::fmt;

use base64ct::Encoding as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

use super::{Jwk, Randomness, base64url, random::RandomError};

/// Why a key could not be created, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The JWK is not a P-256 key with valid coordinates and private scalar.
    #[error("not a valid ES256 private key: {0}")]
    Invalid(String),
    /// The random number generator failed while creating a key.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The signer refused to sign (ring's internal failure; never seen with valid keys).
    #[error("signing failed")]
    Sign,
    /// A key kept outside atoauth (a [`crate::dpop::DpopSigner`]: WebCrypto, a hardware
    /// token) failed, or its store did.
    #[error("the DPoP key store failed: {0}")]
    External(String),
}

/// Which implementation signs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignerBackend {
    /// RustCrypto `p256` (pure Rust).
    P256,
    /// ring (assembly-optimised); the default when the `ring` feature is on.
    #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
    #[default]
    Ring,
    #[cfg(any(not(feature = "ring"), target_arch = "wasm32"))]
    #[default]
    #[doc(hidden)]
    DefaultP256,
}

enum Signer {
    P256(SigningKey),
    #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
    Ring(ring::signature::EcdsaKeyPair, ring::rand::SystemRandom),
}

/// An ES256 private key with its public JWK precomputed.
///
/// `Debug` never prints the private scalar. The private key leaves only through
/// [`Es256Key::to_private_jwk`], for stores.
pub struct Es256Key {
    secret: SigningKey,
    signer: Signer,
    public: Jwk,
}

impl fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Es256Key")
            .field("kid", &self.public.kid)
            .field("x", &self.public.x)
            .field("private", &"[redacted]")
            .finish()
    }
}

impl Es256Key {
    /// A new random key from `random`, signing with the default backend.
    ///
    /// # Errors
    /// When the randomness source fails.
    pub fn generate(random: &dyn Randomness) -> Result<Self, KeyError> {
        // A uniformly random 32-byte string is a valid scalar except with probability ~2^-32;
        // try a few times rather than bias the distribution.
        for _ in 0..8 {
            let mut bytes = [0u8; 32];
            random.fill(&mut bytes)?;
            if let Ok(key) = Self::from_secret_bytes(&bytes, SignerBackend::default()) {
                return Ok(key);
            }
        }
        Err(KeyError::Invalid(
            "the random source keeps producing invalid scalars".to_owned(),
        ))
    }

    /// A key from its 32-byte private scalar.
    ///
    /// # Errors
    /// When the bytes are not a valid P-256 scalar.
    pub fn from_secret_bytes(bytes: &[u8], backend: SignerBackend) -> Result<Self, KeyError> {
        let secret = SigningKey::from_slice(bytes).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let point = secret.verifying_key().to_sec1_bytes();
        // Uncompressed SEC1: 0x04 || x (32) || y (32).
        let (x, y) = match point.as_ref() {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => {
                return Err(KeyError::Invalid(
                    "unexpected public key encoding".to_owned(),
                ));
            }
        };
        let public = Jwk::public_p256(base64url(x), base64url(y));
        let signer = match backend {
            #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
            SignerBackend::Ring => {
                let random = ring::rand::SystemRandom::new();
                let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    bytes,
                    &point,
                    &random,
                )
                .map_err(|e| KeyError::Invalid(e.to_string()))?;
                Signer::Ring(pair, random)
            }
            _ => Signer::P256(secret.clone()),
        };
        Ok(Self {
            secret,
            signer,
            public,
        })
    }

    /// A key from a private JWK (`kty` EC, `crv` P-256, `d`); its `kid` is kept.
    ///
    /// # Errors
    /// When the JWK is not an ES256 private key, or `x`/`y` do not match `d`.
    pub fn from_private_jwk(jwk: &Jwk, backend: SignerBackend) -> Result<Self, KeyError> {
        if jwk.kty != "EC" || jwk.crv != "P-256" {
            return Err(KeyError::Invalid("kty must be EC and crv P-256".to_owned()));
        }
        if jwk.alg.as_deref().is_some_and(|alg| alg != "ES256") {
            return Err(KeyError::Invalid("alg must be ES256".to_owned()));
        }
        let d = jwk
            .private_scalar()
            .ok_or_else(|| KeyError::Invalid("no private scalar \"d\"".to_owned()))?;
        let bytes = base64ct::Base64UrlUnpadded::decode_vec(d)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| KeyError::Invalid("\"d\" is not base64url".to_owned()))?;
        let mut key = Self::from_secret_bytes(&bytes, backend)?;
        if key.public.x != jwk.x || key.public.y != jwk.y {
            return Err(KeyError::Invalid(
                "\"x\"/\"y\" do not belong to \"d\"".to_owned(),
            ));
        }
        key.public.kid.clone_from(&jwk.kid);
        Ok(key)
    }

    /// The same key with a `kid` (confidential client keys, J1/J3).
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.public.kid = Some(kid.into());
        self
    }

    /// The key's `kid`, if it has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.public.kid.as_deref()
    }

    /// The public JWK (no `d`), as sent in DPoP headers and published in a JWKS.
    #[must_use]
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// The private JWK, for stores and key files.
    ///
    /// # Security Warning
    /// This is the private key: persist it only where the session's tokens are persisted.
    #[must_use]
    pub fn to_private_jwk(&self) -> Jwk {
        let mut jwk = self.public.clone();
        let scalar = zeroize::Zeroizing::new(self.secret.to_bytes());
        jwk.set_private_scalar(base64url(&scalar));
        jwk
    }

    /// The RFC 7638 thumbprint of the public key.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint()
    }

    /// Signs `message` (ES256, SHA-256 inside), returning the 64-byte `r || s` JWS signature.
    ///
    /// # Errors
    /// Only if the ring backend reports an internal failure.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::P256(key) => {
                let signature: Signature = key.sign(message);
                Ok(signature.to_bytes().to_vec())
            }
            #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
            Signer::Ring(pair, random) => pair
                .sign(random, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
        }
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::{Signature, VerifyingKey};

    use super::*;

    const SCALAR: [u8; 32] = [7; 32];

    fn verify(key: &Es256Key, message: &[u8], signature: &[u8]) -> bool {
        let point = key.secret.verifying_key().to_sec1_bytes();
        let verifying = VerifyingKey::from_sec1_bytes(&point).unwrap();
        let signature = Signature::from_slice(signature).unwrap();
        verifying.verify(message, &signature).is_ok()
    }

    #[test]
    fn every_backend_signs_verifiable_es256() {
        let mut backends = vec![SignerBackend::P256];
        #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
        backends.push(SignerBackend::Ring);
        for backend in backends {
            let key = Es256Key::from_secret_bytes(&SCALAR, backend).unwrap();
            let signature = key.sign(b"header.claims").unwrap();
            assert_eq!(signature.len(), 64, "{backend:?}");
            assert!(verify(&key, b"header.claims", &signature), "{backend:?}");
            assert!(!verify(&key, b"header.claimz", &signature), "{backend:?}");
        }
    }

    #[test]
    fn private_jwk_round_trips_and_keeps_kid() {
        let key = Es256Key::from_secret_bytes(&SCALAR, SignerBackend::P256)
            .unwrap()
            .with_kid("k1");
        let jwk = key.to_private_jwk();
        let again = Es256Key::from_private_jwk(&jwk, SignerBackend::default()).unwrap();
        assert_eq!(again.public_jwk(), key.public_jwk());
        assert_eq!(again.kid(), Some("k1"));
    }

    #[test]
    fn mismatched_public_coordinates_are_refused() {
        let mut jwk = Es256Key::from_secret_bytes(&SCALAR, SignerBackend::P256)
            .unwrap()
            .to_private_jwk();
        jwk.x = Es256Key::from_secret_bytes(&[9; 32], SignerBackend::P256)
            .unwrap()
            .public_jwk()
            .x
            .clone();
        assert!(matches!(
            Es256Key::from_private_jwk(&jwk, SignerBackend::P256),
            Err(KeyError::Invalid(_))
        ));
    }

    #[test]
    fn debug_redacts_the_private_scalar() {
        let key = Es256Key::from_secret_bytes(&SCALAR, SignerBackend::P256).unwrap();
        let d = key.to_private_jwk().private_scalar().unwrap().to_owned();
        let debug = format!("{key:?}");
        assert!(debug.contains("[redacted]"));
        assert!(!debug.contains(&d));
    }

    #[test]
    fn zero_scalar_is_invalid() {
        assert!(Es256Key::from_secret_bytes(&[0; 32], SignerBackend::P256).is_err());
    }
}
