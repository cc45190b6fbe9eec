//! The client metadata document validator (sections B and D), shared by
//! [`ClientMetadata::validate`](super::ClientMetadata::validate) and `atoauth client-metadata
//! validate`. It reports every violation, each with its rule id.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::{Map, Value};
use url::Url;

use super::redirect::check_redirect;
use crate::rules::{Checker, Violation};

/// What the validator may relax, and what it compares against.
#[derive(Clone, Debug, Default)]
pub struct ValidationOptions {
    /// The URL the document was fetched from: `client_id` must equal it (B5.1).
    pub fetched_from: Option<String>,
    /// Accept a port and a local host name (`.internal`, `.test`, …) in `client_id` and https
    /// redirect URIs. Only for a client host on a test machine; the reference AS refuses these.
    pub insecure_allow_local_client_host: bool,
}

/// B6: OIDC and other fields the reference AS rejects.
const FORBIDDEN_FIELDS: [&str; 6] = [
    "default_max_age",
    "userinfo_signed_response_alg",
    "id_token_signed_response_alg",
    "userinfo_encrypted_response_alg",
    "authorization_encrypted_response_enc",
    "tls_client_certificate_bound_access_tokens",
];

/// Top-level domains and names the reference AS treats as local (D5, B2).
const LOCAL_SUFFIXES: [&str; 7] = [
    ".test",
    ".local",
    ".localhost",
    ".invalid",
    ".example",
    ".internal",
    ".arpa",
];

pub(crate) fn local_host_problem(host: &str, options: &ValidationOptions) -> Option<String> {
    if options.insecure_allow_local_client_host {
        return None;
    }
    let host = host.to_ascii_lowercase();
    if !host.contains('.') {
        return Some(format!("{host} is a single-label (local) host name"));
    }
    if host == "localhost" || LOCAL_SUFFIXES.iter().any(|suffix| host.ends_with(suffix)) {
        return Some(format!("{host} is a local host name"));
    }
    None
}

/// Every violation of sections B and D in a client metadata document.
#[must_use]
pub fn check_client_metadata(document: &Value, options: &ValidationOptions) -> Vec<Violation> {
    let mut check = Checker::default();
    let Some(object) = document.as_object() else {
        check.fail("B4", "the document is not a JSON object");
        return check.0;
    };
    let client_id = object.get("client_id").and_then(Value::as_str);
    let client_url = match client_id {
        None => {
            check.fail("B5.1", "\"client_id\" is missing");
            None
        }
        Some(id) => check_client_id(&mut check, id, options),
    };
    if let (Some(id), Some(fetched)) = (client_id, &options.fetched_from) {
        check.require(
            id == fetched,
            "B5.1",
            format!("\"client_id\" {id:?} differs from the URL it was fetched from, {fetched:?}"),
        );
    }

    let application_type = object.get("application_type").and_then(Value::as_str);
    let native = application_type == Some("native");
    check.require(
        matches!(application_type, None | Some("web" | "native")),
        "B5.2",
        format!("\"application_type\" must be web or native, not {application_type:?}"),
    );

    let grants = string_list(&mut check, object, "grant_types", "B5.3");
    check.require(
        grants.iter().any(|g| g == "authorization_code"),
        "B5.3",
        "\"grant_types\" must include \"authorization_code\"",
    );
    for grant in &grants {
        check.require(
            matches!(grant.as_str(), "authorization_code" | "refresh_token"),
            "B5.3",
            format!(
                "grant type {grant:?} is not supported (only authorization_code, refresh_token)"
            ),
        );
    }

    let scope = object.get("scope").and_then(Value::as_str).unwrap_or("");
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    check.require(
        scopes.contains(&"atproto"),
        "B5.4",
        "\"scope\" must include \"atproto\"",
    );
    check.require(
        scopes.len() == scopes.iter().collect::<BTreeSet<_>>().len(),
        "B5.4",
        "\"scope\" lists a value twice",
    );

    let response_types = string_list(&mut check, object, "response_types", "B5.5");
    check.require(
        response_types.iter().any(|r| r == "code"),
        "B5.5",
        "\"response_types\" must include \"code\"",
    );

    let redirects = string_list(&mut check, object, "redirect_uris", "B5.6");
    check.require(
        !redirects.is_empty(),
        "B5.6",
        "\"redirect_uris\" must list at least one URI",
    );
    let client_host = client_url.as_ref().and_then(Url::host_str);
    for uri in &redirects {
        check_redirect(&mut check, uri, native, client_host, options);
    }

    check_authentication(&mut check, object, native);

    check.require(
        object.get("dpop_bound_access_tokens") == Some(&Value::Bool(true)),
        "B5.9",
        "\"dpop_bound_access_tokens\" must be true",
    );

    check_links(&mut check, object, client_url.as_ref());

    for field in FORBIDDEN_FIELDS {
        check.require(
            !object.contains_key(field),
            "B6",
            format!(
                "\"{field}\" is not supported and makes the authorization server refuse the client"
            ),
        );
    }
    if let Some(subject) = object.get("subject_type") {
        check.require(
            subject == "public",
            "B6",
            "\"subject_type\" must be absent or \"public\"",
        );
    }
    check.0
}

