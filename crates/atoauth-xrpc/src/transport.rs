//! The one way both adapters send: an `http::Request` built by a typed API crate, handed to
//! the session, whose answer comes back as that crate expects it.

use atoauth::session::xrpc_error;
use atoauth::{OAuthError, OAuthSession};

/// The session's PDS as a base URI, without the trailing `/` of `OAuthSession::pds()`, so
/// that `{base}/xrpc/{nsid}` has a single slash.
pub(crate) fn base_uri(session: &OAuthSession) -> String {
    session.pds().as_str().trim_end_matches('/').to_owned()
}

/// Sends `request` through the session. The URI must be on the session's PDS (its path and
/// query are what is sent). An `Authorization` header is dropped: the session authenticates.
/// A missing-permission answer becomes [`OAuthError::ScopeMissing`]; every other answer, error
/// or not, is returned for the API crate to read.
pub(crate) async fn send(
    session: &OAuthSession,
    request: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, OAuthError> {
    let (parts, body) = request.into_parts();
    let pds = session.pds();
    let same_origin = match (parts.uri.scheme_str(), parts.uri.authority()) {
        (Some(scheme), Some(authority)) => {
            let origin = format!("{scheme}://{authority}");
            origin.eq_ignore_ascii_case(pds.origin().ascii_serialization().as_str())
        }
        // A relative request is on the PDS by construction.
        _ => true,
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if !same_origin {
        return Err(OAuthError::InvalidInput {
            input: parts.uri.to_string(),
            reason: format!("not on the session's PDS ({pds})"),
        });
    }
    let mut headers = parts.headers;
    headers.remove(http::header::AUTHORIZATION);
    let response = session
        .send(parts.method, path, headers, bytes::Bytes::from(body))
        .await?;
    match xrpc_error(&response) {
        Some(error @ OAuthError::ScopeMissing { .. }) => Err(error),
        _ => Ok(response),
    }
}
