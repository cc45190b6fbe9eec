use std::sync::{Arc, Mutex};

use base64ct::{Base64UrlUnpadded, Encoding};

use super::*;
use crate::client_auth::Keyset;
use crate::crypto::{Es256Key, Jwk};
use crate::http::{HttpError, Request};
use crate::testing::{FixedClock, SeededRandomness};

const CLIENT: &str = "https://app.example/client-metadata.json";
const ISSUER: &str = "https://pds.example";

fn decode(token: &str, index: usize) -> serde_json::Value {
    let bytes = Base64UrlUnpadded::decode_vec(token.split('.').nth(index).unwrap()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn answer(status: u16, headers: &[(&str, &str)], body: &serde_json::Value) -> Response {
    let mut response = http::Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(body.to_string().into_bytes()).unwrap()
}

/// A backend in a closure: what it saw, and what it answers given the proof's header and claims.
#[derive(Default)]
struct Seen {
    proofs: Vec<(serde_json::Value, serde_json::Value)>,
    bodies: Vec<serde_json::Value>,
}

fn backend(
    reply: impl Fn(&serde_json::Value, &serde_json::Value, &serde_json::Value) -> Response
    + Send
    + Sync
    + 'static,
) -> (RemoteClientAssertions, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = Arc::clone(&seen);
    let reply = Arc::new(reply);
    let http = move |request: Request| {
        let log = Arc::clone(&log);
        let reply = Arc::clone(&reply);
        async move {
            let proof = request.headers()["dpop"].to_str().unwrap().to_owned();
            let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
            let (header, claims) = (decode(&proof, 0), decode(&proof, 1));
            let response = reply(&header, &claims, &body);
            let mut seen = log.lock().unwrap();
            seen.proofs.push((header, claims));
            seen.bodies.push(body);
            Ok::<_, HttpError>(response)
        }
    };
    let endpoint = Url::parse("https://app.example/oauth/client-assertion").unwrap();
    (RemoteClientAssertions::new(endpoint, Arc::new(http)), seen)
}

fn keys() -> Keyset {
    Keyset::new([Es256Key::generate(&SeededRandomness::new(4))
        .unwrap()
        .with_kid("k1")])
    .unwrap()
}

/// A backend that signs like atoauth-axum's, for the proof's key.
fn signing(header: &serde_json::Value, body: &serde_json::Value) -> Response {
    let jkt = jwk(&header["jwk"]).thumbprint();
    let token = keys()
        .assertion_for_dpop_key(
            "k1",
            CLIENT,
            body["aud"].as_str().unwrap(),
            &jkt,
            &FixedClock(1000),
            &SeededRandomness::new(8),
        )
        .unwrap()
        .unwrap();
    answer(
        200,
        &[],
        &serde_json::json!({"client_id": CLIENT, "client_assertion": token}),
    )
}

fn jwk(value: &serde_json::Value) -> Jwk {
    serde_json::from_value(value.clone()).unwrap()
}

async fn ask(
    source: &RemoteClientAssertions,
    key: &DpopKey,
    kid: Option<&str>,
) -> Result<SignedAssertion, AssertionError> {
    source
        .assertion(AssertionRequest {
            client_id: CLIENT,
            audience: ISSUER,
            kid,
            dpop_key: key,
            clock: &FixedClock(1000),
            random: &SeededRandomness::new(2),
        })
        .await
}

fn dpop_key(seed: u64) -> DpopKey {
    DpopKey::generate(&SeededRandomness::new(seed)).unwrap()
}

#[tokio::test]
async fn u3_the_request_carries_a_proof_for_the_endpoint_and_the_answer_is_checked() {
    let (source, seen) = backend(|header, _, body| signing(header, body));
    let key = dpop_key(11);
    let signed = ask(&source, &key, None).await.unwrap();
    assert_eq!(signed.kid, "k1");
    assert!(!format!("{signed:?}").contains(&signed.token), "redacted");
    {
        let log = seen.lock().unwrap();
        let (header, claims) = &log.proofs[0];
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://app.example/oauth/client-assertion");
        assert_eq!(
            jwk(&header["jwk"]).thumbprint(),
            key.public_jwk().thumbprint()
        );
        assert_eq!(log.bodies[0], serde_json::json!({"aud": ISSUER}));
    }
    ask(&source, &key, Some("k1")).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().bodies[1],
        serde_json::json!({"aud": ISSUER, "kid": "k1"})
    );
}

#[tokio::test]
async fn u4_a_nonce_challenge_is_answered_once_with_the_nonce() {
    let (source, seen) = backend(|header, claims, body| {
        if claims["nonce"] == "n-1" {
            signing(header, body)
        } else {
            answer(
                401,
                &[("dpop-nonce", "n-1")],
                &serde_json::json!({"error": "use_dpop_nonce"}),
            )
        }
    });
    ask(&source, &dpop_key(12), None).await.unwrap();
    assert_eq!(seen.lock().unwrap().proofs.len(), 2);
    ask(&source, &dpop_key(13), None).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().proofs.len(),
        3,
        "the nonce is remembered"
    );
}

#[tokio::test]
async fn refusals_are_typed() {
    type Expected = fn(&AssertionError) -> bool;
    let cases: [(u16, serde_json::Value, Expected); 4] = [
        (403, serde_json::json!({"error": "access_denied"}), |e| {
            matches!(e, AssertionError::Refused { status: 403, .. })
        }),
        (
            400,
            serde_json::json!({"error": "unknown_key"}),
            |e| matches!(e, AssertionError::KeyRemoved { kid } if kid == "old"),
        ),
        (503, serde_json::json!({}), |e| {
            matches!(e, AssertionError::Unavailable(_))
        }),
        (
            400,
            serde_json::json!({"error": "invalid_dpop_proof"}),
            |e| matches!(e, AssertionError::Invalid(_)),
        ),
    ];
    for (status, body, expected) in cases {
        let reply = body.clone();
        let (source, _) = backend(move |_, _, _| answer(status, &[], &reply));
        let error = ask(&source, &dpop_key(14), Some("old")).await.unwrap_err();
        assert!(expected(&error), "{status} {body}: {error:?}");
    }
}

#[tokio::test]
async fn u6_an_assertion_for_another_client_key_or_kid_is_refused_before_use() {
    let other_client = |header: &serde_json::Value, body: &serde_json::Value| {
        let mut response = signing(header, body);
        let mut value: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        value["client_id"] = "https://other.example/c.json".into();
        *response.body_mut() = value.to_string().into_bytes();
        response
    };
    let (source, _) = backend(move |header, _, body| other_client(header, body));
    assert!(matches!(
        ask(&source, &dpop_key(15), None).await,
        Err(AssertionError::Invalid(reason)) if reason.contains("other.example")
    ));
    // Bound to a different DPoP key than the one asking.
    let (source, _) = backend(|_, _, body| {
        let stranger = dpop_key(99);
        let header = serde_json::json!({"jwk": stranger.public_jwk()});
        signing(&header, body)
    });
    assert!(matches!(
        ask(&source, &dpop_key(16), None).await,
        Err(AssertionError::Invalid(reason)) if reason.contains("cnf.jkt")
    ));
    let (source, _) = backend(|header, _, body| signing(header, body));
    assert!(matches!(
        ask(&source, &dpop_key(17), Some("k2")).await,
        Err(AssertionError::Invalid(reason)) if reason.contains("J6")
    ));
}
