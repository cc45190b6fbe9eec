//! The adapter examples as a user runs them, against the official PDS: sign in through the
//! loopback redirect, post with the typed API, and the PDS serves the post.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use atoauth_testkit::{Consent, http_client, pds};

async fn run(name: &str, text: &str) {
    let pds = pds();
    let carol = pds.carol();
    let mut child = Command::new(atoauth_testkit::example_binary(name))
        .args([carol.handle.as_str(), text])
        .env("PLC_URL", pds.plc_url().as_str())
        .env("HANDLE_RESOLVER", pds.pds_url().as_str())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("Open this URL to sign in: ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let redirect = pds.authorize(&url, carol, Consent::Accept).await.unwrap();
    let page = http_client().get(redirect.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let last = tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap())
        .await
        .unwrap();
    let uri = last
        .strip_prefix("Posted ")
        .unwrap_or_else(|| panic!("{last}"));
    assert!(child.wait().unwrap().success());

    let rkey = uri.rsplit('/').next().unwrap();
    let mut url = pds
        .pds_url()
        .join("xrpc/com.atproto.repo.getRecord")
        .unwrap();
    url.query_pairs_mut()
        .append_pair("repo", &carol.did)
        .append_pair("collection", "app.bsky.feed.post")
        .append_pair("rkey", rkey);
    let record: serde_json::Value = http_client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["value"]["text"], text);
}

#[tokio::test]
async fn the_atrium_example_posts_with_the_typed_api() {
    run("atrium", "hello from atrium over atoauth").await;
}

#[tokio::test]
async fn the_jacquard_example_posts_with_the_typed_api() {
    run("jacquard", "hello from jacquard over atoauth").await;
}
