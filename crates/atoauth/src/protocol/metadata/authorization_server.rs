//! OAuth authorization-server metadata, checked item by item against F4 (RFC 8414 plus the
//! atproto profile).

use serde_json::{Map, Value};
use url::Url;

use super::origin::bare_origin_problem;
use crate::http::TargetPolicy;
use crate::rules::{Checker, Violation};

/// A validated `/.well-known/oauth-authorization-server` document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationServerMetadata {
    /// The issuer, exactly as published (and equal to the origin it was fetched from, F4.1).
    pub issuer: String,
    /// Where the browser goes, with `client_id` and `request_uri` only (G5).
    pub authorization_endpoint: Url,
    /// Code exchange and refresh (L1, N2).
    pub token_endpoint: Url,
    /// PAR (G1, F4.10).
    pub pushed_authorization_request_endpoint: Url,
    /// Revocation (P1), when offered.
    pub revocation_endpoint: Option<Url>,
    /// The scopes the server supports (F4.8).
    pub scopes_supported: Vec<String>,
    /// DPoP algorithms (F4.11); atoauth always uses ES256 from this list, never from another.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// `protected_resources`, when listed (F5).
    pub protected_resources: Option<Vec<String>>,
}

fn strings(object: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    object.get(name).and_then(Value::as_array).map(|list| {
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

fn contains(list: Option<&Vec<String>>, value: &str) -> bool {
    list.is_some_and(|list| list.iter().any(|v| v == value))
}

impl AuthorizationServerMetadata {
    /// Every violation of F4 (each item separately) in `document`, fetched from `origin`.
    #[must_use]
    pub fn check(document: &Value, origin: &str, policy: TargetPolicy) -> Vec<Violation> {
        Self::parse(document, origin, policy)
            .err()
            .unwrap_or_default()
    }

    /// The document, if it passes every F4 item.
    ///
    /// # Errors
    /// Every violation found.
    pub fn parse(
        document: &Value,
        origin: &str,
        policy: TargetPolicy,
    ) -> Result<Self, Vec<Violation>> {
        let mut check = Checker::default();
        let Some(object) = document.as_object() else {
            check.fail("F4", "the document is not a JSON object");
            return Err(check.0);
        };

        let issuer = object.get("issuer").and_then(Value::as_str).unwrap_or("");
        if let Some(problem) = bare_origin_problem(issuer, policy) {
            check.fail("F4.1", format!("issuer: {problem}"));
        }
        check.require(
            issuer == origin,
            "F4.1",
            format!("issuer {issuer:?} differs from the origin it was fetched from, {origin:?}"),
        );

        let mut endpoint = |name: &'static str, rule: &'static str| -> Option<Url> {
            let Some(value) = object.get(name).and_then(Value::as_str) else {
                check.fail(rule, format!("\"{name}\" is missing"));
                return None;
            };
            match Url::parse(value) {
                Ok(url) if policy.allows_scheme(url.scheme()) => Some(url),
                Ok(url) => {
                    check.fail(rule, format!("\"{name}\" uses {}, not https", url.scheme()));
                    None
                }
                Err(e) => {
                    check.fail(rule, format!("\"{name}\" is not a URL: {e}"));
                    None
                }
            }
        };
        let authorization_endpoint = endpoint("authorization_endpoint", "F4.2");
        let token_endpoint = endpoint("token_endpoint", "F4.2");
        let par_endpoint = endpoint("pushed_authorization_request_endpoint", "F4.10");
        let revocation_endpoint = match object.get("revocation_endpoint") {
            None | Some(Value::Null) => None,
            Some(_) => endpoint("revocation_endpoint", "P1"),
        };

        let list = |name| strings(object, name);
        let response_types = list("response_types_supported");
        check.require(
            contains(response_types.as_ref(), "code"),
            "F4.3",
            "\"response_types_supported\" must include \"code\"",
        );
        let grants = list("grant_types_supported");
        for grant in ["authorization_code", "refresh_token"] {
            check.require(
                contains(grants.as_ref(), grant),
                "F4.4",
                format!("\"grant_types_supported\" must include {grant:?}"),
            );
        }
        check.require(
            contains(list("code_challenge_methods_supported").as_ref(), "S256"),
            "F4.5",
            "\"code_challenge_methods_supported\" must include \"S256\"",
        );
        let auth_methods = list("token_endpoint_auth_methods_supported");
        for method in ["none", "private_key_jwt"] {
            check.require(
                contains(auth_methods.as_ref(), method),
                "F4.6",
                format!("\"token_endpoint_auth_methods_supported\" must include {method:?}"),
            );
        }
        let signing_algs = list("token_endpoint_auth_signing_alg_values_supported");
        check.require(
            contains(signing_algs.as_ref(), "ES256"),
            "F4.7",
            "\"token_endpoint_auth_signing_alg_values_supported\" must include \"ES256\"",
        );
        check.require(
            !contains(signing_algs.as_ref(), "none"),
            "F4.7",
            "\"token_endpoint_auth_signing_alg_values_supported\" must not include \"none\"",
        );
        let scopes = list("scopes_supported").unwrap_or_default();
        check.require(
            scopes.iter().any(|s| s == "atproto"),
            "F4.8",
            "\"scopes_supported\" must include \"atproto\"",
        );
        check.require(
            object.get("authorization_response_iss_parameter_supported")
                == Some(&Value::Bool(true)),
            "F4.9",
            "\"authorization_response_iss_parameter_supported\" must be true",
        );
        check.require(
            object.get("require_pushed_authorization_requests") == Some(&Value::Bool(true)),
            "F4.10",
            "\"require_pushed_authorization_requests\" must be true",
        );
        let dpop_algs = list("dpop_signing_alg_values_supported").unwrap_or_default();
        check.require(
            dpop_algs.iter().any(|a| a == "ES256"),
            "F4.11",
            "\"dpop_signing_alg_values_supported\" must include \"ES256\"",
        );
        check.require(
            !matches!(
                object.get("require_request_uri_registration"),
                Some(Value::Bool(false))
            ),
            "F4.12",
            "\"require_request_uri_registration\" must be absent or true",
        );
        check.require(
            object.get("client_id_metadata_document_supported") == Some(&Value::Bool(true)),
            "F4.13",
            "\"client_id_metadata_document_supported\" must be true",
        );

        match (
            authorization_endpoint,
            token_endpoint,
            par_endpoint,
            check.0.is_empty(),
        ) {
            (Some(authorization_endpoint), Some(token_endpoint), Some(par), true) => Ok(Self {
                issuer: issuer.to_owned(),
                authorization_endpoint,
                token_endpoint,
                pushed_authorization_request_endpoint: par,
                revocation_endpoint,
                scopes_supported: scopes,
                dpop_signing_alg_values_supported: dpop_algs,
                protected_resources: list("protected_resources"),
            }),
            _ => Err(check.0),
        }
    }

    /// F5: when the server lists its protected resources, `resource` must be one of them.
    #[must_use]
    pub fn lists_resource(&self, resource: &str) -> bool {
        self.protected_resources.as_ref().is_none_or(|list| {
            list.iter()
                .any(|r| r.trim_end_matches('/') == resource.trim_end_matches('/'))
        })
    }
}
