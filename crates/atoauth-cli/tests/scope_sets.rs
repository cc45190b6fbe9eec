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

#[tokio::test]
async fn doctor_checks_a_client_s_metadata_and_each_set_it_asks_for() {
    use atoauth::ClientMetadata;
    use atoauth::client_metadata::ApplicationType;

    let pds = pds();
    let bob = pds.bob();
    let document = json!({
        "lexicon": 1,
        "id": "com.example.tasks.auth",
        "defs": {"main": {
            "type": "permission-set",
            "title": "Tasks",
            "permissions": [{"type": "permission", "resource": "repo", "collection": ["com.example.tasks.task"]}],
        }},
    });
    pds.publish_lexicon(bob, &document).await;
    let txt = format!("did={}", bob.did);
    let dns = TestDns::start(&[("_lexicon.tasks.example.com", &[&[txt.as_str()]])]).await;
    let host = pds.ready().client_host_url.clone();
    let client_id = host.join("doctor-sets/client-metadata.json").unwrap();
    let metadata = ClientMetadata::builder(client_id.as_str())
        .application_type(ApplicationType::Native)
        .scope("atproto include:com.example.tasks.auth include:com.example.gone.auth")
        .redirect_uri("http://127.0.0.1/callback")
        .insecure_allow_client_id_port()
        .build()
        .unwrap();
    pds.register_client_metadata("doctor-sets/client-metadata.json", &metadata.to_json())
        .await;
    let ca = pds.client_host_ca();
    let resolve = format!("{}=127.0.0.1", host.host_str().unwrap());
    let output = run(
        &dns,
        &[
            "--insecure-dev-ca",
            ca.to_str().unwrap(),
            "--insecure-dev-resolve",
            &resolve,
            "doctor",
            "alice.test",
            "--client-id",
            client_id.as_str(),
            "--json",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let step = |name: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {report}"))
            .clone()
    };
    assert_eq!(step("client metadata document")["status"], "pass");
    let good = step("permission set include:com.example.tasks.auth");
    assert_eq!(good["status"], "pass", "{good}");
    assert!(
        good["detail"]
            .as_str()
            .unwrap()
            .contains("repo:com.example.tasks.task")
    );
    let gone = step("permission set include:com.example.gone.auth");
    assert_eq!(gone["status"], "fail");
    assert_eq!(gone["rule"], "§5");
    assert!(gone["fix"].as_str().unwrap().contains("_lexicon"));
}
