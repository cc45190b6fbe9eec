use super::{Did, Handle, SyntaxError};

/// A handle or a DID: what a user types to sign in.
///
/// ```
/// use atoauth::syntax::AtIdentifier;
/// let id = AtIdentifier::from_login_input("  @Alice.Bsky.Social ")?;
/// assert_eq!(id.to_string(), "alice.bsky.social");
/// assert!(matches!(AtIdentifier::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz")?, AtIdentifier::Did(_)));
/// # Ok::<(), atoauth::syntax::SyntaxError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AtIdentifier {
    /// A DID.
    Did(Did),
    /// A handle (lower case).
    Handle(Handle),
}

impl AtIdentifier {
    /// Parses strict at-identifier syntax: a string starting with `did:` must be a DID, anything
    /// else a handle.
    ///
    /// # Errors
    /// When `s` is neither.
    pub fn new(s: &str) -> Result<Self, SyntaxError> {
        if s.starts_with("did:") {
            Did::new(s).map(Self::Did)
        } else {
            Handle::new(s).map(Self::Handle).map_err(|e| SyntaxError {
                kind: "at-identifier",
                ..e
            })
        }
    }

    /// Parses what a user typed (identity spec C.15, A.7): surrounding white space is trimmed and a
    /// single leading `@` stripped from a handle.
    ///
    /// # Errors
    /// When what remains is neither a DID nor a handle.
    pub fn from_login_input(input: &str) -> Result<Self, SyntaxError> {
        let trimmed = input.trim();
        Self::new(trimmed.strip_prefix('@').unwrap_or(trimmed))
    }

    /// The DID, if this is one.
    #[must_use]
    pub fn as_did(&self) -> Option<&Did> {
        match self {
            Self::Did(did) => Some(did),
            Self::Handle(_) => None,
        }
    }

    /// The handle, if this is one.
    #[must_use]
    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            Self::Handle(handle) => Some(handle),
            Self::Did(_) => None,
        }
    }
}

impl std::fmt::Display for AtIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Did(did) => did.fmt(f),
            Self::Handle(handle) => handle.fmt(f),
        }
    }
}

impl std::str::FromStr for AtIdentifier {
    type Err = SyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_vectors() {
        crate::syntax::vectors::check("atidentifier", |s| AtIdentifier::new(s).is_ok());
    }

    #[test]
    fn login_input_strips_one_at_sign() {
        assert!(AtIdentifier::from_login_input("@alice.test").is_ok());
        assert!(AtIdentifier::from_login_input("@").is_err());
        assert!(AtIdentifier::from_login_input("@@alice.test").is_err());
        assert!(AtIdentifier::new("@alice.test").is_err());
        assert_eq!(
            AtIdentifier::from_login_input(" did:plc:abc ")
                .unwrap()
                .to_string(),
            "did:plc:abc"
        );
    }
}
