//! The route itself: the checks in order (origin, rate per address, body, proof, single use,
//! rate per key, device policy, audience, key), then the assertion; CORS on every answer to an
//! allowed origin, and the preflight.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use atoauth::protocol::crypto::{Clock, OsRandomness};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::device::DeviceRequest;
use super::proof::{self, Expected, ProofError};
use super::{Backend, ClientAssertionBackend, IAT_WINDOW_SECS};
use crate::guard::client_address;

/// The largest request body read.
pub(super) const MAX_BODY_BYTES: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertionAsk {
    aud: String,
    #[serde(default)]
    kid: Option<String>,
}

/// A refusal: status, OAuth-style error code, description.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

fn refuse(status: StatusCode, error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        status,
        error,
        description: description.into(),
    }
}

impl Backend {
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<String> {
        let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
        self.config
            .allowed_origins
            .iter()
            .find(|allowed| allowed.as_str() == origin)
            .cloned()
    }

    /// CORS and caching headers for an allowed origin (every answer to it, refusals too, so
    /// the page can read why).
    fn decorate(&self, response: &mut Response, origin: &str, now: i64) {
        let headers = response.headers_mut();
        if let Ok(origin) = HeaderValue::from_str(origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        // The browser client sends the app's cookies to its backend (for the optional cookie
        // check); the origin is named exactly, never `*`.
        set_all(
            headers,
            [
                (header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"),
                (header::ACCESS_CONTROL_EXPOSE_HEADERS, "DPoP-Nonce"),
                (header::VARY, "Origin"),
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
        );
        if self.config.require_nonce
            && let Ok(nonce) = HeaderValue::from_str(&self.nonces.current(now))
        {
            headers.insert("dpop-nonce", nonce);
        }
    }

    /// Every check, then the assertion.
    async fn answer(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<serde_json::Value, Refusal> {
        if let Some(peer) = peer {
            let address = client_address(peer, headers, &self.config.trusted_proxies);
            if !self.per_address.allow(address) {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "[U9] too many requests from this address",
                ));
            }
        }
        if body.len() > MAX_BODY_BYTES {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the body is too large",
            ));
        }
        let ask: AssertionAsk = serde_json::from_slice(body).map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body must be {{\"aud\": issuer, \"kid\"?: key id}}: {e}"),
            )
        })?;
        let expected = Expected {
            htu: &self.htu,
            now,
            iat_window: IAT_WINDOW_SECS,
            nonce_required: self.config.require_nonce,
        };
        let proof = proof::check(headers, &expected, |nonce| self.nonces.accepts(nonce, now))
            .map_err(|error| match error {
                ProofError::Missing => refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    "[U3] one DPoP proof, made with the browser's key, is required",
                ),
                ProofError::Invalid(reason) => {
                    refuse(StatusCode::BAD_REQUEST, "invalid_dpop_proof", reason)
                }
                ProofError::Nonce => refuse(
                    StatusCode::UNAUTHORIZED,
                    "use_dpop_nonce",
                    "[U3] use the DPoP-Nonce of this answer",
                ),
            })?;
        let mark = format!(
            "cab-proof:{}",
            atoauth::protocol::crypto::sha256_base64url(
                format!("{}.{}", proof.jkt, proof.jti).as_bytes()
            )
        );
        let ttl = Duration::from_secs(u64::try_from(2 * IAT_WINDOW_SECS).unwrap_or(120));
        match self.config.replay.first_use(&mark, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    "[U3] this proof was used before",
                ));
            }
            Err(error) => {
                tracing::error!(%error, "client assertion: the replay store failed");
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the replay store failed",
                ));
            }
        }
        let device = short(&proof.jkt);
        if !self.per_key.allow(proof.jkt.clone()) {
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "[U9] too many assertions for this key",
            ));
        }
        if self.config.denied_keys.contains(&proof.jkt).await {
            tracing::warn!(
                device,
                "client assertion refused: the device's key is denied"
            );
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "access_denied",
                "[U8] this device's key is denied",
            ));
        }
        if let Some(cookie) = &self.config.required_cookie
            && !has_cookie(headers, cookie)
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "access_denied",
                "[U8] the app's sign-in cookie is missing",
            ));
        }
        if let Some(check) = &self.config.device_check {
            let device_request = DeviceRequest {
                jkt: &proof.jkt,
                headers,
                audience: &ask.aud,
            };
            if let Err(reason) = check.check(&device_request).await {
                tracing::warn!(device, "client assertion refused by the app's device check");
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    "access_denied",
                    format!("[U8] {reason}"),
                ));
            }
        }
        let server = self.audiences.check(&ask.aud).await.map_err(|error| {
            refuse(
                StatusCode::BAD_REQUEST,
                "invalid_audience",
                format!("[U4] aud is not an authorization server: {error}"),
            )
        })?;
        let kid = match &ask.kid {
            Some(kid) if self.config.keyset.contains(kid) => kid.clone(),
            Some(kid) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "unknown_key",
                    format!("[J6] the key {kid:?} is no longer in the keyset"),
                ));
            }
            None => self.config.keyset.current_kid().to_owned(),
        };
        let assertion = self
            .config
            .keyset
            .assertion_for_dpop_key(
                &kid,
                &self.config.client_id,
                &server.issuer,
                &proof.jkt,
                &self.clock,
                &OsRandomness,
            )
            .ok()
            .flatten()
            .ok_or_else(|| {
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "signing failed",
                )
            })?;
        tracing::info!(device, kid, aud = %server.issuer, "client assertion issued");
        Ok(serde_json::json!({ "client_id": self.config.client_id, "client_assertion": assertion }))
    }
}

fn set_all<const N: usize>(
    headers: &mut HeaderMap,
    pairs: [(axum::http::HeaderName, &'static str); N],
) {
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The start of a thumbprint, enough to tell devices apart in logs.
fn short(jkt: &str) -> &str {
    jkt.get(..12).unwrap_or(jkt)
}

fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(key, value)| key == name && !value.is_empty())
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

pub(super) async fn assert(
    State(backend): State<ClientAssertionBackend>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let backend = &backend.inner;
    let Some(origin) = backend.allowed_origin(&headers) else {
        tracing::warn!("client assertion refused: the origin is not allowed");
        let mut response = json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({"error": "access_denied", "error_description": "[U1] this origin may not ask for client assertions"}),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    };
    let now = backend.clock.unix_time();
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let mut response = match backend.answer(peer, &headers, &body, now).await {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(refusal) => {
            if refusal.status != StatusCode::FORBIDDEN {
                tracing::warn!(error = refusal.error, reason = %refusal.description, "client assertion refused");
            }
            let mut response = json(
                refusal.status,
                &serde_json::json!({"error": refusal.error, "error_description": refusal.description}),
            );
            if refusal.status == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            response
        }
    };
    backend.decorate(&mut response, &origin, now);
    response
}

pub(super) async fn preflight(
    State(backend): State<ClientAssertionBackend>,
    headers: HeaderMap,
) -> Response {
    let backend = &backend.inner;
    let asks_post = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .is_some_and(|m| m == "POST");
    match backend.allowed_origin(&headers) {
        Some(origin) if asks_post => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            backend.decorate(&mut response, &origin, backend.clock.unix_time());
            set_all(
                response.headers_mut(),
                [
                    (header::ACCESS_CONTROL_ALLOW_METHODS, "POST"),
                    (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type, dpop"),
                    (header::ACCESS_CONTROL_MAX_AGE, "600"),
                ],
            );
            response
        }
        _ => StatusCode::FORBIDDEN.into_response(),
    }
}
