//! A native or mobile app against the official PDS: a published public client with
//! `application_type: native` whose redirect is a custom scheme (the client host reversed, D3),
//! or a claimed https link on its own origin (D4). The deep link the OS hands to the app goes to
//! `complete_authorization` as it is; then an XRPC call, a refresh and sign-out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth::client_metadata::ApplicationType;
use atoauth::{
    AuthorizeOptions, CallbackParams, ClientMetadata, MemoryStore, OAuthClient, Revocation, Store,
};
use atoauth_testkit::{Consent, RecordingHttp, pds};

/// The harness's client host reversed: `clients.example.internal` →
/// `internal.example.clients`.
fn custom_scheme() -> String {
    let host = pds().ready().client_host_url.host_str().unwrap().to_owned();
    host.split('.').rev().collect::<Vec<_>>().join(".")
}

/// Publishes a native client's metadata on the harness's HTTPS host and builds its client.
async fn native_client(
    path: &str,
    redirect_uri: &str,
    store: Arc<dyn Store>,
    http: &RecordingHttp,
) -> OAuthClient {
    let pds = pds();
    let client_id = pds
        .ready()
        .client_host_url
        .join(&format!("{path}/client-metadata.json"))
        .unwrap();
    let metadata = ClientMetadata::builder(client_id.as_str())
        .application_type(ApplicationType::Native)
        .scope("atproto transition:generic")
        .redirect_uri(redirect_uri)
        .client_name("atoauth native test")
        .insecure_allow_client_id_port()
        .build()
        .unwrap();
    assert!(
        !metadata.is_confidential(),
        "a native app is a public client"
    );
    pds.register_client_metadata(&format!("{path}/client-metadata.json"), &metadata.to_json())
        .await;
    OAuthClient::builder()
        .metadata(metadata)
        .insecure_allow_client_id_port()
        .insecure_local_pds(pds.plc_url().clone(), pds.pds_url().clone())
        .http_client(Arc::new(http.clone()))
        .store(store)
        .build()
        .unwrap()
}

/// Start, consent (as the system browser would), the deep link, an XRPC call, an expired
/// token refreshed on the next call, sign-out.
async fn full_flow(path: &str, redirect_uri: &str) {
    let pds = pds();
    let http = RecordingHttp::loopback();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let client = native_client(path, redirect_uri, Arc::clone(&store), &http).await;
    let url = client
        .start_authorization(&pds.bob().handle, AuthorizeOptions::default())
        .await
        .unwrap();
    let deep_link = pds
        .authorize(url.as_str(), pds.bob(), Consent::Accept)
        .await
        .unwrap();
    assert!(
        deep_link.as_str().starts_with(redirect_uri),
        "the OS opens the app with {deep_link}"
    );
    // What a Tauri or mobile deep-link handler receives is a string.
    let session = client
        .complete_authorization(CallbackParams::from_url(
            &deep_link.as_str().parse().unwrap(),
        ))
        .await
        .unwrap()
        .session;
    assert_eq!(session.did().as_str(), pds.bob().did);
    let me: serde_json::Value = session
        .query("com.atproto.server.getSession", &[])
        .await
        .unwrap();
    assert_eq!(me["did"], pds.bob().did.as_str());

    atoauth_testkit::expire_session(store.as_ref(), session.did(), session.session_id()).await;
    let resumed = client
        .restore(session.did(), session.session_id())
        .await
        .unwrap();
    let again: serde_json::Value = resumed
        .query("com.atproto.server.getSession", &[])
        .await
        .unwrap();
    assert_eq!(again["did"], pds.bob().did.as_str());
    assert_eq!(http.successful_grants("refresh_token"), 1);

    assert_eq!(resumed.sign_out().await.unwrap(), Revocation::Revoked);
    assert!(
        client
            .restore(session.did(), session.session_id())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn d3_a_custom_scheme_redirect_signs_in_calls_refreshes_and_signs_out() {
    let redirect = format!("{}:/callback", custom_scheme());
    // Our harness's client host is clients.atoauth-interop.internal.
    assert_eq!(redirect, "internal.atoauth-interop.clients:/callback");
    full_flow("native-scheme", &redirect).await;
}

#[tokio::test]
async fn d4_a_claimed_https_link_on_the_client_origin_works_the_same() {
    let link = pds()
        .ready()
        .client_host_url
        .join("native-link/callback")
        .unwrap();
    full_flow("native-link", link.as_str()).await;
}

#[test]
fn d3_a_custom_scheme_of_another_host_is_refused() {
    let violations = ClientMetadata::builder("https://app.example.com/client-metadata.json")
        .application_type(ApplicationType::Native)
        .scope("atproto")
        .redirect_uri("com.other.app:/callback")
        .build()
        .unwrap_err();
    assert!(violations.rules().contains(&"D3"), "{violations}");
}