fn check_client_id(check: &mut Checker, id: &str, options: &ValidationOptions) -> Option<Url> {
    let Ok(url) = Url::parse(id) else {
        check.fail("B1", format!("\"client_id\" {id:?} is not an absolute URL"));
        return None;
    };
    check.require(
        url.scheme() == "https",
        "B1",
        format!("\"client_id\" must use https, not {}", url.scheme()),
    );
    if !options.insecure_allow_local_client_host {
        check.require(
            url.port().is_none() && !id.contains(":443/"),
            "B1",
            "\"client_id\" must not include a port",
        );
    }
    check.require(
        url.username().is_empty() && url.password().is_none(),
        "B2",
        "\"client_id\" must not contain user info",
    );
    check.require(
        url.fragment().is_none(),
        "B2",
        "\"client_id\" must not have a fragment",
    );
    check.require(
        url.path() != "/" && !url.path().ends_with('/'),
        "B2",
        "\"client_id\" needs a path that does not end with \"/\" (e.g. /oauth-client-metadata.json)",
    );
    if let Some(host) = url.host_str() {
        let literal = host.trim_matches(['[', ']']);
        check.require(
            literal.parse::<IpAddr>().is_err(),
            "B2",
            "\"client_id\" must use a domain name, not an IP address",
        );
        if let Some(problem) = local_host_problem(host, options) {
            check.fail("B2", format!("\"client_id\": {problem}"));
        }
    }
    // Canonical path: what the URL parser normalises (`..`, `.`, `%2e`) must already be so.
    let written_path = id
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .map_or("", |p| p.split(['?', '#']).next().unwrap_or(""));
    check.require(
        written_path == url.path(),
        "B2",
        "\"client_id\" path is not canonical",
    );
    Some(url)
}

fn check_authentication(check: &mut Checker, object: &Map<String, Value>, native: bool) {
    let method = object
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str);
    let alg = object
        .get("token_endpoint_auth_signing_alg")
        .and_then(Value::as_str);
    match method {
        None => check.fail(
            "B5.7",
            "\"token_endpoint_auth_method\" is missing (the OAuth default client_secret_basic does not exist here)",
        ),
        Some("none") => {
            check.require(
                alg.is_none(),
                "B5.8",
                "\"token_endpoint_auth_signing_alg\" must be absent for a public client",
            );
        }
        Some("private_key_jwt") => {
            check.require(!native, "B7", "native clients must use token_endpoint_auth_method none");
            check.require(
                alg == Some("ES256"),
                "B5.8",
                format!("\"token_endpoint_auth_signing_alg\" must be \"ES256\", not {alg:?}"),
            );
            check_keys(check, object);
        }
        Some(other) => check.fail(
            "B5.7",
            format!("\"token_endpoint_auth_method\" must be none or private_key_jwt, not {other:?}"),
        ),
    }
    if alg == Some("none") {
        check.fail(
            "B5.8",
            "\"token_endpoint_auth_signing_alg\" must not be \"none\"",
        );
    }
    if object.contains_key("client_secret") {
        check.fail("A3", "\"client_secret\" does not exist in this profile");
    }
}

