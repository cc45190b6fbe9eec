//! The client metadata document validator (sections B and D), shared by
//! [`ClientMetadata::check`](super::ClientMetadata::check) and `atoauth client-metadata
//! validate`. It reports every finding at once, each with its rule id and a severity, and its
//! errors are what the official authorization server refuses (B6.1–B6.3), plus the few rules
//! the spec makes stricter than that server.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use url::Url;

use super::jwks::check_jwks;
use super::members::{check_member_types, is_oauth_scope};
use super::redirect::check_redirect;
use crate::rules::{Checker, Violation};
use crate::scope::Permission;

/// What the validator may relax, and what it compares against.
#[derive(Clone, Debug, Default)]
pub struct ValidationOptions {
    /// The URL the document was fetched from: `client_id` must equal it (B5.1).
    pub fetched_from: Option<String>,
    /// Accept a port in `client_id`: the official authorization server accepts one, the spec
    /// does not (B1). Only for a client host on a test machine; nothing else is relaxed.
    pub insecure_allow_client_id_port: bool,
}

/// The largest document the authorization server reads (B6.1).
pub const MAX_CLIENT_METADATA_BYTES: usize = 512 * 1024;

/// B6: OIDC and other members the reference AS refuses whenever they are present.
const FORBIDDEN_FIELDS: [&str; 4] = [
    "default_max_age",
    "userinfo_signed_response_alg",
    "id_token_signed_response_alg",
    "userinfo_encrypted_response_alg",
];

/// B6.2: the top-level domains the reference AS treats as local, besides single-label names.
const LOCAL_TLDS: [&str; 5] = ["test", "local", "localhost", "invalid", "example"];

/// B6.2: why `host` is a local name the reference AS refuses, if it is one.
pub(crate) fn local_host_problem(host: &str) -> Option<String> {
    let tld = host.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    if !host.contains('.') {
        return Some(format!("{host} is a single-label (local) host name"));
    }
    LOCAL_TLDS
        .contains(&tld.as_str())
        .then(|| format!("{host} is a local host name (.{tld})"))
}

