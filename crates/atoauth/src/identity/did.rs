//! DID → DID document (identity spec E): `did:plc` through a PLC directory, `did:web` through
//! `/.well-known/did.json`.

use super::{DidDocument, IdentityError, Inner};
use crate::http::{FetchLimits, TargetPolicy};
use crate::syntax::{Did, DidMethod, Handle};

pub(super) async fn fetch_document(inner: &Inner, did: &Did) -> Result<DidDocument, IdentityError> {
    let url = document_url(inner, did)?;
    let response = inner
        .get(
            &url,
            &[(
                http::header::ACCEPT,
                "application/did+ld+json, application/json",
            )],
            FetchLimits::METADATA,
        )
        .await?;
    match response.status().as_u16() {
        200 => {}
        404 => {
            return Err(IdentityError::DidNotFound {
                did: did.to_string(),
            });
        }
        410 => {
            return Err(IdentityError::DidTombstoned {
                did: did.to_string(),
            });
        }
        status => return Err(IdentityError::UnexpectedStatus { url, status }),
    }
    let invalid = |reason: String| IdentityError::InvalidDocument {
        did: did.to_string(),
        reason,
    };
    // E.22, E.23: a JSON document.
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type != "application/json" && media_type != "application/did+ld+json" {
        return Err(invalid(format!("served as {content_type:?}, not JSON")));
    }
    let document: DidDocument = serde_json::from_slice(response.body())
        .map_err(|e| invalid(format!("not a DID document: {e}")))?;
    if !document.describes(did) {
        return Err(IdentityError::DidDocIdMismatch {
            did: did.to_string(),
            found: document.id,
        });
    }
    Ok(document)
}

fn document_url(inner: &Inner, did: &Did) -> Result<String, IdentityError> {
    match did.method() {
        // Not Url::join: it would read "did:" as a URL scheme.
        DidMethod::Plc => Ok(format!(
            "{}/{did}",
            inner.plc_url.as_str().trim_end_matches('/')
        )),
        DidMethod::Web => web_document_url(did, inner.policy),
        DidMethod::Other => Err(IdentityError::UnsupportedDidMethod {
            did: did.to_string(),
            reason: "only did:plc and did:web are supported",
        }),
    }
}

/// B.13: hostname only; a port only for `localhost`, and only when loopback is allowed.
fn web_document_url(did: &Did, policy: TargetPolicy) -> Result<String, IdentityError> {
    let unsupported = |reason| IdentityError::UnsupportedDidMethod {
        did: did.to_string(),
        reason,
    };
    let identifier = did.identifier();
    if identifier.contains(':') {
        return Err(unsupported(
            "path-based did:web is not supported by atproto",
        ));
    }
    let decoded = percent_encoding::percent_decode_str(identifier)
        .decode_utf8()
        .map_err(|_| unsupported("the host is not valid UTF-8"))?;
    if let Some(port) = decoded.strip_prefix("localhost:") {
        if policy != TargetPolicy::InsecureAllowLoopbackHttp {
            return Err(unsupported(
                "did:web:localhost is for local development only (insecure mode)",
            ));
        }
        let port: u16 = port.parse().map_err(|_| unsupported("invalid port"))?;
        return Ok(format!("http://localhost:{port}/.well-known/did.json"));
    }
    if decoded == "localhost" {
        if policy != TargetPolicy::InsecureAllowLoopbackHttp {
            return Err(unsupported(
                "did:web:localhost is for local development only (insecure mode)",
            ));
        }
        return Ok("http://localhost/.well-known/did.json".to_owned());
    }
    if decoded.contains(':') {
        return Err(unsupported("a port is allowed only for localhost"));
    }
    let host =
        Handle::new(&decoded).map_err(|_| unsupported("the host is not a valid domain name"))?;
    if host.is_reserved() {
        return Err(unsupported("the host's top-level domain is reserved"));
    }
    Ok(format!("https://{host}/.well-known/did.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(did: &str, policy: TargetPolicy) -> Result<String, IdentityError> {
        web_document_url(&Did::new(did).unwrap(), policy)
    }

    #[test]
    fn b13_did_web_forms() {
        let strict = TargetPolicy::PublicHttpsOnly;
        let dev = TargetPolicy::InsecureAllowLoopbackHttp;
        assert_eq!(
            url("did:web:example.com", strict).unwrap(),
            "https://example.com/.well-known/did.json"
        );
        assert_eq!(
            url("did:web:Example.COM", strict).unwrap(),
            "https://example.com/.well-known/did.json"
        );
        assert_eq!(
            url("did:web:localhost%3A1234", dev).unwrap(),
            "http://localhost:1234/.well-known/did.json"
        );
        for refused in [
            "did:web:localhost%3A1234",
            "did:web:localhost",
            "did:web:example.com%3A8443",
            "did:web:example.com:user:alice",
            "did:web:laptop.local",
            "did:web:127.0.0.1",
        ] {
            assert!(
                matches!(
                    url(refused, strict),
                    Err(IdentityError::UnsupportedDidMethod { .. })
                ),
                "{refused}"
            );
        }
        assert!(url("did:web:example.com%3A8443", dev).is_err());
    }
}
