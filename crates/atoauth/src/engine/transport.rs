//! Sending one request with DPoP (I1, I5–I10): a new proof per attempt, the nonce learnt from
//! every response, exactly one retry on a nonce error — AS `400 {"error":"use_dpop_nonce"}`,
//! PDS `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"` (I7, T1: a 401 from the AS with
//! that error is accepted too).

use url::Url;

use crate::crypto::Randomness;
use crate::dpop::{DpopKey, NonceCache, ProofTarget};
use crate::engine::skew::SkewedClock;
use crate::error::OAuthError;
use crate::http::origin_of;
use crate::http::{FetchLimits, HttpClient, Request, Response, display_url};

/// Which kind of server a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Server {
    Authorization,
    Resource,
}

/// What a DPoP request needs; borrowed from the client and the session.
#[derive(Clone, Copy)]
pub(crate) struct DpopSender<'a> {
    pub(crate) http: &'a dyn HttpClient,
    pub(crate) key: &'a DpopKey,
    pub(crate) nonces: &'a NonceCache,
    pub(crate) clock: &'a SkewedClock,
    pub(crate) random: &'a dyn Randomness,
    /// I8: refuse the authorization server's responses without a `DPoP-Nonce` header. A
    /// PDS's are accepted: the official PDS leaves the header out where authentication is
    /// optional (`getRecord`, `listRecords`, `describeRepo`, …), even for a DPoP request.
    pub(crate) require_nonce: bool,
}

/// A request that can be rebuilt for the retry (I9: bodies are buffered).
pub(crate) struct Replayable {
    pub(crate) method: http::Method,
    pub(crate) url: Url,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: bytes::Bytes,
    pub(crate) limits: FetchLimits,
}

impl Replayable {
    pub(crate) fn form(url: &Url, params: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish()
            .into_bytes();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        Self {
            method: http::Method::POST,
            url: url.clone(),
            headers,
            body: body.into(),
            limits: FetchLimits::METADATA,
        }
    }
}

impl DpopSender<'_> {
    /// Sends `request`, retrying once on a nonce error.
    pub(crate) async fn send(
        &self,
        server: Server,
        request: &Replayable,
        access_token: Option<&str>,
    ) -> Result<Response, OAuthError> {
        let origin = origin_of(&request.url);
        let mut retried = false;
        loop {
            let sent_nonce = self.nonces.get(&origin);
            let proof = self
                .key
                .proof_async(
                    ProofTarget {
                        method: request.method.as_str(),
                        url: &request.url,
                        nonce: sent_nonce.as_deref(),
                        access_token,
                    },
                    &self.clock.at(&origin),
                    self.random,
                )
                .await?;
            let response = self
                .http
                .send(build(request, &proof, access_token)?)
                .await
                .map_err(|source| OAuthError::Http {
                    url: display(&request.url),
                    source,
                })?;
            let received = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty());
            match received {
                Some(nonce) => {
                    self.nonces.update(&origin, nonce);
                }
                None if self.require_nonce && server == Server::Authorization => {
                    return Err(OAuthError::InvalidResponse {
                        endpoint: display(&request.url),
                        rule: "I8",
                        reason: "the response to a DPoP request has no DPoP-Nonce header"
                            .to_owned(),
                    });
                }
                None => {}
            }
            let clock_moved = self.clock.observe(&origin, response.headers());
            let fresh_nonce = received.is_some_and(|n| Some(n) != sent_nonce.as_deref());
            // One retry (I7): for a new nonce, or for a proof refused because our clock was off
            // and the `Date` header just taught us by how much.
            let retry = match dpop_error(server, &response).as_deref() {
                Some("use_dpop_nonce") => fresh_nonce || clock_moved,
                Some("invalid_dpop_proof") => clock_moved,
                _ => false,
            };
            if !retried && retry {
                retried = true;
                continue;
            }
            return Ok(response);
        }
    }
}