fn check_keys(check: &mut Checker, object: &Map<String, Value>) {
    match (object.get("jwks"), object.get("jwks_uri")) {
        (Some(_), Some(_)) => check.fail("B5.10", "give \"jwks\" or \"jwks_uri\", not both"),
        (None, None) => check.fail(
            "B5.10",
            "a confidential client needs \"jwks\" or \"jwks_uri\"",
        ),
        (None, Some(uri)) => check.require(
            uri.as_str()
                .and_then(|u| Url::parse(u).ok())
                .is_some_and(|u| u.scheme() == "https"),
            "B5.10",
            "\"jwks_uri\" must be an https URL",
        ),
        (Some(jwks), None) => check_jwks(check, jwks),
    }
}

/// J1 and B5.10 on a published JWKS.
pub fn check_jwks_document(jwks: &Value) -> Vec<Violation> {
    let mut check = Checker::default();
    check_jwks(&mut check, jwks);
    check.0
}

fn check_jwks(check: &mut Checker, jwks: &Value) {
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        check.fail("B5.10", "\"jwks\" must be an object with a \"keys\" array");
        return;
    };
    check.require(!keys.is_empty(), "B5.10", "\"jwks\" holds no key");
    let mut kids = BTreeSet::new();
    let mut signing = 0;
    for (i, key) in keys.iter().enumerate() {
        let kid = key.get("kid").and_then(Value::as_str);
        match kid {
            None => check.fail("J1", format!("key #{i} has no \"kid\"")),
            Some(kid) => check.require(
                kids.insert(kid),
                "J1",
                format!("\"kid\" {kid:?} is used twice"),
            ),
        }
        check.require(
            key.get("d").is_none(),
            "B5.10",
            format!("key #{i} includes its private part \"d\": never publish it"),
        );
        let es256 = key.get("kty") == Some(&Value::from("EC"))
            && key.get("crv") == Some(&Value::from("P-256"))
            && key.get("alg").is_none_or(|a| a == "ES256")
            && key.get("use").is_none_or(|u| u == "sig")
            && key.get("revoked").is_none();
        if es256 {
            signing += 1;
        }
    }
    check.require(
        signing > 0,
        "J1",
        "the JWKS has no usable ES256 (EC P-256) signing key",
    );
}

fn check_links(check: &mut Checker, object: &Map<String, Value>, client: Option<&Url>) {
    if let Some(value) = object.get("client_uri") {
        let uri = value.as_str().and_then(|u| Url::parse(u).ok());
        match (uri, client) {
            (Some(uri), Some(client)) => {
                check.require(
                    uri.origin() == client.origin(),
                    "B5.11",
                    "\"client_uri\" must have the same origin as client_id",
                );
                let parent = uri.path().trim_end_matches('/');
                check.require(
                    client.path().starts_with(&format!("{parent}/")),
                    "B5.11",
                    "\"client_uri\" path must be a parent of the client_id path",
                );
            }
            (None, _) => check.fail("B5.11", "\"client_uri\" is not a URL"),
            (Some(_), None) => {}
        }
    }
    for field in ["logo_uri", "tos_uri", "policy_uri"] {
        if let Some(value) = object.get(field) {
            check.require(
                value
                    .as_str()
                    .and_then(|u| Url::parse(u).ok())
                    .is_some_and(|u| u.scheme() == "https"),
                "B5.11",
                format!("\"{field}\" must be an https URL"),
            );
        }
    }
}

fn string_list(
    check: &mut Checker,
    object: &Map<String, Value>,
    name: &str,
    rule: &'static str,
) -> Vec<String> {
    let Some(list) = object.get(name).and_then(Value::as_array) else {
        check.fail(rule, format!("\"{name}\" is missing or not an array"));
        return Vec::new();
    };
    let values: Vec<String> = list
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    check.require(
        values.len() == list.len(),
        rule,
        format!("\"{name}\" must hold strings only"),
    );
    check.require(
        values.iter().collect::<BTreeSet<_>>().len() == values.len(),
        rule,
        format!("\"{name}\" lists a value twice"),
    );
    values
}
