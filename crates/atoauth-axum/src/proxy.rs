//! The XRPC proxy: `GET`/`POST /xrpc/{nsid}` forwarded to the signed-in user's PDS with DPoP
//! (refreshing as needed). Bodies are buffered (capped, a bounded number at once, and only
//! after the Origin and the session are checked) so a nonce retry can replay them. Only a few
//! content headers are forwarded — never cookies or the browser's `Authorization` — and tokens
//! go only to the user's PDS. What comes back is made inert on our origin (`headers.rs`), and
//! top-level navigations are refused: a PDS serves files any of its accounts uploaded.

use atoauth::OAuthError;
use atoauth::syntax::Nsid;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::guard::same_origin;
use crate::headers::{is_navigation, make_inert};
use crate::{AtoauthWeb, Browser};

/// Request headers that mean something to a PDS and nothing about the browser.
const FORWARDED: [&str; 5] = [
    "content-type",
    "accept",
    "accept-language",
    "atproto-proxy",
    "atproto-accept-labelers",
];

/// Response headers passed back (then made inert: see `headers::make_inert`).
const RETURNED: [&str; 4] = [
    "content-type",
    "content-language",
    "content-disposition",
    "atproto-content-labelers",
];

fn json_error(status: StatusCode, error: &str, message: &str) -> Response {
    (status, Json(json!({"error": error, "message": message}))).into_response()
}

pub(crate) async fn forward(
    State(web): State<AtoauthWeb>,
    Path(nsid): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    mut browser: Browser,
    body: Body,
) -> Response {
    let Ok(nsid) = Nsid::new(&nsid) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "not an XRPC method name",
        );
    };
    // What a PDS stores is never a page of ours: a followed link to getBlob must not render an
    // uploaded HTML file on this origin (stored XSS).
    if is_navigation(&headers) {
        return json_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "XRPC responses are not pages; call this from a script",
        );
    }
    // Everything that can refuse a request runs before its body is read, so an anonymous or
    // cross-site upload costs nothing but its headers.
    // A procedure changes state: only our own pages may call it (CSRF).
    if method == Method::POST && !same_origin(&headers, &web.inner.public_origin) {
        return json_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "cross-site request refused",
        );
    }
    let Some(session) = browser.oauth_session().await else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequired",
            "sign in first",
        );
    };
    // A query has no body; a procedure's body is read now, a bounded number at once (the rest
    // are told to come back), within the size cap.
    let (body, _upload) = if method == Method::POST {
        let Ok(permit) = web.inner.uploads.try_acquire() else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                Json(json!({"error": "Busy", "message": "too many uploads at once; retry"})),
            )
                .into_response();
        };
        let Ok(body) = axum::body::to_bytes(body, web.inner.proxy_body_limit).await else {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                "the request body is larger than this proxy accepts",
            );
        };
        (body, Some(permit))
    } else {
        (axum::body::Bytes::new(), None)
    };
    let mut forwarded = HeaderMap::new();
    for name in FORWARDED {
        for value in headers.get_all(name) {
            forwarded.append(HeaderName::from_static(name), value.clone());
        }
    }
    let path = match query {
        Some(query) if !query.is_empty() => format!("/xrpc/{nsid}?{query}"),
        _ => format!("/xrpc/{nsid}"),
    };
    let started = std::time::Instant::now();
    let sent = session.send(method, &path, forwarded, body).await;
    crate::metrics::upstream_time("xrpc", started);
    match sent {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let mut reply = (parts.status, body).into_response();
            for name in RETURNED {
                if let Some(value) = parts.headers.get(name) {
                    reply
                        .headers_mut()
                        .insert(HeaderName::from_static(name), value.clone());
                }
            }
            make_inert(reply.headers_mut());
            reply
        }
        Err(error) if error.requires_sign_in() => json_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequired",
            &error.to_string(),
        ),
        Err(OAuthError::InvalidInput { reason, .. }) => {
            json_error(StatusCode::BAD_REQUEST, "InvalidRequest", &reason)
        }
        Err(error) => {
            tracing::warn!(%error, "the PDS could not be reached");
            json_error(
                StatusCode::BAD_GATEWAY,
                "UpstreamFailure",
                &error.to_string(),
            )
        }
    }
}
