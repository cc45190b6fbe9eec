//! Self-validating atproto identifiers: [`Did`], [`Handle`], [`Nsid`], [`AtIdentifier`].
//!
//! Each type checks its syntax when constructed (parse, don't validate), so a value of the type is
//! always well-formed. Syntax is all they check: `did:key:…` is a valid [`Did`] whose method
//! identity resolution does not support, and `laptop.local` is a valid [`Handle`] that must never
//! resolve.

mod at_identifier;
mod did;
mod handle;
mod language;
mod nsid;

pub use at_identifier::AtIdentifier;
pub use did::{Did, DidMethod};
pub use handle::Handle;
pub(crate) use language::is_language_tag;
pub use nsid::Nsid;

/// A string that is not a valid identifier of the expected kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct SyntaxError {
    /// What was expected: `DID`, `handle`, `NSID` or `at-identifier`.
    pub kind: &'static str,
    /// The rejected input, cut to 100 characters.
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl SyntaxError {
    pub(crate) fn new(kind: &'static str, value: &str, reason: &'static str) -> Self {
        Self {
            kind,
            value: value.chars().take(100).collect(),
            reason,
        }
    }
}

/// The string newtype plumbing shared by the identifier types: `Display`, `AsRef<str>`, `FromStr`,
/// and serde through the same parser.
macro_rules! string_identifier {
    ($name:ident) => {
        impl $name {
            /// The identifier as a string.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::syntax::SyntaxError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::syntax::SyntaxError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_identifier;

/// A DNS-style label: 1–63 of `[A-Za-z0-9-]`, not starting or ending with `-`.
pub(crate) fn is_domain_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
pub(crate) mod vectors {
    /// The non-comment, non-empty lines of a vector file, untrimmed.
    pub(crate) fn lines(file: &str) -> Vec<String> {
        let path = format!("{}/testdata/syntax/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path)
            .unwrap()
            .split('\n')
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    /// Every line of `<name>_syntax_valid.txt` is accepted and every line of
    /// `<name>_syntax_invalid.txt` refused by `accepts`.
    pub(crate) fn check(name: &str, accepts: impl Fn(&str) -> bool) {
        let valid = lines(&format!("{name}_syntax_valid.txt"));
        assert!(!valid.is_empty());
        for line in valid {
            assert!(accepts(&line), "valid {name}: {line:?}");
        }
        let invalid = lines(&format!("{name}_syntax_invalid.txt"));
        assert!(!invalid.is_empty());
        for line in invalid {
            assert!(!accepts(&line), "invalid {name}: {line:?}");
        }
    }
}
