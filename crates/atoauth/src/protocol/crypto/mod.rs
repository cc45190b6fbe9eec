//! The small amount of JOSE atoauth needs: ES256 keys (P-256), their JWKs and RFC 7638
//! thumbprints, compact JWS signing, and injectable randomness and time.
//!
//! Everything here is built on maintained crates (p256/ecdsa, sha2, base64ct, getrandom and,
//! with the `ring` feature, ring); what is hand-written is the JSON shape, because p256 0.14 has
//! no JWK support.

mod es256;
mod jwk;
mod jwt;
mod random;

pub use es256::{Es256Key, KeyError, SignerBackend};
pub use jwk::{Jwk, JwkSet};
pub use jwt::JwsHeaderPrefix;
pub use random::{Clock, OsRandomness, RandomError, Randomness, SystemClock, random_token};

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

/// base64url without padding (RFC 7515 §2).
#[must_use]
pub fn base64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// base64url-no-pad(SHA-256(`input`)): the PKCE S256 challenge (H2) and the DPoP `ath` (I4).
#[must_use]
pub fn sha256_base64url(input: &[u8]) -> String {
    base64url(&Sha256::digest(input))
}