fn build(
    request: &Replayable,
    proof: &str,
    access_token: Option<&str>,
) -> Result<Request, OAuthError> {
    let mut built = http::Request::builder()
        .method(request.method.clone())
        .uri(request.url.as_str())
        .body(request.body.clone())
        .map_err(|e| OAuthError::InvalidInput {
            input: display(&request.url),
            reason: e.to_string(),
        })?;
    built.headers_mut().extend(request.headers.clone());
    let mut dpop = http::HeaderValue::from_str(proof)
        .map_err(|e| OAuthError::Internal(format!("a DPoP proof is not a header value: {e}")))?;
    dpop.set_sensitive(true);
    built.headers_mut().insert("dpop", dpop);
    if let Some(token) = access_token {
        // I10: `DPoP <token>`, never `Bearer`.
        let mut authorization =
            http::HeaderValue::from_str(&format!("DPoP {token}")).map_err(|_| {
                OAuthError::Internal("the access token is not a valid header value".to_owned())
            })?;
        authorization.set_sensitive(true);
        built
            .headers_mut()
            .insert(http::header::AUTHORIZATION, authorization);
    }
    request.limits.apply(&mut built);
    Ok(built)
}

/// The DPoP error of a refused request: the AS's JSON `error` (400, or 401 per T1), or the
/// PDS's `WWW-Authenticate: DPoP error="…"` (401).
fn dpop_error(server: Server, response: &Response) -> Option<String> {
    let status = response.status().as_u16();
    match server {
        Server::Authorization if status == 400 || status == 401 => {
            serde_json::from_slice::<serde_json::Value>(response.body())
                .ok()?
                .get("error")?
                .as_str()
                .filter(|e| *e == "use_dpop_nonce" || *e == "invalid_dpop_proof")
                .map(str::to_owned)
        }
        Server::Resource if status == 401 => response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                ["use_dpop_nonce", "invalid_dpop_proof"]
                    .into_iter()
                    .find(|e| v.contains(&format!("error=\"{e}\"")))
            })
            .map(str::to_owned),
        _ => None,
    }
}

