//! The repository signing key of a DID document (`#atproto`, `publicKeyMultibase`), and ECDSA
//! verification of commit signatures with it: secp256k1 or NIST P-256, SHA-256, a 64-byte
//! `r‖s` signature in low-S form (atproto rejects the malleable high-S twin).

use crate::identity::VerificationMethod;

/// A repository signing key.
#[derive(Clone, Debug)]
pub(crate) enum SigningKey {
    K256(k256::ecdsa::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// The multicodec prefixes of compressed public keys (varint-encoded).
const SECP256K1_PUB: [u8; 2] = [0xe7, 0x01];
const P256_PUB: [u8; 2] = [0x80, 0x24];

impl SigningKey {
    /// Reads the key of a verification method: `Multikey` (multicodec-prefixed) or the legacy
    /// curve-named types (the bare SEC1 point).
    pub(crate) fn from_method(method: &VerificationMethod) -> Result<Self, String> {
        let encoded = method
            .public_key_multibase
            .as_deref()
            .ok_or("the signing key has no publicKeyMultibase")?;
        let base58 = encoded
            .strip_prefix('z')
            .ok_or("publicKeyMultibase is not base58btc ('z')")?;
        let bytes = bs58::decode(base58)
            .into_vec()
            .map_err(|e| format!("publicKeyMultibase is not base58: {e}"))?;
        let bad_point = |e: &dyn std::fmt::Display| format!("not a public key point: {e}");
        match method.kind.as_str() {
            "Multikey" => {
                if let Some(point) = bytes.strip_prefix(&SECP256K1_PUB) {
                    k256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map(Self::K256)
                        .map_err(|e| bad_point(&e))
                } else if let Some(point) = bytes.strip_prefix(&P256_PUB) {
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map(Self::P256)
                        .map_err(|e| bad_point(&e))
                } else {
                    Err("the Multikey is neither secp256k1 nor P-256".to_owned())
                }
            }
            "EcdsaSecp256k1VerificationKey2019" => {
                k256::ecdsa::VerifyingKey::from_sec1_bytes(&bytes)
                    .map(Self::K256)
                    .map_err(|e| bad_point(&e))
            }
            "EcdsaSecp256r1VerificationKey2019" => {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&bytes)
                    .map(Self::P256)
                    .map_err(|e| bad_point(&e))
            }
            other => Err(format!("unsupported verification method type {other}")),
        }
    }

    /// Whether `signature` (64 bytes, low-S) signs `message` (hashed with SHA-256).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::K256(key) => {
                use k256::ecdsa::signature::Verifier;
                k256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| sig.normalize_s() == sig && key.verify(message, &sig).is_ok())
            }
            Self::P256(key) => {
                use p256::ecdsa::signature::Verifier;
                p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| sig.normalize_s() == sig && key.verify(message, &sig).is_ok())
            }
        }
    }
}
