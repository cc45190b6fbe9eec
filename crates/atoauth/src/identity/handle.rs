//! Handle → DID (identity spec D): DNS TXT, HTTPS well-known, and an XRPC resolver service.

#[cfg(not(target_arch = "wasm32"))]
use std::collections::BTreeSet;

#[cfg(not(target_arch = "wasm32"))]
use hickory_resolver::proto::rr::RData;
use url::Url;

use super::{IdentityError, Inner};
use crate::http::{FetchLimits, HttpError};
use crate::syntax::{Did, DidMethod, Handle};

/// The DNS resolver behind TXT lookups.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type DnsResolver = hickory_resolver::TokioResolver;
/// A browser has no DNS: handles resolve through a service ([`HandleResolution::Service`]), so
/// no resolver value can exist.
#[cfg(target_arch = "wasm32")]
pub(crate) type DnsResolver = std::convert::Infallible;

/// How handles are resolved.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum HandleResolution {
    /// DNS TXT `_atproto.<handle>` and HTTPS `/.well-known/atproto-did`, concurrently, DNS
    /// preferred (D.16–D.18). The default.
    DnsAndWellKnown,
    /// Only `com.atproto.identity.resolveHandle` on this service (D.20); it is trusted for the
    /// handle → DID step, and the DID document must still claim the handle.
    Service(Url),
    /// DNS and well-known first; this service when neither finds the handle.
    DnsAndWellKnownThenService(Url),
}

pub(super) async fn resolve(inner: &Inner, handle: &Handle) -> Result<Did, IdentityError> {
    match &inner.handle_resolution {
        HandleResolution::DnsAndWellKnown => direct(inner, handle).await,
        HandleResolution::Service(service) => via_service(inner, service, handle).await,
        HandleResolution::DnsAndWellKnownThenService(service) => {
            match direct(inner, handle).await {
                Err(error) if error.is_negative_answer() => {
                    via_service(inner, service, handle).await
                }
                other => other,
            }
        }
    }
}

/// DNS and the well-known concurrently; DNS wins when both answer (D.18).
async fn direct(inner: &Inner, handle: &Handle) -> Result<Did, IdentityError> {
    let (dns, well_known) = tokio::join!(dns_txt(inner, handle), well_known(inner, handle));
    match (dns, well_known) {
        (Ok(did), _) => Ok(did),
        // Conflicting DNS records are an answer in themselves, not a reason to look elsewhere.
        (Err(ambiguous @ IdentityError::HandleAmbiguous { .. }), _) => Err(ambiguous),
        (Err(_), Ok(did)) => Ok(did),
        (Err(dns), Err(well_known)) => {
            if dns.is_negative_answer() && well_known.is_negative_answer() {
                Err(IdentityError::HandleNotFound {
                    handle: handle.to_string(),
                    detail: format!("DNS: {}; HTTPS: {}", detail(&dns), detail(&well_known)),
                })
            } else if dns.is_negative_answer() {
                Err(well_known)
            } else {
                Err(dns)
            }
        }
    }
}