pub(crate) fn display(url: &Url) -> String {
    match url.as_str().parse::<http::Uri>() {
        Ok(uri) => display_url(&uri),
        Err(_) => url.origin().ascii_serialization(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::testing::{FixedClock, SeededRandomness};

    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

    fn server(
        replies: Vec<(
            u16,
            Option<&'static str>,
            &'static str,
            Option<&'static str>,
        )>,
    ) -> (impl HttpClient, Seen) {
        let seen: Seen = Arc::default();
        let log = Arc::clone(&seen);
        let replies = Arc::new(Mutex::new(replies));
        let client = move |request: Request| {
            let proof = request.headers()["dpop"].to_str().unwrap().to_owned();
            let claims = proof.split('.').nth(1).unwrap().to_owned();
            let claims: serde_json::Value = serde_json::from_slice(
                &<base64ct::Base64UrlUnpadded as base64ct::Encoding>::decode_vec(&claims).unwrap(),
            )
            .unwrap();
            log.lock().unwrap().push((
                claims["jti"].as_str().unwrap().to_owned(),
                claims["nonce"].as_str().map(str::to_owned),
            ));
            let (status, nonce, body, www) = replies.lock().unwrap().remove(0);
            async move {
                let mut response = http::Response::builder().status(status);
                if let Some(nonce) = nonce {
                    response = response.header("DPoP-Nonce", nonce);
                }
                if let Some(www) = www {
                    response = response.header("WWW-Authenticate", www);
                }
                Ok(response.body(body.as_bytes().to_vec()).unwrap())
            }
        };
        (client, seen)
    }

    async fn run(
        server_kind: Server,
        http: &dyn HttpClient,
        require_nonce: bool,
    ) -> (Result<Response, OAuthError>, NonceCache) {
        let random = SeededRandomness::new(3);
        let key = DpopKey::generate(&random).unwrap();
        let nonces = NonceCache::default();
        let clock = SkewedClock::new(std::sync::Arc::new(FixedClock(10)), true);
        let sender = DpopSender {
            http,
            key: &key,
            nonces: &nonces,
            clock: &clock,
            random: &random,
            require_nonce,
        };
        let url = Url::parse("https://as.example/oauth/par").unwrap();
        let result = sender
            .send(server_kind, &Replayable::form(&url, &[("a", "b")]), None)
            .await;
        (result, nonces)
    }

    #[tokio::test]
    async fn i7_as_400_use_dpop_nonce_is_retried_once_with_a_new_proof() {
        let (http, seen) = server(vec![
            (400, Some("n1"), r#"{"error":"use_dpop_nonce"}"#, None),
            (201, Some("n2"), r#"{"request_uri":"urn:x"}"#, None),
        ]);
        let (result, nonces) = run(Server::Authorization, &http, true).await;
        assert_eq!(result.unwrap().status(), 201);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].1, None);
        assert_eq!(seen[1].1.as_deref(), Some("n1"));
        assert_ne!(seen[0].0, seen[1].0, "I5: new jti on the retry");
        assert_eq!(
            nonces.get("https://as.example").as_deref(),
            Some("n2"),
            "I6"
        );
    }

    #[tokio::test]
    async fn a_nonce_retry_replays_a_large_body_without_copying_it() {
        let buffers: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
        let log = Arc::clone(&buffers);
        let replies = Arc::new(Mutex::new(vec![
            (401, r#"{"error":"use_dpop_nonce"}"#),
            (200, "{}"),
        ]));
        let http = move |request: Request| {
            let body = request.body();
            log.lock()
                .unwrap()
                .push((body.as_ptr() as usize, body.len()));
            let (status, body) = replies.lock().unwrap().remove(0);
            async move {
                Ok(http::Response::builder()
                    .status(status)
                    .header("DPoP-Nonce", "n1")
                    .header("WWW-Authenticate", r#"DPoP error="use_dpop_nonce""#)
                    .body(body.as_bytes().to_vec())
                    .unwrap())
            }
        };
        let random = SeededRandomness::new(3);
        let key = DpopKey::generate(&random).unwrap();
        let nonces = NonceCache::default();
        let clock = SkewedClock::new(std::sync::Arc::new(FixedClock(10)), true);
        let sender = DpopSender {
            http: &http,
            key: &key,
            nonces: &nonces,
            clock: &clock,
            random: &random,
            require_nonce: true,
        };
        let upload = bytes::Bytes::from(vec![7u8; 8 * 1024 * 1024]);
        let request = Replayable {
            method: http::Method::POST,
            url: Url::parse("https://pds.example/xrpc/com.atproto.repo.uploadBlob").unwrap(),
            headers: http::HeaderMap::new(),
            body: upload.clone(),
            limits: FetchLimits::default(),
        };
        let response = sender
            .send(Server::Resource, &request, Some("token"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let buffers = buffers.lock().unwrap();
        assert_eq!(buffers.len(), 2, "one nonce retry");
        let original = (upload.as_ptr() as usize, upload.len());
        assert_eq!(
            buffers[0], original,
            "the first send shares the caller's buffer"
        );
        assert_eq!(buffers[1], original, "the retry shares it too");
    }

    #[tokio::test]
    async fn i7_only_one_retry() {
        let (http, seen) = server(vec![
            (400, Some("n1"), r#"{"error":"use_dpop_nonce"}"#, None),
            (400, Some("n2"), r#"{"error":"use_dpop_nonce"}"#, None),
        ]);
        let (result, _) = run(Server::Authorization, &http, true).await;
        assert_eq!(result.unwrap().status(), 400);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn i7_resource_server_401_with_www_authenticate() {
        let (http, seen) = server(vec![
            (
                401,
                Some("p1"),
                "",
                Some(
                    r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
                ),
            ),
            (200, Some("p1"), "{}", None),
        ]);
        let (result, _) = run(Server::Resource, &http, true).await;
        assert_eq!(result.unwrap().status(), 200);
        assert_eq!(seen.lock().unwrap().len(), 2);
        // A 401 without the nonce challenge is not retried.
        let (http, seen) = server(vec![(
            401,
            Some("p1"),
            "",
            Some(r#"DPoP error="invalid_token""#),
        )]);
        let (result, _) = run(Server::Resource, &http, true).await;
        assert_eq!(result.unwrap().status(), 401);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn i8_a_pds_answer_without_a_nonce_is_accepted_and_keeps_the_known_nonce() {
        let (http, _) = server(vec![(200, None, "{}", None)]);
        let (result, nonces) = run(Server::Resource, &http, true).await;
        assert_eq!(result.unwrap().status(), 200);
        assert_eq!(nonces.get("https://as.example"), None);
    }

    #[tokio::test]
    async fn i8_missing_nonce_header_is_refused_in_strict_mode_only() {
        let (http, _) = server(vec![(200, None, "{}", None)]);
        let (result, _) = run(Server::Authorization, &http, true).await;
        assert!(matches!(
            result,
            Err(OAuthError::InvalidResponse { rule: "I8", .. })
        ));
        let (http, _) = server(vec![(200, None, "{}", None)]);
        let (result, _) = run(Server::Authorization, &http, false).await;
        assert_eq!(result.unwrap().status(), 200);
    }
}
