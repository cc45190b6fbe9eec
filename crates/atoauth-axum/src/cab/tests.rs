//! The route's checks one by one, in process: discovery is answered by a closure (no network),
//! proofs are made with the SDK's own DPoP keys. The same refusals against the official PDS
//! and a real browser are in `crates/atoauth-browser/tests/client_assertion.rs`.
#![allow(clippy::unwrap_used)]

use atoauth::Keyset;
use atoauth::http::{HttpError, Request as HttpRequest, Response as HttpResponse};
use atoauth::protocol::crypto::Es256Key;
use atoauth::protocol::crypto::{OsRandomness, SystemClock};
use atoauth::protocol::dpop::{DpopKey, ProofTarget};
use atoauth::testing::SeededRandomness;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64ct::{Base64UrlUnpadded, Encoding};
use tower::ServiceExt;

use super::*;

const ORIGIN: &str = "https://app.example";
const CLIENT: &str = "https://app.example/client-metadata.json";
const ISSUER: &str = "https://pds.example";

fn keys() -> Keyset {
    Keyset::new([
        Es256Key::generate(&SeededRandomness::new(1))
            .unwrap()
            .with_kid("now"),
        Es256Key::generate(&SeededRandomness::new(2))
            .unwrap()
            .with_kid("before"),
    ])
    .unwrap()
}

/// Only `https://pds.example` is an authorization server.
fn discovery_http() -> Arc<dyn HttpClient> {
    counted_discovery_http(Arc::default())
}

/// As [`discovery_http`], counting the fetches in `fetches`.
fn counted_discovery_http(fetches: Arc<std::sync::atomic::AtomicUsize>) -> Arc<dyn HttpClient> {
    Arc::new(move |request: HttpRequest| {
        fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let uri = request.uri().to_string();
            let response = if uri == format!("{ISSUER}/.well-known/oauth-authorization-server") {
                let document = atoauth_testkit::fixtures::authorization_server_metadata(ISSUER);
                http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(document.to_string().into_bytes())
            } else {
                http::Response::builder().status(404).body(Vec::new())
            };
            Ok::<HttpResponse, HttpError>(response.unwrap())
        }
    })
}

fn backend(change: impl FnOnce(&mut CabConfig)) -> ClientAssertionBackend {
    let mut config = CabConfig::new(CLIENT, keys(), ORIGIN.parse().unwrap());
    config.http = Some(discovery_http());
    config.nonce_secret = Some(b"test".to_vec());
    change(&mut config);
    ClientAssertionBackend::new(config).unwrap()
}

fn proof(key: &DpopKey, url: &str, nonce: Option<&str>) -> String {
    key.proof(
        ProofTarget {
            method: "POST",
            url: &url.parse().unwrap(),
            nonce,
            access_token: None,
        },
        &SystemClock,
        &OsRandomness,
    )
    .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: serde_json::Value,
}

async fn ask(
    backend: &ClientAssertionBackend,
    origin: Option<&str>,
    dpop: Option<&str>,
    body: serde_json::Value,
) -> Answer {
    let mut request = Request::post(PATH).header("content-type", "application/json");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(dpop) = dpop {
        request = request.header("dpop", dpop);
    }
    send(backend, request.body(Body::from(body.to_string())).unwrap()).await
}

async fn send(backend: &ClientAssertionBackend, request: Request<Body>) -> Answer {
    let response = backend.router::<()>().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

/// The current nonce, as a first request learns it.
async fn nonce(backend: &ClientAssertionBackend, key: &DpopKey) -> String {
    let first = ask(
        backend,
        Some(ORIGIN),
        Some(&proof(key, &endpoint(), None)),
        serde_json::json!({"aud": ISSUER}),
    )
    .await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED, "{}", first.body);
    assert_eq!(first.body["error"], "use_dpop_nonce");
    first.headers["dpop-nonce"].to_str().unwrap().to_owned()
}

fn endpoint() -> String {
    format!("{ORIGIN}{PATH}")
}

fn claims(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
}

