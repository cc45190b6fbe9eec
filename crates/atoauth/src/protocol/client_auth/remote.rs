//! Client assertions from somewhere else: a [`ClientAssertionSource`] signs or fetches the
//! `private_key_jwt` assertion for each request to the authorization server. The client's own
//! [`Keyset`](super::Keyset) is the usual source; [`RemoteClientAssertions`] asks a
//! client-assertion backend (section U of `docs/rules.md`), so that an app whose OAuth client runs
//! in a browser is a confidential client while its keys stay on a server.
//!
//! The backend protocol, as `atoauth-axum` serves it at `POST /oauth/client-assertion`:
//! - the request carries a DPoP proof made with the session's own DPoP key for that endpoint
//!   (`htm` POST, `htu` the endpoint) and the JSON body `{"aud": "<issuer>", "kid": "<kid>"}`
//!   (`kid` only once the session is bound to a key, J6);
//! - `200 {"client_id", "client_assertion"}`: the assertion is bound to the proof's key
//!   (`cnf.jkt`) and lives at most 60 s (U5);
//! - `401` with `DPoP-Nonce` and `{"error": "use_dpop_nonce"}`: the same request again with that
//!   nonce (once);
//! - `403`: this device may not have assertions (a denied key, a missing sign-in cookie): the
//!   session cannot be refreshed any more;
//! - `400 {"error": "unknown_key"}`: the backend no longer holds the session's key (J6).

use std::sync::{Arc, Mutex};

use base64ct::{Base64UrlUnpadded, Encoding};
use bytes::Bytes;
use serde::Deserialize;
use url::Url;

use crate::crypto::{Clock, Randomness};
use crate::dpop::{DpopKey, ProofTarget};
use crate::http::{HttpClient, Response};
use crate::platform::{BoxFuture, MaybeSend, MaybeSync};

/// What one assertion is for.
#[derive(Clone, Copy, Debug)]
pub struct AssertionRequest<'a> {
    /// The client's `client_id` (`iss` and `sub`).
    pub client_id: &'a str,
    /// The authorization server's issuer (`aud`).
    pub audience: &'a str,
    /// The key the session is bound to (J6); `None` for a new authorization, which takes the
    /// source's current key.
    pub kid: Option<&'a str>,
    /// The DPoP key of the session or authorization the request is for.
    pub dpop_key: &'a DpopKey,
    /// The client's clock and randomness, for the proofs a remote source makes.
    pub clock: &'a dyn Clock,
    /// See `clock`.
    pub random: &'a dyn Randomness,
}

/// A signed assertion and the key that signed it.
#[derive(Clone)]
pub struct SignedAssertion {
    /// The compact JWT.
    pub token: String,
    /// Its header's `kid`: the session stays bound to it (J6).
    pub kid: String,
}

impl std::fmt::Debug for SignedAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedAssertion")
            .field("token", &"<redacted>")
            .field("kid", &self.kid)
            .finish()
    }
}

/// Why no assertion could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// The source no longer holds the key the session is bound to (J6): the session is over.
    #[error("[J6] the client key {kid:?} is no longer held by the client-assertion source")]
    KeyRemoved {
        /// The key id.
        kid: String,
    },
    /// The backend refuses this device (a denied key, no sign-in cookie): the session cannot be
    /// refreshed any more.
    #[error("[U8] the client-assertion backend refuses this device (HTTP {status}): {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The backend's description.
        reason: String,
    },
    /// The backend could not be reached or answered with a temporary failure; nothing was lost.
    #[error("the client-assertion backend is unavailable: {0}")]
    Unavailable(String),
    /// The backend's answer is malformed, for another client, or refuses the request itself
    /// (an invalid proof): a configuration problem.
    #[error("[U6] unusable answer from the client-assertion backend: {0}")]
    Invalid(String),
}

/// Where a confidential client's assertions come from, when not from its own [`Keyset`]
/// (`OAuthClientBuilder::client_assertions`).
///
/// [`Keyset`]: super::Keyset
pub trait ClientAssertionSource: MaybeSend + MaybeSync + std::fmt::Debug {
    /// A fresh assertion for `request` (J4, J5).
    fn assertion<'a>(
        &'a self,
        request: AssertionRequest<'a>,
    ) -> BoxFuture<'a, Result<SignedAssertion, AssertionError>>;
}

/// Assertions fetched just in time from a client-assertion backend, over `http`.
pub struct RemoteClientAssertions {
    endpoint: Url,
    http: Arc<dyn HttpClient>,
    /// The backend's latest DPoP nonce.
    nonce: Mutex<Option<String>>,
}

impl std::fmt::Debug for RemoteClientAssertions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClientAssertions")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer {
    client_id: String,
    client_assertion: String,
}

#[derive(Deserialize, Default)]
struct ErrorAnswer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl RemoteClientAssertions {
    /// Assertions from the backend at `endpoint` (e.g. `https://app.example/oauth/client-assertion`).
    #[must_use]
    pub fn new(endpoint: Url, http: Arc<dyn HttpClient>) -> Self {
        Self {
            endpoint,
            http,
            nonce: Mutex::new(None),
        }
    }