/// B6.2: `https` on a loopback host, a single-label or `.local` name: what the reference AS
/// refuses in every https URL of a document.
pub(crate) fn https_host_problem(url: &Url) -> Option<String> {
    match url.host() {
        Some(url::Host::Domain("localhost")) => {
            Some("https on a loopback host is refused".to_owned())
        }
        // The reference names exactly these two addresses (not all of 127/8).
        Some(url::Host::Ipv4(ip)) if ip == std::net::Ipv4Addr::LOCALHOST => {
            Some("https on a loopback host is refused".to_owned())
        }
        Some(url::Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST => {
            Some("https on a loopback host is refused".to_owned())
        }
        Some(url::Host::Domain(domain)) if !domain.contains('.') => {
            Some(format!("{domain} is a single-label host name"))
        }
        Some(url::Host::Domain(domain)) if domain.ends_with(".local") => {
            Some(format!("{domain} is a .local host name"))
        }
        None => Some("it has no host".to_owned()),
        _ => None,
    }
}

/// Every violation of sections B and D in a client metadata document: errors (the server
/// refuses the client, or a rule forbids it) and warnings (B6.3).
#[must_use]
pub fn check_client_metadata(document: &Value, options: &ValidationOptions) -> Vec<Violation> {
    let mut check = Checker::default();
    let Some(object) = document.as_object() else {
        check.fail("B4", "the document is not a JSON object");
        return check.0;
    };
    check_member_types(&mut check, object);
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

    let native = object.get("application_type").and_then(Value::as_str) == Some("native");

    check_grant_types(&mut check, object);
    check_scope(&mut check, object);

    let response_types = string_list(&mut check, object, "response_types", "B5.5");
    check.require(
        response_types.is_empty() || response_types.iter().any(|r| r == "code"),
        "B5.5",
        "\"response_types\" must include \"code\"",
    );
    warn_duplicates(&mut check, "response_types", &response_types);

    let redirects = string_list(&mut check, object, "redirect_uris", "B5.6");
    check.require(
        !redirects.is_empty(),
        "B5.6",
        "\"redirect_uris\" must list at least one URI",
    );
    warn_duplicates(&mut check, "redirect_uris", &redirects);
    let client_host = client_url.as_ref().and_then(Url::host_str);
    for uri in &redirects {
        check_redirect(&mut check, uri, native, client_host);
    }

    check_authentication(&mut check, object, native);

    check.require(
        object.get("dpop_bound_access_tokens") == Some(&Value::Bool(true)),
        "B5.9",
        "\"dpop_bound_access_tokens\" must be true",
    );

    check_links(&mut check, object, client_url.as_ref());
    check_unsupported(&mut check, object);
    check.0
}

fn check_grant_types(check: &mut Checker, object: &Map<String, Value>) {
    let grants = string_list(check, object, "grant_types", "B5.3");
    check.require(
        grants.is_empty() || grants.iter().any(|g| g == "authorization_code"),
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
    check.require(
        grants.iter().collect::<BTreeSet<_>>().len() == grants.len(),
        "B5.3",
        "\"grant_types\" lists a value twice",
    );
    if !grants.is_empty() && !grants.iter().any(|g| g == "refresh_token") {
        check.warn(
            "B6.3",
            "\"grant_types\" has no \"refresh_token\": sessions end when the first access token expires",
        );
    }
}

fn check_scope(check: &mut Checker, object: &Map<String, Value>) {
    let Some(scope) = object.get("scope").and_then(Value::as_str) else {
        check.fail(
            "B5.4",
            "\"scope\" is missing: it must list every scope the client may request",
        );
        return;
    };
    check.require(
        is_oauth_scope(scope),
        "B6.1",
        "\"scope\" breaks the OAuth grammar: tokens of printable ASCII (no '\"' or '\\'), one space apart, none at either end",
    );
    let tokens: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    check.require(
        tokens.contains(&"atproto"),
        "B5.4",
        "\"scope\" must include \"atproto\"",
    );
    check.require(
        tokens.len() == tokens.iter().collect::<BTreeSet<_>>().len(),
        "B5.4",
        "\"scope\" lists a value twice",
    );
    for token in tokens {
        if let Err(error) = Permission::parse(token) {
            check.warn(
                "B5.4",
                format!(
                    "scope {token:?} grants nothing and cannot be requested: {}",
                    error.reason
                ),
            );
        }
    }
}

fn warn_duplicates(check: &mut Checker, name: &str, values: &[String]) {
    if values.iter().collect::<BTreeSet<_>>().len() != values.len() {
        check.warn("B6.3", format!("\"{name}\" lists a value twice"));
    }
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
    // B6.2: the server compares the id with its own serialisation of the URL.
    check.require(
        url.as_str() == id,
        "B6.2",
        format!(
            "\"client_id\" must be written exactly as {:?} (lower-case scheme and host, no default port, no spaces)",
            url.as_str()
        ),
    );
    if !options.insecure_allow_client_id_port {
        check.require(
            url.port().is_none(),
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
    match url.host() {
        Some(url::Host::Domain(host)) => {
            if let Some(problem) = local_host_problem(host) {
                check.fail("B2", format!("\"client_id\": {problem}"));
            } else if let Some(problem) = https_host_problem(&url) {
                check.fail("B6.2", format!("\"client_id\": {problem}"));
            }
        }
        Some(_) => check.fail(
            "B2",
            "\"client_id\" must use a domain name, not an IP address",
        ),
        None => {}
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
            check_public_keys(check, object);
        }
        Some("private_key_jwt") => {
            check.require(!native, "B7", "native clients must use token_endpoint_auth_method none");
            match alg {
                None => check.fail(
                    "B5.8",
                    "\"token_endpoint_auth_signing_alg\" is missing (use \"ES256\")",
                ),
                Some("ES256") => {}
                Some("none") => check.fail(
                    "B5.8",
                    "\"token_endpoint_auth_signing_alg\" must not be \"none\"",
                ),
                // The official server verifies an assertion with whatever algorithm its key
                // allows, whatever this member says.
                Some(other) => check.warn(
                    "B6.3",
                    format!("\"token_endpoint_auth_signing_alg\" {other:?}: the server accepts it, but ES256 is the recommended algorithm and the one atoauth signs with"),
                ),
            }
            // J1: atoauth (and every reference client) signs ES256.
            check_keys(check, object);
        }
        Some(other) => check.fail(
            "B5.7",
            format!("\"token_endpoint_auth_method\" must be none or private_key_jwt, not {other:?}"),
        ),
    }
    if object.contains_key("client_secret") {
        check.fail("A3", "\"client_secret\" does not exist in this profile");
    }
}

/// Keys on a public client: nothing signs with them, but the server still reads them — it
/// refuses `jwks` and `jwks_uri` together, a `jwks` without a `keys` list, and it fetches
/// `jwks_uri`, refusing the client whenever that fetch fails.
fn check_public_keys(check: &mut Checker, object: &Map<String, Value>) {
    let (jwks, jwks_uri) = (object.get("jwks"), object.get("jwks_uri"));
    if jwks.is_some() && jwks_uri.is_some() {
        check.fail("B5.10", "give \"jwks\" or \"jwks_uri\", not both");
        return;
    }
    if let Some(uri) = jwks_uri {
        check_jwks_uri(check, uri);
        check.warn(
            "B6.3",
            "a public client uses no keys, but the server fetches \"jwks_uri\" anyway and refuses the client whenever that fetch fails (remove it, or make the client confidential)",
        );
    }
    if let Some(jwks) = jwks {
        if jwks.get("keys").is_some_and(Value::is_array) {
            check.warn(
                "B6.3",
                "\"jwks\" on a public client is never used (nothing signs client assertions)",
            );
        } else {
            check.fail("B6.1", "\"jwks\" must be an object with a \"keys\" array");
        }
    }
}

fn check_keys(check: &mut Checker, object: &Map<String, Value>) {
    match (object.get("jwks"), object.get("jwks_uri")) {
        (Some(_), Some(_)) => check.fail("B5.10", "give \"jwks\" or \"jwks_uri\", not both"),
        (None, None) => check.fail(
            "B5.10",
            "a confidential client needs \"jwks\" or \"jwks_uri\"",
        ),
        (None, Some(uri)) => check_jwks_uri(check, uri),
        (Some(jwks), None) => check_jwks(check, jwks),
    }
}

/// B5.10, B6.2: an https URL the server will fetch (it never fetches loopback or local hosts).
fn check_jwks_uri(check: &mut Checker, uri: &Value) {
    let url = uri.as_str().and_then(|u| Url::parse(u).ok());
    check.require(
        url.as_ref().is_some_and(|u| u.scheme() == "https"),
        "B5.10",
        "\"jwks_uri\" must be an https URL",
    );
    if let Some(problem) = url.as_ref().and_then(https_host_problem) {
        check.fail("B6.2", format!("\"jwks_uri\": {problem}"));
    }
}

fn check_links(check: &mut Checker, object: &Map<String, Value>, client: Option<&Url>) {
    if let Some(value) = object.get("client_uri").and_then(Value::as_str) {
        match (Url::parse(value), client) {
            (Ok(uri), Some(client)) => {
                check.require(
                    uri.origin() == client.origin(),
                    "B5.11",
                    "\"client_uri\" must have the same origin as client_id",
                );
                // The reference AS accepts the client_id path itself, or a parent of it.
                let parent = if uri.path().ends_with('/') {
                    uri.path().to_owned()
                } else {
                    format!("{}/", uri.path())
                };
                check.require(
                    client.path() == uri.path() || client.path().starts_with(&parent),
                    "B5.11",
                    "\"client_uri\" path must be the client_id path or a parent of it",
                );
            }
            (Err(_), _) => check.fail("B5.11", "\"client_uri\" is not a URL"),
            (Ok(_), None) => {}
        }
    }
    for field in ["client_uri", "logo_uri", "tos_uri", "policy_uri"] {
        let Some(value) = object.get(field).and_then(Value::as_str) else {
            continue;
        };
        let url = Url::parse(value).ok();
        check.require(
            url.as_ref().is_some_and(|u| u.scheme() == "https"),
            "B5.11",
            format!("\"{field}\" must be an https URL"),
        );
        let https = url.as_ref().filter(|u| u.scheme() == "https");
        if let Some(problem) = https.and_then(https_host_problem) {
            check.fail("B6.2", format!("\"{field}\": {problem}"));
        } else if let Some(host) = url.as_ref().and_then(Url::host_str)
            && field == "client_uri"
            && let Some(problem) = local_host_problem(host)
        {
            check.fail("B6.2", format!("\"client_uri\": {problem}"));
        }
    }
}

/// B6: members the reference AS refuses (OIDC and other unsupported features).
fn check_unsupported(check: &mut Checker, object: &Map<String, Value>) {
    for field in FORBIDDEN_FIELDS {
        check.require(
            object.get(field).is_none_or(Value::is_null),
            "B6",
            format!(
                "\"{field}\" is not supported and makes the authorization server refuse the client"
            ),
        );
    }
    check.require(
        object
            .get("authorization_encrypted_response_enc")
            .is_none_or(|v| v.is_null() || v == ""),
        "B6",
        "encrypted authorization responses are not supported",
    );
    check.require(
        object.get("tls_client_certificate_bound_access_tokens") != Some(&Value::Bool(true)),
        "B6",
        "\"tls_client_certificate_bound_access_tokens\": mutual-TLS bound tokens are not supported (false or absent)",
    );
    if let Some(subject) = object.get("subject_type").and_then(Value::as_str) {
        check.require(
            subject == "public",
            "B6",
            "\"subject_type\" must be absent or \"public\"",
        );
    }
    if let Some(types) = object
        .get("authorization_details_types")
        .and_then(Value::as_array)
    {
        check.require(
            types.is_empty(),
            "B6",
            "\"authorization_details_types\": the authorization server supports none",
        );
    }
}

/// A list member's strings (B6.1 reports wrong types); missing or empty is an error of `rule`.
fn string_list(
    check: &mut Checker,
    object: &Map<String, Value>,
    name: &str,
    rule: &'static str,
) -> Vec<String> {
    match object.get(name).and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            check.fail(rule, format!("\"{name}\" must not be empty"));
            Vec::new()
        }
        None => {
            if !object.contains_key(name) {
                check.fail(rule, format!("\"{name}\" is missing"));
            }
            Vec::new()
        }
    }
}
