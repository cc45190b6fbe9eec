//! Hostile authorization servers in-process, over real HTTP on 127.0.0.1 (issue #6): what a real
//! PDS never does. Each case ends in a typed error, and tokens a failed check received are
//! revoked (L5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use atoauth::OAuthError;
use atoauth::http::HttpError;
use atoauth::protocol::metadata::MetadataError;
use support::{ALICE, BOB, FakePlc, FakeServer, client_builder, memory_store, sign_in};

async fn world() -> (FakePlc, FakeServer) {
    let plc = FakePlc::start().await;
    let server = FakeServer::start().await;
    plc.place(ALICE, "alice.example.com", &server.origin());
    (plc, server)
}

#[tokio::test]
async fn f4_metadata_redirects_are_refused() {
    let (plc, server) = world().await;
    server.with(|s| s.hostile.metadata_redirect = true);
    let client = client_builder(&plc, &server, memory_store())
        .build()
        .unwrap();
    let error = sign_in(&client, ALICE, &server, None).await.unwrap_err();
    assert!(
        matches!(
            &error,
            OAuthError::Metadata(MetadataError::Fetch {
                source: HttpError::Redirect { .. },
                ..
            })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn s1_oversized_metadata_is_refused() {
    let (plc, server) = world().await;
    server.with(|s| s.hostile.oversized_metadata = true);
    let client = client_builder(&plc, &server, memory_store())
        .build()
        .unwrap();
    let error = sign_in(&client, ALICE, &server, None).await.unwrap_err();
    assert!(
        matches!(
            &error,
            OAuthError::Metadata(MetadataError::Fetch {
                source: HttpError::TooLarge { .. },
                ..
            })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn f4_1_an_issuer_that_is_not_its_origin_is_refused() {
    let (plc, server) = world().await;
    server.with(|s| s.hostile.issuer_mismatch = true);
    let client = client_builder(&plc, &server, memory_store())
        .build()
        .unwrap();
    let error = sign_in(&client, ALICE, &server, None).await.unwrap_err();
    let OAuthError::Metadata(error) = error else {
        panic!("{error}");
    };
    assert!(error.rules().contains(&"F4.1"), "{error}");
}

#[tokio::test]
async fn s1_a_slow_token_endpoint_times_out_with_a_typed_error() {
    let (plc, server) = world().await;
    server.with(|s| s.hostile.token_delay = Some(Duration::from_secs(30)));
    let client = client_builder(&plc, &server, memory_store())
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = sign_in(&client, ALICE, &server, None).await.unwrap_err();
    assert!(
        matches!(
            &error,
            OAuthError::Http {
                source: HttpError::Timeout { .. },
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn i7_a_nonce_that_never_satisfies_gets_exactly_one_retry() {
    let (plc, server) = world().await;
    server.with(|s| s.hostile.nonce_never_satisfies = true);
    let client = client_builder(&plc, &server, memory_store())
        .build()
        .unwrap();
    let error = sign_in(&client, ALICE, &server, None).await.unwrap_err();
    assert_eq!(error.oauth_error_code(), Some("use_dpop_nonce"), "{error}");
    assert_eq!(server.with(|s| s.par_requests), 2);
}

#[tokio::test]
async fn k4_wrong_and_missing_iss_are_refused_before_any_token_request() {
    let (plc, server) = world().await;
    let client = client_builder(&plc, &server, memory_store())
        .build()
        .unwrap();
    let error = sign_in(&client, ALICE, &server, Some("http://127.0.0.1:9"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::Callback { rule: "K4", .. }),
        "{error}"
    );
    assert_eq!(server.with(|s| s.issued), 0);
}

#[tokio::test]
async fn l3_a_token_for_another_did_is_refused_and_revoked() {
    let (plc, server) = world().await;
    plc.place(BOB, "bob.example.com", &server.origin());
    server.with(|s| s.hostile.token_sub = Some(BOB.to_owned()));
    let store = memory_store();
    let client = client_builder(&plc, &server, store.clone())
        .build()
        .unwrap();
    let error = sign_in(&client, ALICE, &server, None).await.unwrap_err();
    assert!(
        matches!(error, OAuthError::SubjectMismatch { .. }),
        "{error}"
    );
    assert_eq!(server.with(|s| s.revocations), 1);
    assert!(store.list_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn l4_a_server_not_authoritative_for_the_account_is_refused_and_revoked() {
    // Login starts from the server URL (F6), so no DID is expected; the token names bob, whose
    // PDS is served by another authorization server.
    let (plc, server) = world().await;
    let other = FakeServer::start().await;
    plc.place(BOB, "bob.example.com", &other.origin());
    server.with(|s| s.hostile.token_sub = Some(BOB.to_owned()));
    let client = client_builder(&plc, &server, memory_store())
        .build()
        .unwrap();
    let error = sign_in(&client, &server.origin(), &server, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::NotAuthoritative { .. }),
        "{error}"
    );
    assert_eq!(server.with(|s| s.revocations), 1);
}

#[tokio::test]
async fn l2_4_a_grant_without_atproto_is_refused_and_revoked() {
    let (plc, server) = world().await;
    server.with(|s| s.hostile.granted_scope = Some("transition:generic".to_owned()));
    let client = client_builder(&plc, &server, memory_store())
        .build()
        .unwrap();
    let error = sign_in(&client, ALICE, &server, None).await.unwrap_err();
    assert!(
        matches!(error, OAuthError::InvalidResponse { rule: "L2.4", .. }),
        "{error}"
    );
    assert_eq!(server.with(|s| s.revocations), 1);
}

#[tokio::test]
async fn k2_a_replayed_state_is_refused() {
    let (plc, server) = world().await;
    let client = client_builder(&plc, &server, memory_store())
        .build()
        .unwrap();
    sign_in(&client, ALICE, &server, None).await.unwrap();
    let state = server.with(|s| s.last_state.clone()).unwrap();
    let replay = format!(
        "state={}&code=c1&iss={}",
        support::urlencode(&state),
        support::urlencode(&server.origin())
    );
    let error = client
        .complete_authorization(atoauth::client::CallbackParams::from_query(&replay))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::Callback { rule: "K2", .. }),
        "{error}"
    );
}
