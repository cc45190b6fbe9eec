//! B6.1: every registered member of a client metadata document has one JSON type, and `null` is
//! not "absent". The official authorization server parses the document with a strict schema
//! (`@atproto/oauth-types`), so a wrong type anywhere — even in a member atoauth never reads,
//! such as `client_name` — makes it refuse the client.

use serde_json::{Map, Value};

use crate::rules::Checker;

/// A member's JSON type in the schema.
#[derive(Clone, Copy)]
enum Kind {
    String,
    Strings,
    Boolean,
    Number,
    Object,
}

/// The registered members (RFC 7591, OpenID Connect Registration, RFC 9449, RFC 9396) that the
/// reference schema knows; members outside this list are ignored, as it ignores them.
const MEMBERS: &[(&str, Kind)] = &[
    ("client_id", Kind::String),
    ("redirect_uris", Kind::Strings),
    ("response_types", Kind::Strings),
    ("grant_types", Kind::Strings),
    ("scope", Kind::String),
    ("token_endpoint_auth_method", Kind::String),
    ("token_endpoint_auth_signing_alg", Kind::String),
    ("userinfo_signed_response_alg", Kind::String),
    ("userinfo_encrypted_response_alg", Kind::String),
    ("jwks_uri", Kind::String),
    ("jwks", Kind::Object),
    ("application_type", Kind::String),
    ("subject_type", Kind::String),
    ("request_object_signing_alg", Kind::String),
    ("id_token_signed_response_alg", Kind::String),
    ("authorization_signed_response_alg", Kind::String),
    ("authorization_encrypted_response_enc", Kind::String),
    ("authorization_encrypted_response_alg", Kind::String),
    ("client_name", Kind::String),
    ("client_uri", Kind::String),
    ("policy_uri", Kind::String),
    ("tos_uri", Kind::String),
    ("logo_uri", Kind::String),
    ("default_max_age", Kind::Number),
    ("require_auth_time", Kind::Boolean),
    ("contacts", Kind::Strings),
    ("tls_client_certificate_bound_access_tokens", Kind::Boolean),
    ("dpop_bound_access_tokens", Kind::Boolean),
    ("authorization_details_types", Kind::Strings),
];

/// Reports every registered member of the wrong JSON type (`null` included).
pub(super) fn check_member_types(check: &mut Checker, object: &Map<String, Value>) {
    for (name, kind) in MEMBERS {
        let Some(value) = object.get(*name) else {
            continue;
        };
        let (ok, expected) = match kind {
            Kind::String => (value.is_string(), "a string"),
            Kind::Strings => (
                value
                    .as_array()
                    .is_some_and(|items| items.iter().all(Value::is_string)),
                "an array of strings",
            ),
            Kind::Boolean => (value.is_boolean(), "true or false"),
            Kind::Number => (value.is_number(), "a number"),
            Kind::Object => (value.is_object(), "an object"),
        };
        if !ok {
            let found = if value.is_null() {
                "null (write nothing to leave it out)".to_owned()
            } else {
                value.to_string().chars().take(60).collect()
            };
            check.fail(
                "B6.1",
                format!("\"{name}\" must be {expected}, not {found}"),
            );
        }
    }
    check_enums(check, object);
    if let Some(contacts) = object.get("contacts").and_then(Value::as_array) {
        for contact in contacts.iter().filter_map(Value::as_str) {
            check.require(
                is_email(contact),
                "B6.1",
                format!("\"contacts\" holds {contact:?}, which is not an email address"),
            );
        }
    }
}

/// Members whose values come from a fixed list in the schema.
fn check_enums(check: &mut Checker, object: &Map<String, Value>) {
    const ENUMS: &[(&str, &[&str])] = &[
        ("application_type", &["web", "native"]),
        ("subject_type", &["public", "pairwise"]),
        (
            "token_endpoint_auth_method",
            &[
                "client_secret_basic",
                "client_secret_jwt",
                "client_secret_post",
                "none",
                "private_key_jwt",
                "self_signed_tls_client_auth",
                "tls_client_auth",
            ],
        ),
        ("authorization_encrypted_response_enc", &["A128CBC-HS256"]),
        (
            "response_types",
            &[
                "code",
                "token",
                "none",
                "code id_token token",
                "code id_token",
                "code token",
                "id_token token",
                "id_token",
            ],
        ),
        (
            "grant_types",
            &[
                "authorization_code",
                "implicit",
                "refresh_token",
                "password",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "urn:ietf:params:oauth:grant-type:saml2-bearer",
            ],
        ),
    ];
    for (name, allowed) in ENUMS {
        let values: Vec<&str> = match object.get(*name) {
            Some(Value::String(value)) => vec![value.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        for value in values {
            check.require(
                allowed.contains(&value),
                "B6.1",
                format!(
                    "\"{name}\" cannot be {value:?} (one of: {})",
                    allowed.join(", ")
                ),
            );
        }
    }
}

/// The shape the reference schema's email check (zod 3) accepts: `local@domain.tld`, with a
/// dotted domain, a letters-only TLD of two or more, and no leading or doubled dots.
fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with(['.', '\''])
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_'+-.".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels[..labels.len() - 1].iter().all(|label| {
            label
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// B6.1: the RFC 6749 `scope` grammar: NQCHAR tokens (printable ASCII but `"` and `\`)
/// separated by single spaces.
pub(super) fn is_oauth_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_scopes() {
        assert!(is_email("dev@app.example.com"));
        assert!(is_email("a.b+c@x.io"));
        for bad in [
            "dev",
            "@x.io",
            "a@x",
            "a@x.1",
            ".a@x.io",
            "a..b@x.io",
            "a b@x.io",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_oauth_scope("atproto transition:generic"));
        for bad in [
            "",
            " atproto",
            "atproto ",
            "atproto  repo:*",
            "atproto \"x\"",
            "é",
        ] {
            assert!(!is_oauth_scope(bad), "{bad:?}");
        }
    }
}
