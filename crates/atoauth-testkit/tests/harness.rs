//! The testkit's own guarantees: the user step works, and the harness never outlives its tests.
// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use atoauth_testkit::{Consent, pds};
use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

/// A plain (non-PAR) authorization URL for the loopback development client: enough to exercise
/// the user step before the SDK's own PAR exists.
fn authorize_url(scope: &str, state: &str) -> String {
    // C2: the loopback client declares its redirect URI and scope in its client_id.
    let client_id = url::form_urlencoded::Serializer::new("http://localhost?".to_owned())
        .append_pair("redirect_uri", "http://127.0.0.1/callback")
        .append_pair("scope", scope)
        .finish();
    authorize_url_for(&client_id, "http://127.0.0.1/callback", scope, state)
}

fn authorize_url_for(client_id: &str, redirect_uri: &str, scope: &str, state: &str) -> String {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-atoauth-testkit";
    let challenge = Base64UrlUnpadded::encode_string(&Sha256::digest(verifier.as_bytes()));
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", pds().issuer())).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state)
        .append_pair("scope", scope)
        .append_pair("login_hint", "alice.test");
    url.into()
}

fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn accept_returns_a_code_for_our_redirect_uri() {
    let pds = pds();
    let redirect = pds
        .authorize(
            &authorize_url("atproto", "s-accept"),
            pds.alice(),
            Consent::Accept,
        )
        .await
        .unwrap();
    assert_eq!(redirect.origin().ascii_serialization(), "http://127.0.0.1");
    assert_eq!(redirect.path(), "/callback");
    assert_eq!(query(&redirect, "state").as_deref(), Some("s-accept"));
    assert_eq!(query(&redirect, "iss").as_deref(), Some(pds.issuer()));
    assert!(
        query(&redirect, "code").is_some_and(|c| !c.is_empty()),
        "{redirect}"
    );
}

#[tokio::test]
async fn reject_returns_access_denied() {
    let pds = pds();
    let redirect = pds
        .authorize(
            &authorize_url("atproto", "s-reject"),
            pds.alice(),
            Consent::Reject,
        )
        .await
        .unwrap();
    assert_eq!(query(&redirect, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&redirect, "state").as_deref(), Some("s-reject"));
    assert!(query(&redirect, "code").is_none());
}

#[tokio::test]
async fn partial_consent_and_a_wrong_password_are_reported() {
    let pds = pds();
    let scope = "atproto repo:app.bsky.feed.post?action=create account:email";
    let granted = "atproto repo:app.bsky.feed.post?action=create";
    let redirect = pds
        .authorize(
            &authorize_url(scope, "s-partial"),
            pds.alice(),
            Consent::AcceptScope(granted.to_owned()),
        )
        .await
        .unwrap();
    assert!(query(&redirect, "code").is_some());

    let mut wrong = pds.alice().clone();
    wrong.password = "not-the-password".to_owned();
    let error = pds
        .authorize(
            &authorize_url("atproto", "s-wrong"),
            &wrong,
            Consent::Accept,
        )
        .await
        .unwrap_err();
    assert_eq!(error.status, 422);
    assert!(error.message.contains("sign-in"), "{error}");
}

#[tokio::test]
async fn client_metadata_published_on_the_https_host_is_fetched_by_the_pds() {
    let pds = pds();
    let base = pds.ready().client_host_url.clone();
    let redirect_uri = format!("{}testkit-web/callback", base);
    let client_id = base.join("testkit-web/client-metadata.json").unwrap();
    let metadata = serde_json::json!({
        "client_id": client_id.as_str(),
        "application_type": "web",
        "client_name": "atoauth testkit",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": [redirect_uri],
        "scope": "atproto",
        "token_endpoint_auth_method": "none",
        "dpop_bound_access_tokens": true,
    });
    let published = pds
        .register_client_metadata("/testkit-web/client-metadata.json", &metadata)
        .await;
    assert_eq!(published, client_id);
    // The PDS fetches the document from the HTTPS host while showing the authorize page.
    let redirect = pds
        .authorize(
            &authorize_url_for(client_id.as_str(), &redirect_uri, "atproto", "s-web"),
            pds.bob(),
            Consent::Accept,
        )
        .await
        .unwrap();
    assert!(redirect.as_str().starts_with(&redirect_uri), "{redirect}");
    assert!(query(&redirect, "code").is_some(), "{redirect}");
}

/// Run by `the_harness_dies_with_a_panicking_test_binary` in a child process: starts the harness,
/// prints its pid, and fails.
#[test]
#[ignore = "a helper the test below runs in a child process"]
fn helper_start_the_harness_then_panic() {
    println!("HARNESS_PID={}", pds().ready().pid);
    panic!("this test fails on purpose");
}

#[test]
fn the_harness_dies_with_a_panicking_test_binary() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper_start_the_harness_then_panic",
            "--nocapture",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success(), "the helper test fails");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pid: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HARNESS_PID="))
        .unwrap_or_else(|| panic!("the helper printed its harness pid: {stdout}"))
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "harness {pid} outlived its test binary"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
