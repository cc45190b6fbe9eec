//! Unit tests of the browser pieces, run inside headless Chromium by wasm-bindgen-test-runner
//! (`tests/wasm_unit.rs` starts them from `cargo test --workspace`): WebCrypto keys, the
//! IndexedDB stores, Web Locks and the fetch client's target policy. No network.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use atoauth::TargetPolicy;
use atoauth::http::{HttpClient, HttpError};
use atoauth::protocol::dpop::DpopKeyStore;
use atoauth::secret::State;
use atoauth::store::{PendingAuthorization, RefreshLock, SessionData, SessionStore, StateStore};
use atoauth_browser::{FetchClient, IndexedDbStore, WebCryptoKeyStore, WebLocks};
use base64ct_free::decode;
use p256::ecdsa::signature::Verifier as _;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// base64url without padding, decoded by hand (no extra dependency for one helper).
mod base64ct_free {
    pub(crate) fn decode(text: &str) -> Vec<u8> {
        let value = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => u32::from(c - b'A'),
                b'a'..=b'z' => u32::from(c - b'a') + 26,
                b'0'..=b'9' => u32::from(c - b'0') + 52,
                b'-' => 62,
                b'_' => 63,
                _ => panic!("not base64url: {c}"),
            }
        };
        let mut out = Vec::new();
        let (mut buffer, mut bits) = (0u32, 0);
        for &c in text.as_bytes() {
            buffer = (buffer << 6) | value(c);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push(u8::try_from((buffer >> bits) & 0xff).unwrap());
            }
        }
        out
    }
}

#[wasm_bindgen_test]
async fn webcrypto_keys_sign_verifiable_es256_and_are_kept_by_thumbprint() {
    let keys = WebCryptoKeyStore::open("unit-keys").await.unwrap();
    let key = keys.generate().await.unwrap();
    let public = key.public_jwk().clone();
    assert!(
        !public.is_private(),
        "only the public half is ever exported"
    );

    let message = b"header.claims";
    let signature = key.sign(message).await.unwrap();
    assert_eq!(signature.len(), 64, "r || s");
    let mut point = vec![4u8];
    point.extend(decode(&public.x));
    point.extend(decode(&public.y));
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
    assert!(verifying.verify(message, &signature).is_ok());

    let loaded = keys.load(&public).await.unwrap().expect("kept");
    assert_eq!(loaded.public_jwk().thumbprint(), public.thumbprint());
    keys.delete(&public).await.unwrap();
    assert!(keys.load(&public).await.unwrap().is_none(), "deleted");
}

fn pending() -> PendingAuthorization {
    serde_json::from_value(serde_json::json!({
        "issuer": "https://pds.example",
        "client_id": "http://localhost",
        "dpop_key": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"},
        "code_verifier": "v".repeat(43),
        "redirect_uri": "http://127.0.0.1/",
        "auth": {"method": "none"},
        "scope": "atproto",
        "created_at": 1,
        "expires_at": 2,
    }))
    .unwrap()
}

#[wasm_bindgen_test]
async fn a_pending_sign_in_is_taken_once_and_expires() {
    let store = IndexedDbStore::open("unit-states").await.unwrap();
    let state = State::new("state-1");
    store
        .create(&state, &pending(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.take(&state).await.unwrap().is_some());
    assert!(store.take(&state).await.unwrap().is_none(), "single use");

    let stale = State::new("state-2");
    store
        .create(&stale, &pending(), Duration::ZERO)
        .await
        .unwrap();
    assert!(store.take(&stale).await.unwrap().is_none(), "expired");
}

fn session(did: &str, id: &str) -> SessionData {
    serde_json::from_value(serde_json::json!({
        "did": did,
        "session_id": id,
        "pds": "https://pds.example/",
        "issuer": "https://pds.example",
        "client_id": "http://localhost",
        "auth": {"method": "none"},
        "scope": "atproto",
        "requested_scope": "atproto",
        "access_token": "at",
        "refresh_token": "rt",
        "dpop_key": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"},
        "dpop_nonces": {},
        "created_at": 1,
        "updated_at": 1,
    }))
    .unwrap()
}

#[wasm_bindgen_test]
async fn sessions_are_kept_listed_by_account_and_deleted() {
    let store = IndexedDbStore::open("unit-sessions").await.unwrap();
    let (alice, bob) = (
        session("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "a1"),
        session("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "b1"),
    );
    store.upsert(&alice).await.unwrap();
    store.upsert(&bob).await.unwrap();
    let got = store
        .get(&alice.did, &alice.session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, alice);
    assert_eq!(
        store.list_by_did(&bob.did).await.unwrap(),
        vec![bob.clone()]
    );
    assert_eq!(store.list_all().await.unwrap().len(), 2);
    assert!(store.delete(&alice.did, &alice.session_id).await.unwrap());
    assert!(!store.delete(&alice.did, &alice.session_id).await.unwrap());
    assert!(
        store
            .get(&alice.did, &alice.session_id)
            .await
            .unwrap()
            .is_none()
    );
}

#[wasm_bindgen_test]
async fn web_locks_exclude_each_other_and_give_up_after_their_timeout() {
    let locks = WebLocks::new("unit:", 300);
    let held = locks.lock("k").await.unwrap();
    let waited = locks.lock("k").await;
    assert!(waited.is_err(), "a held lock is not taken twice");
    assert!(locks.lock("other").await.is_ok(), "keys are independent");
    held.release().await;
    assert!(locks.lock("k").await.is_ok(), "free again after release");
}

#[wasm_bindgen_test]
async fn the_fetch_client_refuses_plain_http_except_to_loopback_when_allowed() {
    for (policy, url) in [
        (TargetPolicy::PublicHttpsOnly, "http://pds.example/xrpc/x"),
        (TargetPolicy::PublicHttpsOnly, "http://127.0.0.1:9/xrpc/x"),
        (
            TargetPolicy::InsecureAllowLoopbackHttp,
            "http://pds.example/xrpc/x",
        ),
    ] {
        let request = http::Request::get(url).body(bytes::Bytes::new()).unwrap();
        let error = FetchClient::new(policy).send(request).await.unwrap_err();
        assert!(
            matches!(error, HttpError::ForbiddenTarget { .. }),
            "{policy:?} {url}: {error}"
        );
    }
}
