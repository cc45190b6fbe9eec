//! Server nonces for the client-assertion backend's DPoP proofs (RFC 9449 §8): a proof must
//! carry a nonce this server handed out within the last few minutes, so a proof made ahead of
//! time (by script on a compromised page, for later use elsewhere) expires quickly. Nonces are
//! derived, not stored: HMAC of the time window under a secret, so instances that share the
//! secret accept each other's.

use base64ct::Encoding;
use ring::hmac;

/// How long one nonce is handed out; the previous window's is still accepted.
const WINDOW_SECS: i64 = 180;

/// Makes and checks nonces.
pub(crate) struct Nonces {
    key: hmac::Key,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces")
    }
}

impl Nonces {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn for_window(&self, window: i64) -> String {
        let tag = hmac::sign(&self.key, &window.to_be_bytes());
        base64ct::Base64UrlUnpadded::encode_string(&tag.as_ref()[..18])
    }

    /// The nonce to hand out at `now`.
    pub(crate) fn current(&self, now: i64) -> String {
        self.for_window(now.div_euclid(WINDOW_SECS))
    }

    /// Whether `nonce` was handed out in this window or the previous one. Compared in constant
    /// time: a nonce is not secret, but nothing is learnt from timing either.
    pub(crate) fn accepts(&self, nonce: &str, now: i64) -> bool {
        let window = now.div_euclid(WINDOW_SECS);
        [window, window - 1].iter().fold(false, |found, w| {
            let expected = self.for_window(*w);
            found
                | bool::from(subtle::ConstantTimeEq::ct_eq(
                    expected.as_bytes(),
                    nonce.as_bytes(),
                ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u3_a_nonce_lives_for_one_to_two_windows() {
        let nonces = Nonces::new(b"secret");
        let handed = nonces.current(1000);
        assert!(nonces.accepts(&handed, 1000));
        assert!(nonces.accepts(&handed, 1000 + WINDOW_SECS));
        assert!(!nonces.accepts(&handed, 1000 + 2 * WINDOW_SECS));
        assert!(!Nonces::new(b"other").accepts(&handed, 1000));
        assert!(!nonces.accepts("made-up", 1000));
    }
}