    fn nonce(&self) -> Option<String> {
        self.nonce.lock().ok().and_then(|nonce| nonce.clone())
    }

    fn learn_nonce(&self, response: &Response) -> bool {
        let Some(fresh) = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        match self.nonce.lock() {
            Ok(mut nonce) if nonce.as_deref() != Some(fresh) => {
                *nonce = Some(fresh.to_owned());
                true
            }
            _ => false,
        }
    }

    async fn send(&self, request: &AssertionRequest<'_>) -> Result<Response, AssertionError> {
        let proof = request
            .dpop_key
            .proof_async(
                ProofTarget {
                    method: "POST",
                    url: &self.endpoint,
                    nonce: self.nonce().as_deref(),
                    access_token: None,
                },
                request.clock,
                request.random,
            )
            .await
            .map_err(|e| AssertionError::Invalid(format!("cannot sign the DPoP proof: {e}")))?;
        let mut body = serde_json::json!({ "aud": request.audience });
        if let Some(kid) = request.kid {
            body["kid"] = serde_json::Value::from(kid);
        }
        let http_request = http::Request::post(self.endpoint.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("dpop", proof)
            .body(Bytes::from(body.to_string()))
            .map_err(|e| AssertionError::Invalid(e.to_string()))?;
        self.http
            .send(http_request)
            .await
            .map_err(|e| AssertionError::Unavailable(e.to_string()))
    }

    async fn fetch(
        &self,
        request: AssertionRequest<'_>,
    ) -> Result<SignedAssertion, AssertionError> {
        let mut response = self.send(&request).await?;
        if response.status() == http::StatusCode::UNAUTHORIZED && self.learn_nonce(&response) {
            response = self.send(&request).await?;
        } else {
            self.learn_nonce(&response);
        }
        let status = response.status();
        if !status.is_success() {
            return Err(refusal(status, &response, request.kid));
        }
        let answer: Answer = serde_json::from_slice(response.body()).map_err(|e| {
            AssertionError::Invalid(format!("not {{client_id, client_assertion}}: {e}"))
        })?;
        if answer.client_id != request.client_id {
            return Err(AssertionError::Invalid(format!(
                "the backend signs for client {:?}, not {:?}",
                answer.client_id, request.client_id
            )));
        }
        let kid = check_assertion(&answer.client_assertion, &request)?;
        Ok(SignedAssertion {
            token: answer.client_assertion,
            kid,
        })
    }
}

impl ClientAssertionSource for RemoteClientAssertions {
    fn assertion<'a>(
        &'a self,
        request: AssertionRequest<'a>,
    ) -> BoxFuture<'a, Result<SignedAssertion, AssertionError>> {
        Box::pin(self.fetch(request))
    }
}

fn refusal(status: http::StatusCode, response: &Response, kid: Option<&str>) -> AssertionError {
    let answer: ErrorAnswer = serde_json::from_slice(response.body()).unwrap_or_default();
    let reason = answer
        .error_description
        .unwrap_or_else(|| answer.error.clone());
    match status.as_u16() {
        403 => AssertionError::Refused {
            status: 403,
            reason,
        },
        400 if answer.error == "unknown_key" => AssertionError::KeyRemoved {
            kid: kid.unwrap_or_default().to_owned(),
        },
        429 | 500..=599 => AssertionError::Unavailable(format!("HTTP {status}: {reason}")),
        _ => AssertionError::Invalid(format!("HTTP {status}: {reason}")),
    }
}

/// The assertion is for this client, this server and this DPoP key, signed by the asked key;
/// returns its `kid`. A backend answering otherwise is misconfigured, and the server would
/// refuse the assertion anyway, so this says why before anything is sent.
fn check_assertion(token: &str, request: &AssertionRequest<'_>) -> Result<String, AssertionError> {
    let part = |index: usize| -> Result<serde_json::Value, AssertionError> {
        token
            .split('.')
            .nth(index)
            .and_then(|p| Base64UrlUnpadded::decode_vec(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| AssertionError::Invalid("the assertion is not a JWT".to_owned()))
    };
    let (header, claims) = (part(0)?, part(1)?);
    let kid = header["kid"]
        .as_str()
        .ok_or_else(|| AssertionError::Invalid("[J3] the assertion names no kid".to_owned()))?;
    if let Some(wanted) = request.kid
        && wanted != kid
    {
        return Err(AssertionError::Invalid(format!(
            "[J6] signed by {kid:?}, not by the session's key {wanted:?}"
        )));
    }
    let jkt = request.dpop_key.public_jwk().thumbprint();
    let checks = [
        (claims["aud"].as_str() == Some(request.audience), "aud"),
        (claims["iss"].as_str() == Some(request.client_id), "iss"),
        (claims["cnf"]["jkt"].as_str() == Some(&jkt), "cnf.jkt"),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, claim)) => Err(AssertionError::Invalid(format!(
            "[U5] the assertion's {claim} is not this request's"
        ))),
        None => Ok(kid.to_owned()),
    }
}

#[cfg(test)]
mod tests;
