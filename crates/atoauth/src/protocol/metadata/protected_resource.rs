//! OAuth protected-resource metadata of a PDS (F1, F2; RFC 9728).

use serde_json::Value;

use super::origin::bare_origin_problem;
use crate::http::TargetPolicy;
use crate::rules::{Checker, Violation};

/// A validated `/.well-known/oauth-protected-resource` document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedResourceMetadata {
    /// The resource (the PDS origin).
    pub resource: String,
    /// The one authorization server (F1), a bare origin (F3).
    pub authorization_server: String,
}

impl ProtectedResourceMetadata {
    /// Every violation of F1–F3 in `document`, fetched from the PDS at `origin`.
    #[must_use]
    pub fn check(document: &Value, origin: &str, policy: TargetPolicy) -> Vec<Violation> {
        Self::parse(document, origin, policy)
            .err()
            .unwrap_or_default()
    }

    /// The document, if it passes F1–F3.
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
            check.fail("F1", "the document is not a JSON object");
            return Err(check.0);
        };
        let resource = object.get("resource").and_then(Value::as_str);
        // F2: RFC 9728 §3.3 — `resource` must be the URL the document describes. The reference
        // PDS publishes its origin, sometimes with a trailing slash.
        check.require(
            resource.is_some_and(|r| r.trim_end_matches('/') == origin),
            "F2",
            format!("\"resource\" is {resource:?}, expected {origin:?}"),
        );
        let servers = object
            .get("authorization_servers")
            .and_then(Value::as_array);
        let server = match servers.map(Vec::as_slice) {
            Some([Value::String(server)]) => Some(server.clone()),
            Some(list) => {
                check.fail(
                    "F1",
                    format!(
                        "\"authorization_servers\" must hold exactly one URL, it holds {}",
                        list.len()
                    ),
                );
                None
            }
            None => {
                check.fail("F1", "\"authorization_servers\" is missing or not an array");
                None
            }
        };
        if let Some(server) = &server
            && let Some(problem) = bare_origin_problem(server, policy)
        {
            check.fail("F3", format!("authorization server: {problem}"));
        }
        match (server, check.0.is_empty()) {
            (Some(authorization_server), true) => Ok(Self {
                resource: origin.to_owned(),
                authorization_server,
            }),
            _ => Err(check.0),
        }
    }
}
