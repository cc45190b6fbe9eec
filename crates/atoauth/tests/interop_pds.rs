//! The official PDS through the testkit, fetched with atoauth's own hardened HTTP client.
// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use atoauth::http::{FetchLimits, HardenedClient, HttpClient, HttpError, TargetPolicy};
use atoauth_testkit::pds;
use serde_json::Value;

fn loopback_client() -> HardenedClient {
    HardenedClient::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .build()
        .unwrap()
}

async fn get_json(client: &HardenedClient, url: &str) -> (u16, Value) {
    let mut request = http::Request::get(url).body(Default::default()).unwrap();
    FetchLimits::METADATA.apply(&mut request);
    let response = client.send(request).await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_slice(response.body()).unwrap())
}

#[tokio::test]
async fn protected_resource_metadata_names_the_pds_as_its_authorization_server() {
    let pds = pds();
    let url = pds
        .pds_url()
        .join("/.well-known/oauth-protected-resource")
        .unwrap();
    let (status, doc) = get_json(&loopback_client(), url.as_str()).await;
    assert_eq!(status, 200);
    // F1: exactly one authorization server; F2: resource is the PDS origin.
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!([pds.issuer()])
    );
    assert_eq!(doc["resource"].as_str().unwrap(), pds.issuer());
}

#[tokio::test]
async fn authorization_server_metadata_has_the_atproto_profile() {
    let pds = pds();
    let url = format!("{}/.well-known/oauth-authorization-server", pds.issuer());
    let (status, doc) = get_json(&loopback_client(), &url).await;
    assert_eq!(status, 200);
    // F4.1 issuer equals the origin it was fetched from; F4.9, F4.10, F4.13 and the endpoints.
    assert_eq!(doc["issuer"].as_str().unwrap(), pds.issuer());
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["require_pushed_authorization_requests"], true);
    assert_eq!(doc["client_id_metadata_document_supported"], true);
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "pushed_authorization_request_endpoint",
        "revocation_endpoint",
    ] {
        assert!(
            doc[field].as_str().unwrap().starts_with(pds.issuer()),
            "{field}"
        );
    }
    let listed =
        |field: &str, value: &str| doc[field].as_array().unwrap().iter().any(|v| v == value);
    assert!(listed("code_challenge_methods_supported", "S256"));
    assert!(listed("dpop_signing_alg_values_supported", "ES256"));
    assert!(listed("scopes_supported", "atproto"));
    assert!(listed(
        "token_endpoint_auth_methods_supported",
        "private_key_jwt"
    ));
}

#[tokio::test]
async fn resolve_handle_through_the_pds_xrpc_resolver() {
    let pds = pds();
    let alice = pds.alice();
    let url = pds
        .pds_url()
        .join("/xrpc/com.atproto.identity.resolveHandle?handle=alice.test")
        .unwrap();
    let (status, body) = get_json(&loopback_client(), url.as_str()).await;
    assert_eq!(status, 200);
    assert_eq!(body["did"].as_str().unwrap(), alice.did);
}

#[tokio::test]
async fn did_document_from_the_plc_directory_claims_the_handle_and_names_the_pds() {
    let pds = pds();
    let alice = pds.alice();
    // Not Url::join: it would read "did:" as a URL scheme.
    let url = format!("{}{}", pds.plc_url(), alice.did);
    let (status, doc) = get_json(&loopback_client(), &url).await;
    assert_eq!(status, 200);
    assert_eq!(doc["id"].as_str().unwrap(), alice.did);
    assert_eq!(doc["alsoKnownAs"][0].as_str().unwrap(), "at://alice.test");
    let service = doc["service"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str().unwrap().ends_with("#atproto_pds"))
        .unwrap();
    assert_eq!(service["serviceEndpoint"].as_str().unwrap(), pds.issuer());
}

