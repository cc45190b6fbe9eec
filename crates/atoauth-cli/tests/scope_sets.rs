//! `atoauth scope explain` expands `include:` permission sets over the network, against the
//! official PDS holding the set and our DNS server answering `_lexicon` (`--dns-server`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use atoauth_testkit::{TestDns, pds};
use common::{atoauth, json, stderr, stdout};
use serde_json::json;

/// `atoauth` with the harness and our DNS server. Run with tokio's process API: the DNS server
/// answers on this test's runtime, which a blocking wait would stall.
async fn run(dns: &TestDns, args: &[&str]) -> std::process::Output {
    tokio::process::Command::from(base(dns))
        .args(args)
        .output()
        .await
        .unwrap()
}

fn base(dns: &TestDns) -> std::process::Command {
    let pds = pds();
    let mut command = atoauth();
    command
        .args(["--insecure-dev", "--plc-url", pds.plc_url().as_str()])
        .args(["--handle-resolver", pds.pds_url().as_str()])
        .args(["--dns-server", &dns.address().to_string()]);
    command
}

#[tokio::test]
async fn scope_explain_shows_what_a_set_grants_and_what_the_user_is_asked() {
    let pds = pds();
    let alice = pds.alice();
    let document = json!({
        "lexicon": 1,
        "id": "com.example.notes.auth",
        "defs": {"main": {
            "type": "permission-set",
            "title": "Notes",
            "detail": "Write and share your notes",
            "permissions": [
                {"type": "permission", "resource": "repo", "collection": ["com.example.notes.note"], "action": ["create", "update"]},
                {"type": "permission", "resource": "rpc", "lxm": ["com.example.notes.search"], "inheritAud": true},
            ],
        }},
    });
    pds.publish_lexicon(alice, &document).await;
    let txt = format!("did={}", alice.did);
    let dns = TestDns::start(&[("_lexicon.notes.example.com", &[&[txt.as_str()]])]).await;
    let scope = "atproto include:com.example.notes.auth?aud=did:web:notes.example.com%23notes";

    let output = run(&dns, &["scope", "explain", scope]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("the user is asked: \"Notes\""), "{text}");
    assert!(text.contains("Write and share your notes"), "{text}");
    assert!(
        text.contains("→ repo:com.example.notes.note?action=create&action=update"),
        "{text}"
    );
    assert!(
        text.contains("→ rpc:com.example.notes.search?aud=did:web:notes.example.com%23notes"),
        "{text}"
    );

    let output = run(&dns, &["scope", "explain", scope, "--json"]).await;
    let value = json(&output);
    let set = &value["tokens"][1]["set"];
    assert_eq!(set["title"], "Notes");
    assert_eq!(set["grants"].as_array().unwrap().len(), 2, "{value}");

    // --offline: no lookup at all.
    let before = dns.query_count();
    let output = run(&dns, &["scope", "explain", scope, "--offline", "--json"]).await;
    assert!(output.status.success());
    assert!(json(&output)["tokens"][1].get("set").is_none());
    assert_eq!(dns.query_count(), before);

    // A set nobody publishes: named, with the failing step, exit 1.
    let output = run(
        &dns,
        &[
            "scope",
            "explain",
            "atproto include:com.example.missing.auth",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("✗ include:com.example.missing.auth")
            && text.contains("_lexicon.missing.example.com"),
        "{text}"
    );
}
