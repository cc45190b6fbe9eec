use super::{SyntaxError, is_domain_label, string_identifier};

/// An atproto handle (identity spec A), normalised to lower case.
///
/// ```
/// use atoauth::syntax::Handle;
/// let handle: Handle = "Alice.Example.COM".parse()?;
/// assert_eq!(handle.as_str(), "alice.example.com");
/// assert!(!handle.is_reserved());
/// assert!("laptop.local".parse::<Handle>()?.is_reserved());
/// # Ok::<(), atoauth::syntax::SyntaxError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

/// TLDs that are valid syntax but must never resolve (identity spec A.8).
const RESERVED_TLDS: [&str; 8] = [
    "alt",
    "arpa",
    "example",
    "internal",
    "invalid",
    "local",
    "localhost",
    "onion",
];

impl Handle {
    /// The special value for "no valid handle"; never resolved or sent as a login identifier.
    pub const INVALID: &'static str = "handle.invalid";

    /// Parses a handle and lowercases it. A leading `@` is not accepted here: use
    /// [`AtIdentifier::from_login_input`](super::AtIdentifier::from_login_input) for user input.
    ///
    /// # Errors
    /// When `s` is not a syntactically valid handle.
    pub fn new(s: &str) -> Result<Self, SyntaxError> {
        let fail = |reason| Err(SyntaxError::new("handle", s, reason));
        if !s.is_ascii() {
            return fail("must be ASCII (use the punycode xn-- form)");
        }
        if s.len() > 253 {
            return fail("longer than 253 characters");
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return fail("needs at least two labels");
        }
        if !labels.iter().all(|label| is_domain_label(label)) {
            return fail(
                "each label is 1-63 letters, digits or '-', not starting or ending with '-'",
            );
        }
        if labels
            .last()
            .is_some_and(|tld| tld.starts_with(|c: char| c.is_ascii_digit()))
        {
            return fail("the last label must not start with a digit");
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// True for a TLD that must never resolve (`.local`, `.invalid`, …), including
    /// `handle.invalid`. `.test` is allowed: it is for development.
    #[must_use]
    pub fn is_reserved(&self) -> bool {
        self.0
            .rsplit('.')
            .next()
            .is_some_and(|tld| RESERVED_TLDS.contains(&tld))
    }
}

string_identifier!(Handle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_vectors() {
        crate::syntax::vectors::check("handle", |s| Handle::new(s).is_ok());
    }

    #[test]
    fn lowercased_and_reserved() {
        assert_eq!(
            Handle::new("JAY.Bsky.Social").unwrap().as_str(),
            "jay.bsky.social"
        );
        for reserved in [
            "laptop.local",
            "blah.arpa",
            "handle.invalid",
            "x.onion",
            "a.example",
        ] {
            assert!(Handle::new(reserved).unwrap().is_reserved(), "{reserved}");
        }
        for usable in ["alice.test", "8.cn", "xn--ls8h.test", "a.co"] {
            assert!(!Handle::new(usable).unwrap().is_reserved(), "{usable}");
        }
    }
}