#[tokio::test]
async fn the_default_policy_refuses_the_loopback_pds() {
    let pds = pds();
    let client = HardenedClient::builder().build().unwrap();
    let url = format!("{}/.well-known/oauth-authorization-server", pds.issuer());
    let request = http::Request::get(url).body(Default::default()).unwrap();
    let error = client.send(request).await.unwrap_err();
    assert!(
        matches!(error, HttpError::ForbiddenTarget { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn harness_reports_a_sane_footprint() {
    let pds = pds();
    assert_eq!(pds.ready().pds_version, "0.5.35");
    assert!(pds.ready().node.starts_with("v22."));
    let rss = pds.rss_bytes().unwrap();
    eprintln!("interop/pds RSS: {} MiB", rss / (1024 * 1024));
    assert!(rss > 10 * 1024 * 1024, "the harness process is alive");
}

// --- identity resolution against the official PDS and its PLC directory (issue: identity) ---

use atoauth::identity::{HandleResolution, IdentityError, IdentityResolver};
use atoauth::syntax::AtIdentifier;

fn pds_resolver(resolution: HandleResolution) -> IdentityResolver {
    IdentityResolver::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .plc_url(pds().plc_url().clone())
        .handle_resolution(resolution)
        .build()
        .unwrap()
}

#[tokio::test]
async fn alice_resolves_through_the_xrpc_resolver_and_verifies_both_ways() {
    let pds = pds();
    let resolver = pds_resolver(HandleResolution::Service(pds.pds_url().clone()));
    let identity = resolver
        .resolve(&AtIdentifier::from_login_input("@Alice.test").unwrap())
        .await
        .unwrap();
    assert_eq!(identity.did.as_str(), pds.alice().did);
    assert!(identity.handle_verified);
    assert_eq!(identity.display_handle(), "alice.test");
    assert_eq!(identity.pds.as_str().trim_end_matches('/'), pds.issuer());

    // From the DID: the document's handle resolves back to it (G.32).
    let from_did = resolver
        .resolve_fresh(&AtIdentifier::new(&pds.alice().did).unwrap())
        .await
        .unwrap();
    assert_eq!(from_did.handle.as_ref().unwrap().as_str(), "alice.test");
    assert!(from_did.handle_verified);

    // Bob's handle resolves to Bob, not Alice.
    let bob = resolver
        .resolve(&AtIdentifier::new("bob.test").unwrap())
        .await
        .unwrap();
    assert_eq!(bob.did.as_str(), pds.bob().did);
}

#[tokio::test]
async fn alice_resolves_through_the_pds_well_known_by_host_header() {
    let pds = pds();
    let dns = atoauth_testkit::TestDns::start(&[]).await;
    let resolver = IdentityResolver::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .plc_url(pds.plc_url().clone())
        .dns_resolver(dns.resolver())
        .insecure_handle_well_known_base(pds.pds_url().clone())
        .build()
        .unwrap();
    let identity = resolver
        .resolve(&AtIdentifier::new("alice.test").unwrap())
        .await
        .unwrap();
    assert_eq!(identity.did.as_str(), pds.alice().did);
    assert!(identity.handle_verified);
}

#[tokio::test]
async fn unknown_handles_and_dids_are_typed_errors() {
    let pds = pds();
    let resolver = pds_resolver(HandleResolution::Service(pds.pds_url().clone()));
    let error = resolver
        .resolve(&AtIdentifier::new("nobody.test").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleNotFound { .. }),
        "{error}"
    );
    let error = resolver
        .resolve(&AtIdentifier::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::DidNotFound { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn the_loopback_plc_is_refused_without_the_insecure_policy() {
    let pds = pds();
    let resolver = IdentityResolver::builder()
        .plc_url(pds.plc_url().clone())
        .handle_resolution(HandleResolution::Service(pds.pds_url().clone()))
        .build()
        .unwrap();
    let error = resolver
        .resolve(&AtIdentifier::new(&pds.alice().did).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::ForbiddenTarget { .. }),
        "{error}"
    );
}