#[tokio::test]
async fn u5_an_assertion_is_bound_to_the_proof_key_and_short_lived() {
    let backend = backend(|_| {});
    let key = DpopKey::generate(&OsRandomness).unwrap();
    let nonce = nonce(&backend, &key).await;
    let good = ask(
        &backend,
        Some(ORIGIN),
        Some(&proof(&key, &endpoint(), Some(&nonce))),
        serde_json::json!({"aud": ISSUER}),
    )
    .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    assert_eq!(good.headers["cache-control"], "no-store");
    assert_eq!(good.headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(good.body["client_id"], CLIENT);
    let token = good.body["client_assertion"].as_str().unwrap();
    let claims = claims(token);
    assert_eq!(claims["cnf"]["jkt"], key.public_jwk().thumbprint());
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["iss"], CLIENT);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 60);
    let again = ask(
        &backend,
        Some(ORIGIN),
        Some(&proof(&key, &endpoint(), Some(&nonce))),
        serde_json::json!({"aud": ISSUER, "kid": "before"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    let token_again = again.body["client_assertion"].as_str().unwrap();
    assert_ne!(
        claims["jti"],
        self::claims(token_again)["jti"],
        "J5: a fresh jti"
    );
    let header: serde_json::Value = serde_json::from_slice(
        &Base64UrlUnpadded::decode_vec(token_again.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], "before", "J6: the session's key signs");
}

#[tokio::test]
async fn each_check_refuses_on_its_own() {
    let backend = backend(|_| {});
    let key = DpopKey::generate(&OsRandomness).unwrap();
    let nonce = nonce(&backend, &key).await;
    let aud = serde_json::json!({"aud": ISSUER});
    let fresh = || proof(&key, &endpoint(), Some(&nonce));

    let other_origin = ask(
        &backend,
        Some("https://evil.example"),
        Some(&fresh()),
        aud.clone(),
    )
    .await;
    assert_eq!(other_origin.status, StatusCode::FORBIDDEN);
    assert!(
        other_origin
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        ask(&backend, None, Some(&fresh()), aud.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let missing = ask(&backend, Some(ORIGIN), None, aud.clone()).await;
    assert_eq!(
        (missing.status, missing.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof"))
    );

    let used = fresh();
    assert_eq!(
        ask(&backend, Some(ORIGIN), Some(&used), aud.clone())
            .await
            .status,
        StatusCode::OK
    );
    let replayed = ask(&backend, Some(ORIGIN), Some(&used), aud.clone()).await;
    assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
    assert!(
        replayed.body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before")
    );

    let elsewhere = proof(&key, "https://app.example/other", Some(&nonce));
    let wrong_htu = ask(&backend, Some(ORIGIN), Some(&elsewhere), aud.clone()).await;
    assert!(
        wrong_htu.body["error_description"]
            .as_str()
            .unwrap()
            .contains("htu")
    );

    let stale = ask(
        &backend,
        Some(ORIGIN),
        Some(&proof(&key, &endpoint(), Some("old"))),
        aud.clone(),
    )
    .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);

    let not_a_server = ask(
        &backend,
        Some(ORIGIN),
        Some(&fresh()),
        serde_json::json!({"aud": "https://evil.example"}),
    )
    .await;
    assert_eq!(
        (not_a_server.status, not_a_server.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_audience"))
    );

    let gone = ask(
        &backend,
        Some(ORIGIN),
        Some(&fresh()),
        serde_json::json!({"aud": ISSUER, "kid": "gone"}),
    )
    .await;
    assert_eq!(gone.body["error"], "unknown_key");

    let huge = ask(
        &backend,
        Some(ORIGIN),
        Some(&fresh()),
        serde_json::json!({"aud": "x".repeat(8000)}),
    )
    .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);

    let extra = ask(
        &backend,
        Some(ORIGIN),
        Some(&fresh()),
        serde_json::json!({"aud": ISSUER, "sub": "x"}),
    )
    .await;
    assert_eq!(extra.body["error"], "invalid_request");

    backend.denied_keys().deny(key.public_jwk().thumbprint());
    let denied = ask(&backend, Some(ORIGIN), Some(&fresh()), aud.clone()).await;
    assert_eq!(
        (denied.status, denied.body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("access_denied"))
    );
    let other_device = DpopKey::generate(&OsRandomness).unwrap();
    let allowed = ask(
        &backend,
        Some(ORIGIN),
        Some(&proof(&other_device, &endpoint(), Some(&nonce))),
        aud,
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK, "other devices go on");
}

#[tokio::test]
async fn u8_u9_the_cookie_check_and_the_rate_per_key() {
    let backend = backend(|config| {
        config.required_cookie = Some("app_session".to_owned());
        config.require_nonce = false;
        config.per_key_per_minute = 2;
    });
    let key = DpopKey::generate(&OsRandomness).unwrap();
    let aud = serde_json::json!({"aud": ISSUER});
    let no_cookie = ask(
        &backend,
        Some(ORIGIN),
        Some(&proof(&key, &endpoint(), None)),
        aud.clone(),
    )
    .await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert_eq!(
        no_cookie.headers["access-control-allow-credentials"],
        "true"
    );
    let with_cookie = |proof: String| {
        Request::post(PATH)
            .header("origin", ORIGIN)
            .header("cookie", "theme=dark; app_session=abc")
            .header("dpop", proof)
            .body(Body::from(aud.to_string()))
            .unwrap()
    };
    let ok = backend
        .router::<()>()
        .oneshot(with_cookie(proof(&key, &endpoint(), None)))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let over = backend
        .router::<()>()
        .oneshot(with_cookie(proof(&key, &endpoint(), None)))
        .await
        .unwrap();
    assert_eq!(
        over.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the refused ask counted: 2 per key"
    );
    assert_eq!(over.headers()["retry-after"], "60");
    let other = DpopKey::generate(&OsRandomness).unwrap();
    let ok = backend
        .router::<()>()
        .oneshot(with_cookie(proof(&other, &endpoint(), None)))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn u1_the_preflight_answers_allowed_origins_only() {
    let backend = backend(|_| {});
    let preflight = |origin: &str| {
        Request::options(PATH)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap()
    };
    let ok = backend
        .router::<()>()
        .oneshot(preflight(ORIGIN))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        ok.headers()["access-control-allow-headers"],
        "content-type, dpop"
    );
    let refused = backend
        .router::<()>()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[test]
fn u1_origins_must_be_bare() {
    let mut config = CabConfig::new(CLIENT, keys(), ORIGIN.parse().unwrap());
    config.allowed_origins = vec!["https://app.example/".to_owned()];
    assert!(matches!(
        ClientAssertionBackend::new(config),
        Err(CabConfigError::Origin(_))
    ));
}

#[tokio::test]
async fn the_web_builder_mounts_the_route_beside_the_bff_routes() {
    let mut config = CabConfig::new(CLIENT, keys(), ORIGIN.parse().unwrap());
    config.http = Some(discovery_http());
    let web = crate::AtoauthWeb::loopback_dev(8080, "atproto")
        .client_assertion_backend(config)
        .build()
        .unwrap();
    let key = DpopKey::generate(&OsRandomness).unwrap();
    let request = Request::post(PATH)
        .header("origin", ORIGIN)
        .header("dpop", proof(&key, &endpoint(), None))
        .body(Body::from(serde_json::json!({"aud": ISSUER}).to_string()))
        .unwrap();
    let response = web.router::<()>().oneshot(request).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "asks for its nonce"
    );
    assert!(response.headers().contains_key("dpop-nonce"));

    let mut bad = CabConfig::new(CLIENT, keys(), ORIGIN.parse().unwrap());
    bad.allowed_origins.clear();
    assert!(matches!(
        crate::AtoauthWeb::loopback_dev(8080, "atproto")
            .client_assertion_backend(bad)
            .build(),
        Err(crate::WebConfigError::ClientAssertionBackend(
            CabConfigError::NoOrigin
        ))
    ));
}

#[tokio::test]
async fn u4_a_refused_audience_is_remembered_and_an_accepted_one_cached() {
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&fetches);
    let backend = backend(move |config| {
        config.http = Some(counted_discovery_http(counted));
        config.require_nonce = false;
    });
    let key = DpopKey::generate(&OsRandomness).unwrap();
    let count = || fetches.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        let bad = ask(
            &backend,
            Some(ORIGIN),
            Some(&proof(&key, &endpoint(), None)),
            serde_json::json!({"aud": "https://evil.example"}),
        )
        .await;
        assert_eq!(bad.body["error"], "invalid_audience");
    }
    assert_eq!(count(), 1, "one fetch for three asks with the same bad aud");
    for _ in 0..3 {
        let good = ask(
            &backend,
            Some(ORIGIN),
            Some(&proof(&key, &endpoint(), None)),
            serde_json::json!({"aud": ISSUER}),
        )
        .await;
        assert_eq!(good.status, StatusCode::OK);
    }
    assert_eq!(count(), 2, "and one for the authorization server");
}

/// Lets through only browsers whose `app_session` cookie is `valid`, noting whom it was asked
/// about.
#[derive(Debug, Default)]
struct ValidSessionOnly {
    asked: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl DeviceCheck for ValidSessionOnly {
    async fn check(&self, device: &DeviceRequest<'_>) -> Result<(), String> {
        self.asked
            .lock()
            .unwrap()
            .push((device.jkt.to_owned(), device.audience.to_owned()));
        let cookies = device.headers.get("cookie").and_then(|v| v.to_str().ok());
        match cookies {
            Some(c) if c.split("; ").any(|c| c == "app_session=valid") => Ok(()),
            _ => Err("sign in to the app again".to_owned()),
        }
    }
}

#[tokio::test]
async fn u8_the_apps_device_check_sees_the_proven_key_and_decides() {
    let check = Arc::new(ValidSessionOnly::default());
    let backend = backend(|config| {
        config.required_cookie = Some("app_session".to_owned());
        config.device_check = Some(check.clone());
        config.require_nonce = false;
    });
    let key = DpopKey::generate(&OsRandomness).unwrap();
    let request = |cookie: Option<&str>| {
        let mut request = Request::post(PATH)
            .header("origin", ORIGIN)
            .header("dpop", proof(&key, &endpoint(), None));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request
            .body(Body::from(serde_json::json!({"aud": ISSUER}).to_string()))
            .unwrap()
    };

    let no_cookie = send(&backend, request(None)).await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(
        check.asked.lock().unwrap().is_empty(),
        "the cookie's presence is checked first"
    );

    let stale = send(&backend, request(Some("theme=dark; app_session=old"))).await;
    assert_eq!(
        (stale.status, stale.body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("access_denied"))
    );
    assert_eq!(
        stale.body["error_description"],
        "[U8] sign in to the app again"
    );
    assert!(stale.body.get("client_assertion").is_none());

    let valid = send(&backend, request(Some("theme=dark; app_session=valid"))).await;
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.body);
    let jkt = key.public_jwk().thumbprint();
    assert_eq!(
        *check.asked.lock().unwrap(),
        vec![(jkt.clone(), ISSUER.to_owned()), (jkt, ISSUER.to_owned())],
        "asked about the proven key, twice"
    );
}
