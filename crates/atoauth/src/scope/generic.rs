//! The generic token grammar shared by every resource (permission spec §2):
//! `resource[:positional][?query]`.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::ScopeError;

/// A token split into its parts, before any resource-specific rule applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericToken {
    /// Everything before the first `:` or `?`.
    pub resource: String,
    /// The percent-decoded part between the first `:` and the first `?`; `None` when absent or
    /// empty (§2.9).
    pub positional: Option<String>,
    /// Decoded query parameters in order; a repeated name appears several times.
    pub params: Vec<(String, String)>,
}

impl GenericToken {
    /// Splits a token (§2).
    ///
    /// # Errors
    /// When it is empty or has characters outside printable ASCII (§1.1, §2.8).
    pub fn parse(token: &str) -> Result<Self, ScopeError> {
        if token.is_empty() {
            return Err(ScopeError::syntax(token, "empty"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ScopeError::syntax(
                token,
                "only printable ASCII without spaces is allowed",
            ));
        }
        let resource_end = token.find([':', '?']).unwrap_or(token.len());
        let resource = &token[..resource_end];
        let rest = &token[resource_end..];
        // Only the first '?' separates the query (§2.6); '#' is literal everywhere (§2.7).
        let (positional, query) = match rest.strip_prefix(':') {
            Some(after) => match after.split_once('?') {
                Some((positional, query)) => (positional, Some(query)),
                None => (after, None),
            },
            None => ("", rest.strip_prefix('?')),
        };
        let positional = percent_decode_str(positional)
            .decode_utf8()
            .map_err(|_| ScopeError::syntax(token, "the positional part is not valid UTF-8"))?;
        let params = query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            resource: resource.to_owned(),
            positional: (!positional.is_empty()).then(|| positional.into_owned()),
            params,
        })
    }
}

/// What canonical values percent-encode: everything the grammar treats specially, `#` (§2.7) and
/// `+` (§2.12, which form-decoding would turn into a space). `:` `/` `,` `@` `*` stay literal.
const VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'=')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, VALUE).to_string()
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
    }
}
