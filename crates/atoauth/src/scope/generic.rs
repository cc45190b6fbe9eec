//! The generic token grammar shared by every resource (permission spec §2):
//! `resource[:positional][?query]`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::ScopeError;

/// A token split into its parts, before any resource-specific rule applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericToken {
    /// Everything before the first `:` or `?`.
    pub resource: String,
    /// The percent-decoded part between the first `:` and the first `?`; `None` when there is no
    /// `:`. `Some("")` for `repo:?…`: the official PDS drops such tokens (§9.46), so the resource
    /// rules refuse an empty positional value.
    pub positional: Option<String>,
    /// Decoded query parameters in order; a repeated name appears several times.
    pub params: Vec<(String, String)>,
}

impl GenericToken {
    /// Splits a token (§2) for a request: only what the official PDS keeps with one meaning.
    ///
    /// # Errors
    /// When it is empty, has characters outside the OAuth scope grammar (printable ASCII without
    /// `"` and `\`: RFC 6749 NQCHAR, §1.1, §2.8), has a malformed percent-escape (§9.47), or
    /// decodes to anything but ASCII (§2.8).
    pub fn parse(token: &str) -> Result<Self, ScopeError> {
        if token.is_empty() {
            return Err(ScopeError::syntax(token, "empty"));
        }
        if !token.bytes().all(is_nqchar) {
            return Err(ScopeError::syntax(
                token,
                "only printable ASCII without spaces, '\"' and '\\\\' is allowed (RFC 6749 scope grammar)",
            ));
        }
        // §9.47: the official PDS answers a whole PAR with HTTP 500 when a positional part has a
        // malformed escape, and keeps a malformed escape in a query literally; refuse both.
        if let Some(at) = malformed_escape(token) {
            return Err(ScopeError::invalid_owned(
                token,
                format!(
                    "malformed percent-encoding at byte {at} ('%' must start a two-digit hex escape)"
                ),
            ));
        }
        // §2.6: only the first '?' is a delimiter, so `repo??collection=*` names a parameter
        // "?collection"; the PDS's form parser strips the second '?' and reads "collection".
        if token.contains("??") && token.find('?') == token.find("??") {
            return Err(ScopeError::syntax(
                token,
                "a '?' right after the query's '?' (parsers disagree on what it means)",
            ));
        }
        let split = Self::split_as_the_pds_does(token)?;
        let decoded_ascii = split.positional.as_deref().is_none_or(str::is_ascii)
            && split
                .params
                .iter()
                .all(|(name, value)| name.is_ascii() && value.is_ascii());
        if !decoded_ascii {
            return Err(ScopeError::syntax(
                token,
                "a percent-escape decodes to a non-ASCII character",
            ));
        }
        Ok(split)
    }

    /// Splits a token exactly as the official PDS's scope library does, for reading what a
    /// server granted (§9.45): the positional part percent-decoded as UTF-8 (a malformed escape
    /// there is an error: the PDS fails on it), the query decoded as a form, where a malformed
    /// escape stays literal, `+` is a space and invalid UTF-8 becomes U+FFFD. Non-ASCII values
    /// and characters outside the OAuth grammar are kept.
    ///
    /// # Errors
    /// When the positional part does not decode.
    pub fn split_as_the_pds_does(token: &str) -> Result<Self, ScopeError> {
        if token.is_empty() {
            return Err(ScopeError::syntax(token, "empty"));
        }
        let resource_end = token.find([':', '?']).unwrap_or(token.len());
        let resource = &token[..resource_end];
        let rest = &token[resource_end..];
        // Only the first '?' separates the query (§2.6); '#' is literal everywhere (§2.7).
        let (positional, query) = match rest.strip_prefix(':') {
            Some(after) => match after.split_once('?') {
                Some((positional, query)) => (Some(positional), Some(query)),
                None => (Some(after), None),
            },
            None => (None, rest.strip_prefix('?')),
        };
        let positional = match positional {
            None => None,
            Some(part) => {
                if malformed_escape(part).is_some() {
                    return Err(ScopeError::syntax(
                        token,
                        "malformed percent-encoding in the positional part",
                    ));
                }
                let decoded = percent_decode_str(part).decode_utf8().map_err(|_| {
                    ScopeError::syntax(token, "the positional part is not valid UTF-8")
                })?;
                Some(decoded.into_owned())
            }
        };
        // A form parser (URLSearchParams) drops one leading '?' of what it is given.
        let query = query.map(|q| q.strip_prefix('?').unwrap_or(q));
        let params: Vec<(String, String)> = query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            resource: resource.to_owned(),
            positional,
            params,
        })
    }
}

