//! PKCE with S256 only (section H; RFC 7636).

use crate::crypto::{RandomError, Randomness, base64url, sha256_base64url};
use crate::secret::CodeVerifier;

/// A code verifier and its S256 challenge.
#[derive(Clone, Debug)]
pub struct Pkce {
    /// Sent in the code exchange only (H3).
    pub verifier: CodeVerifier,
    /// `base64url(SHA-256(verifier))`, sent in PAR with `code_challenge_method=S256` (H2).
    pub challenge: String,
}

impl Pkce {
    /// The challenge method; `plain` is never used (H2).
    pub const METHOD: &'static str = "S256";

    /// A new verifier from 32 random bytes: 43 base64url characters (H1).
    ///
    /// # Errors
    /// When the randomness source fails.
    pub fn generate(random: &dyn Randomness) -> Result<Self, RandomError> {
        let mut bytes = [0u8; 32];
        random.fill(&mut bytes)?;
        Ok(Self::from_verifier(CodeVerifier::new(base64url(&bytes))))
    }

    /// The challenge for a given verifier.
    #[must_use]
    pub fn from_verifier(verifier: CodeVerifier) -> Self {
        let challenge = sha256_base64url(verifier.secret().as_bytes());
        Self {
            verifier,
            challenge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h4_rfc7636_appendix_b_vector() {
        let pkce = Pkce::from_verifier(CodeVerifier::new(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn h1_generated_verifiers_are_43_chars_and_distinct() {
        let random = crate::crypto::OsRandomness;
        let a = Pkce::generate(&random).unwrap();
        let b = Pkce::generate(&random).unwrap();
        assert_eq!(a.verifier.secret().len(), 43);
        assert_ne!(a.verifier, b.verifier);
    }
}
