//! The examples are the newcomer's programs (#16): each one runs here against the official
//! PDS, as a user would run it. `cargo test` builds them before running tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use atoauth_testkit::{Consent, http_client, pds};

#[tokio::test]
async fn the_cli_example_signs_in_and_calls_get_session() {
    let pds = pds();
    let alice = pds.alice();
    let mut child = Command::new(atoauth_testkit::example_binary("cli"))
        .arg(&alice.handle)
        .env("PLC_URL", pds.plc_url().as_str())
        .env("HANDLE_RESOLVER", pds.pds_url().as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("Open this URL to sign in: ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    // The user consents in the browser, which then follows the redirect to the example.
    let redirect = pds.authorize(&url, alice, Consent::Accept).await.unwrap();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    let page = http_client().get(redirect.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let last = tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap())
        .await
        .unwrap();
    assert_eq!(
        last,
        format!("Signed in as \"{}\" ({})", alice.handle, alice.did)
    );
    assert!(child.wait().unwrap().success());
}