/// RFC 6749 NQCHAR, the official PDS's `scope` grammar at PAR: `%x21 / %x23-5B / %x5D-7E`.
fn is_nqchar(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b'\\'
}

/// The offset of the first `%` not followed by two hex digits.
pub(crate) fn malformed_escape(value: &str) -> Option<usize> {
    let bytes = value.as_bytes();
    bytes.iter().enumerate().find_map(|(i, b)| {
        let escaped = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        (*b == b'%' && !escaped).then_some(i)
    })
}

/// What a canonical positional value leaves literal: what `encodeURIComponent` leaves
/// (`-_.!~*'()`) plus `:` `/` `+` `,` `@`, as the reference normal form does (§6.38). A
/// positional part is decoded without form rules, so a literal `+` stays a plus.
const POSITIONAL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b':')
    .remove(b'/')
    .remove(b'+')
    .remove(b',')
    .remove(b'@');

/// What a canonical query value leaves literal: what form encoding leaves (`*-._`) plus `:` `/`
/// `,` `@` (§6.38). `+` stays `%2B`, since form decoding would read it as a space (§2.12), and
/// `%` stays `%25`: putting it back changes the value (§6.38, the reference's bug).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b':')
    .remove(b'/')
    .remove(b',')
    .remove(b'@');

/// A positional value in canonical form.
pub(crate) fn encode_positional(value: &str) -> String {
    utf8_percent_encode(value, POSITIONAL).to_string()
}

/// A query value in canonical form.
pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Case {
        scope: String,
        generic: Expected,
    }

    #[derive(serde::Deserialize)]
    struct Expected {
        resource: String,
        positional: String,
        params: std::collections::BTreeMap<String, Vec<String>>,
    }

    fn testdata(file: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/testdata/scopes/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn generic_vectors_split_exactly_as_listed() {
        let cases: Vec<Case> =
            serde_json::from_str(&testdata("generic_scopes_valid.json")).unwrap();
        assert!(cases.len() >= 18);
        for case in cases {
            let token = GenericToken::parse(&case.scope).unwrap();
            assert_eq!(token.resource, case.generic.resource, "{}", case.scope);
            assert_eq!(
                token.positional.unwrap_or_default(),
                case.generic.positional,
                "{}",
                case.scope
            );
            let mut params = std::collections::BTreeMap::<String, Vec<String>>::new();
            for (name, value) in token.params {
                params.entry(name).or_default().push(value);
            }
            assert_eq!(params, case.generic.params, "{}", case.scope);
        }
    }

    #[test]
    fn generic_invalid_vectors_are_refused() {
        for line in testdata("generic_scopes_invalid.txt").split('\n') {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            assert!(GenericToken::parse(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn encoding_keeps_readable_characters_and_escapes_the_rest() {
        assert_eq!(
            encode("did:web:api.bsky.app#bsky_appview"),
            "did:web:api.bsky.app%23bsky_appview"
        );
        assert_eq!(encode("a+b c"), "a%2Bb%20c");
        assert_eq!(encode("image/*"), "image/*");
        assert_eq!(encode("did:web:h%3A8443#s"), "did:web:h%253A8443%23s");
        assert_eq!(
            encode_positional("application/vnd.api+json"),
            "application/vnd.api+json"
        );
    }

    #[test]
    fn malformed_escapes_and_the_oauth_grammar_are_refused() {
        // §9.47: these make the official PDS fail a whole PAR with HTTP 500.
        for token in [
            "repo:%",
            "repo:a.b.c%E0%A4%A",
            "blob?accept=image/p%zz",
            "rpc:%G1",
        ] {
            let error = GenericToken::parse(token).unwrap_err();
            assert!(
                error.reason.contains("malformed percent-encoding"),
                "{token}: {error}"
            );
        }
        // RFC 6749 NQCHAR: the PDS refuses the whole request.
        assert!(GenericToken::parse("blob:image/x\"y").is_err());
        assert!(GenericToken::parse("blob:image/x\\y").is_err());
        // §2.8 also after decoding.
        assert!(GenericToken::parse("blob:image/%C3%A9").is_err());
        // An empty positional part is kept as empty, so the resource rules can refuse it (§9.46).
        assert_eq!(
            GenericToken::parse("repo:?collection=*")
                .unwrap()
                .positional
                .as_deref(),
            Some("")
        );
        assert_eq!(
            GenericToken::parse("repo?collection=*").unwrap().positional,
            None
        );
    }
}
