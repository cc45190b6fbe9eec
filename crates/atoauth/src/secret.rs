//! Newtypes for secrets: their `Debug` prints `Name([redacted])`, the value comes out only
//! through `secret()` (STYLE §4), and it is overwritten with zeros when dropped.

macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            #[must_use]
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value.
            ///
            /// # Security Warning
            /// Never log it or put it in an error message.
            #[must_use]
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Compares with `other` in constant time (for values an attacker may guess).
            #[must_use]
            pub fn ct_eq(&self, other: &str) -> bool {
                subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), other.as_bytes()).into()
            }
        }

        // The value is wiped from memory when the last copy goes.
        impl Drop for $name {
            fn drop(&mut self) {
                zeroize::Zeroize::zeroize(&mut self.0);
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// An OAuth access token (opaque to the client, M1).
    AccessToken
);
secret_string!(
    /// An OAuth refresh token (single use, N3).
    RefreshToken
);
secret_string!(
    /// An authorization code from the callback.
    AuthorizationCode
);
secret_string!(
    /// A PKCE code verifier (H1).
    CodeVerifier
);
secret_string!(
    /// The OAuth `state` parameter: the lookup key of a pending authorization (G6).
    State
);
secret_string!(
    /// The random id that tells apart several sessions of one DID.
    SessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_every_secret_type() {
        assert_eq!(
            format!("{:?}", AccessToken::new("at-1")),
            "AccessToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", RefreshToken::new("rt-1")),
            "RefreshToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", AuthorizationCode::new("cod-1")),
            "AuthorizationCode([redacted])"
        );
        assert_eq!(
            format!("{:?}", CodeVerifier::new("v")),
            "CodeVerifier([redacted])"
        );
        assert_eq!(format!("{:?}", State::new("s")), "State([redacted])");
        assert_eq!(
            format!("{:?}", SessionId::new("id")),
            "SessionId([redacted])"
        );
    }

    #[test]
    fn constant_time_comparison_matches_equality() {
        let state = State::new("abc");
        assert!(state.ct_eq("abc"));
        assert!(!state.ct_eq("abd"));
        assert!(!state.ct_eq("ab"));
    }
}