fn detail(error: &IdentityError) -> String {
    match error {
        IdentityError::HandleNotFound { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

fn not_found(handle: &Handle, detail: impl Into<String>) -> IdentityError {
    IdentityError::HandleNotFound {
        handle: handle.to_string(),
        detail: detail.into(),
    }
}

pub(super) async fn dns_txt(inner: &Inner, handle: &Handle) -> Result<Did, IdentityError> {
    let Some(dns) = &inner.dns else {
        return Err(not_found(handle, "no DNS resolver configured"));
    };
    txt_lookup(dns, handle).await
}

#[cfg(target_arch = "wasm32")]
async fn txt_lookup(dns: &DnsResolver, _: &Handle) -> Result<Did, IdentityError> {
    match *dns {}
}

#[cfg(not(target_arch = "wasm32"))]
pub(super) async fn txt_lookup(dns: &DnsResolver, handle: &Handle) -> Result<Did, IdentityError> {
    let name = format!("_atproto.{handle}.");
    let lookup = match dns.txt_lookup(name.as_str()).await {
        Ok(lookup) => lookup,
        Err(error) if error.is_no_records_found() || error.is_nx_domain() => {
            return Err(not_found(handle, format!("no TXT record at {name}")));
        }
        Err(hickory_resolver::net::NetError::Timeout) => {
            return Err(IdentityError::Timeout {
                what: format!("DNS TXT {name}"),
            });
        }
        Err(error) => {
            return Err(IdentityError::Network {
                what: format!("DNS TXT {name}"),
                source: Some(std::sync::Arc::new(error)),
            });
        }
    };
    // D.16: only values starting with "did="; several different DIDs are an error.
    let values = did_values(lookup.answers());
    let mut values = values.into_iter();
    match (values.next(), values.next()) {
        (None, _) => Err(not_found(handle, format!("no did= TXT record at {name}"))),
        (Some(first), None) => supported_did(handle, first.trim()),
        (Some(first), Some(second)) => Err(IdentityError::HandleAmbiguous {
            handle: handle.to_string(),
            dids: std::iter::once(first)
                .chain(std::iter::once(second))
                .chain(values)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The `did=` values of TXT answers (each record's strings joined), without the prefix. Shared
/// with lexicon authority lookups (`_lexicon.<authority>`), which use the same format.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn did_values(answers: &[hickory_resolver::proto::rr::Record]) -> BTreeSet<String> {
    answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => {
                let joined: Vec<u8> = txt
                    .txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect();
                String::from_utf8(joined).ok()
            }
            _ => None,
        })
        .filter_map(|value| value.strip_prefix("did=").map(|did| did.trim().to_owned()))
        .collect()
}

/// D.19: the answer must be a valid DID of a supported method.
fn supported_did(handle: &Handle, value: &str) -> Result<Did, IdentityError> {
    let did = Did::new(value).map_err(|e| IdentityError::InvalidDocument {
        did: handle.to_string(),
        reason: format!("the handle resolves to an invalid DID: {e}"),
    })?;
    if did.method() == DidMethod::Other {
        return Err(IdentityError::UnsupportedDidMethod {
            did: did.to_string(),
            reason: "only did:plc and did:web are supported",
        });
    }
    Ok(did)
}

pub(super) async fn well_known(inner: &Inner, handle: &Handle) -> Result<Did, IdentityError> {
    let (url, host_header) = match &inner.well_known_base {
        Some(base) => (
            format!(
                "{}/.well-known/atproto-did",
                base.as_str().trim_end_matches('/')
            ),
            Some(handle.as_str()),
        ),
        None => (format!("https://{handle}/.well-known/atproto-did"), None),
    };
    let headers: Vec<_> = host_header
        .map(|host| (http::header::HOST, host))
        .into_iter()
        .collect();
    let response = match inner
        .get(&url, &headers, FetchLimits::HANDLE_WELL_KNOWN)
        .await
    {
        Ok(response) => response,
        // A redirect loop or an over-long redirect chain means the method found nothing.
        Err(HttpError::Redirect { .. }) => return Err(not_found(handle, "too many redirects")),
        Err(error) => return Err(error.into()),
    };
    if !response.status().is_success() {
        return Err(not_found(
            handle,
            format!("{url} answered HTTP {}", response.status().as_u16()),
        ));
    }
    // D.17: the body is the DID as text; surrounding white space is trimmed; the content type
    // is not enforced.
    let text = String::from_utf8(response.into_body())
        .map_err(|_| not_found(handle, format!("{url} did not answer with text")))?;
    supported_did(handle, text.trim())
}

async fn via_service(inner: &Inner, service: &Url, handle: &Handle) -> Result<Did, IdentityError> {
    let mut url = service
        .join("/xrpc/com.atproto.identity.resolveHandle")
        .map_err(|e| IdentityError::InvalidDocument {
            did: handle.to_string(),
            reason: format!("bad handle resolver URL: {e}"),
        })?;
    url.query_pairs_mut().append_pair("handle", handle.as_str());
    let response = inner.get(url.as_str(), &[], FetchLimits::METADATA).await?;
    let status = response.status().as_u16();
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    match status {
        200 => {
            let did = body["did"]
                .as_str()
                .ok_or_else(|| IdentityError::InvalidDocument {
                    did: handle.to_string(),
                    reason: "the resolver's answer has no \"did\"".to_owned(),
                })?;
            supported_did(handle, did)
        }
        // The reference PDS answers 400 {"error":"InvalidRequest","message":"Unable to resolve handle"}.
        400 | 404 => Err(not_found(
            handle,
            format!(
                "{service} could not resolve it ({})",
                body["message"].as_str().unwrap_or("no message")
            ),
        )),
        _ => Err(IdentityError::UnexpectedStatus {
            url: format!("{service}xrpc/com.atproto.identity.resolveHandle"),
            status,
        }),
    }
}
