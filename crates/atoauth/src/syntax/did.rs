use super::{SyntaxError, string_identifier};

/// A decentralized identifier (identity spec B.9–B.10): `did:<method>:<identifier>`.
///
/// Any method with valid generic syntax is accepted; only `did:plc` and `did:web` can be resolved
/// ([`Did::method`] tells them apart). DIDs are case-sensitive and never normalised.
///
/// ```
/// use atoauth::syntax::{Did, DidMethod};
/// let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse()?;
/// assert_eq!(did.method(), DidMethod::Plc);
/// assert!("DID:plc:x".parse::<Did>().is_err());
/// # Ok::<(), atoauth::syntax::SyntaxError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

/// The DID methods atproto distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DidMethod {
    /// `did:plc`, resolved through a PLC directory.
    Plc,
    /// `did:web`, resolved through `https://<host>/.well-known/did.json`.
    Web,
    /// Any other method: valid syntax, but not supported by atproto.
    Other,
}

const MAX_LENGTH: usize = 2048;

impl Did {
    /// Parses a DID.
    ///
    /// # Errors
    /// When `s` is not a syntactically valid DID.
    pub fn new(s: &str) -> Result<Self, SyntaxError> {
        let fail = |reason| Err(SyntaxError::new("DID", s, reason));
        if s.len() > MAX_LENGTH {
            return fail("longer than 2048 characters");
        }
        let Some(rest) = s.strip_prefix("did:") else {
            return fail("must start with \"did:\"");
        };
        let Some((method, identifier)) = rest.split_once(':') else {
            return fail("missing the method-specific identifier");
        };
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
            return fail("the method must be lowercase letters");
        }
        if identifier.is_empty() {
            return fail("empty method-specific identifier");
        }
        if !identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:%-".contains(&b))
        {
            return fail("only letters, digits and ._:%- are allowed");
        }
        if identifier.ends_with(':') || identifier.ends_with('%') {
            return fail("must not end with ':' or '%'");
        }
        let bytes = identifier.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'%'
                && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return fail("'%' must start a two-digit hex escape");
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// The method: `plc`, `web`, or another.
    #[must_use]
    pub fn method(&self) -> DidMethod {
        match self.method_name() {
            "plc" => DidMethod::Plc,
            "web" => DidMethod::Web,
            _ => DidMethod::Other,
        }
    }

    /// The method name as written, e.g. `plc`.
    #[must_use]
    pub fn method_name(&self) -> &str {
        self.0[4..].split(':').next().unwrap_or_default()
    }

    /// The method-specific identifier, e.g. `ewvi7nxzyoun6zhxrhs64oiz`.
    #[must_use]
    pub fn identifier(&self) -> &str {
        let method = self.method_name();
        &self.0[4 + method.len() + 1..]
    }
}

string_identifier!(Did);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_vectors() {
        crate::syntax::vectors::check("did", |s| Did::new(s).is_ok());
    }

    #[test]
    fn parts_and_methods() {
        let did = Did::new("did:web:localhost%3A1234").unwrap();
        assert_eq!(did.method(), DidMethod::Web);
        assert_eq!(did.identifier(), "localhost%3A1234");
        assert_eq!(
            Did::new("did:key:zQ3sh").unwrap().method(),
            DidMethod::Other
        );
        assert_eq!(Did::new("did:onion:abc").unwrap().method_name(), "onion");
        assert!(Did::new("did:web:x%zz").is_err());
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let did: Did = serde_json::from_str("\"did:plc:abc\"").unwrap();
        assert_eq!(serde_json::to_string(&did).unwrap(), "\"did:plc:abc\"");
        assert!(serde_json::from_str::<Did>("\"did:PLC:abc\"").is_err());
    }
}
