//! `atoauth client-metadata validate` on the real client documents (all valid) and broken
//! variants (each naming its rule, all at once), loopback client ids, and a fetched URL;
//! `client-metadata new` output validates, and keys from `keygen` configure a confidential client.
//! The `--json` shape is pinned by tests/snapshots/client_metadata_validate.json.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use atoauth_testkit::{Reply, TestServer};
use common::{atoauth, json, stderr, stdout};
use serde_json::{Value, json};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../atoauth/testdata/oauth-metadata")
        .join(name)
}

fn validate(source: &str) -> std::process::Output {
    atoauth()
        .args(["client-metadata", "validate", source])
        .output()
        .unwrap()
}

#[test]
fn the_real_client_documents_are_valid() {
    for name in [
        "flaskdemo-client-metadata.json",
        "smokesignal-client-metadata.json",
        "statusphere-client-metadata.json",
    ] {
        let output = validate(testdata(name).to_str().unwrap());
        assert!(output.status.success(), "{name}: {}", stdout(&output));
        assert!(stdout(&output).starts_with("✓"), "{}", stdout(&output));
    }
}

#[test]
fn broken_variants_name_every_rule_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let original: Value = serde_json::from_str(
        &std::fs::read_to_string(testdata("statusphere-client-metadata.json")).unwrap(),
    )
    .unwrap();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("dpop_bound_access_tokens", json!(false), "B5.9"),
        ("token_endpoint_auth_method", Value::Null, "B5.7"),
        (
            "redirect_uris",
            json!(["http://statusphere.mozzius.dev/oauth/callback"]),
            "D5",
        ),
        ("scope", json!("transition:generic"), "B5.4"),
        (
            "client_id",
            json!("https://statusphere.mozzius.dev:8443/m.json"),
            "B1",
        ),
        ("default_max_age", json!(60), "B6"),
    ];
    let mut all = original.clone();
    for (field, value, rule) in &cases {
        let mut document = original.clone();
        for target in [&mut document, &mut all] {
            if value.is_null() {
                target.as_object_mut().unwrap().remove(*field);
            } else {
                target[*field] = value.clone();
            }
        }
        let path = dir.path().join(format!("{field}.json"));
        std::fs::write(&path, document.to_string()).unwrap();
        let output = validate(path.to_str().unwrap());
        assert_eq!(output.status.code(), Some(1), "{field}");
        assert!(
            stdout(&output).contains(&format!("[{rule}]")),
            "{field}: {}",
            stdout(&output)
        );
    }
    let path = dir.path().join("all.json");
    std::fs::write(&path, all.to_string()).unwrap();
    let output = atoauth()
        .args([
            "client-metadata",
            "validate",
            path.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    let report = json(&output);
    let rules: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    for (_, _, rule) in &cases {
        assert!(rules.contains(rule), "{rule} missing from {rules:?}");
    }

    let mut snapshot = report.clone();
    snapshot["source"] = json!("<file>");
    let actual = serde_json::to_string_pretty(&snapshot).unwrap() + "\n";
    let snapshot_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/client_metadata_validate.json"
    );
    if std::env::var_os("ATOAUTH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(snapshot_path, &actual).unwrap();
    }
    assert_eq!(
        actual,
        std::fs::read_to_string(snapshot_path).unwrap(),
        "review and update the snapshot"
    );

    let output = validate(dir.path().join("missing.json").to_str().unwrap());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: cannot read"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn loopback_client_ids_are_explained_or_refused_with_c_rules() {
    let output =
        validate("http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto");
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("loopback development client"),
        "{}",
        stdout(&output)
    );
    let output = validate("http://localhost:3000");
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("[C1]"), "{}", stdout(&output));
    let output = validate("http://localhost?redirect_uri=http%3A%2F%2Flocalhost%2Fcb");
    assert!(stdout(&output).contains("[C3]"), "{}", stdout(&output));
}

#[tokio::test]
async fn a_url_is_fetched_and_its_client_id_must_match() {
    let server = TestServer::start(|_| {
        Reply::json(&json!({"client_id": "https://elsewhere.example.com/m.json"}))
    })
    .await;
    let url = format!("{}metadata.json", server.url());
    let output = tokio::task::spawn_blocking(move || {
        atoauth()
            .args(["--insecure-dev", "client-metadata", "validate", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("[B5.1]"), "{}", stdout(&output));
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_url_s_jwks_uri_is_fetched_and_needs_a_usable_key() {
    // B5.10/J1: the published JWKS holds only a private key, which the server ignores.
    let leaked = atoauth::protocol::crypto::Es256Key::from_secret_bytes(
        &[7; 32],
        atoauth::protocol::crypto::SignerBackend::P256,
    )
    .unwrap()
    .with_kid("k1")
    .to_private_jwk();
    let server = TestServer::start(move |request| {
        if request.target.ends_with("jwks.json") {
            return Reply::json(&json!({ "keys": [leaked] }));
        }
        let host = request.headers.get("host").cloned().unwrap_or_default();
        Reply::json(&json!({
            "client_id": format!("http://{host}/metadata.json"),
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks_uri": format!("http://{host}/jwks.json"),
        }))
    })
    .await;
    let url = format!("{}metadata.json", server.url());
    let output = tokio::task::spawn_blocking(move || {
        atoauth()
            .args([
                "--insecure-dev",
                "client-metadata",
                "validate",
                &url,
                "--json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(server.request_count(), 2, "the document, then its jwks_uri");
    let report = json(&output);
    let found: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        found.iter().any(|m| m.contains("private or secret part")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.contains("no key that can verify ES256")),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_public_client_s_jwks_uri_is_fetched_too_and_must_answer() {
    // The server fetches jwks_uri for any client and refuses a public one when it fails.
    let server = TestServer::start(move |request| {
        if request.target.ends_with("jwks.json") {
            return Reply::status(404);
        }
        let host = request.headers.get("host").cloned().unwrap_or_default();
        Reply::json(&json!({
            "client_id": format!("http://{host}/metadata.json"),
            "token_endpoint_auth_method": "none",
            "jwks_uri": format!("http://{host}/jwks.json"),
        }))
    })
    .await;
    let url = format!("{}metadata.json", server.url());
    let output = tokio::task::spawn_blocking(move || {
        atoauth()
            .args([
                "--insecure-dev",
                "client-metadata",
                "validate",
                &url,
                "--json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(server.request_count(), 2, "the document, then its jwks_uri");
    let report = json(&output);
    let violations = report["violations"].as_array().unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v["rule"] == "B5.10"
                && v["message"].as_str().unwrap().contains("cannot be used")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v["rule"] == "B6.3"
            && v["message"]
                .as_str()
                .unwrap()
                .contains("fetches \"jwks_uri\" anyway")),
        "{violations:?}"
    );
}

#[test]
fn new_documents_validate_and_keygen_keys_configure_a_confidential_client() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["--web", "--native"] {
        let out = dir.path().join(format!("{}.json", &kind[2..]));
        let output = atoauth()
            .args([
                "client-metadata",
                "new",
                kind,
                "--client-id",
                "https://app.example.com/oauth-client-metadata.json",
            ])
            .args(["--name", "Example", "--scope", "atproto transition:generic"])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{kind}: {}", stderr(&output));
        let check = validate(out.to_str().unwrap());
        assert!(check.status.success(), "{kind}: {}", stdout(&check));
    }
    let native: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("native.json")).unwrap())
            .unwrap();
    assert_eq!(
        native["redirect_uris"],
        json!(["com.example.app:/callback"])
    );

    // Confidential: keys created by the command (keygen's format), inline public JWKS.
    let keys = dir.path().join("keys.json");
    let output = atoauth()
        .args([
            "client-metadata",
            "new",
            "--web",
            "--client-id",
            "https://app.example.com/oauth-client-metadata.json",
        ])
        .arg("--keys")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["token_endpoint_auth_method"], "private_key_jwt");
    let keyset = atoauth::protocol::client_auth::Keyset::from_jwks_json(
        &std::fs::read_to_string(&keys).unwrap(),
    )
    .unwrap();
    let metadata: atoauth::client_metadata::ClientMetadata =
        serde_json::from_value(document).unwrap();
    atoauth::OAuthClient::builder()
        .metadata(metadata)
        .keyset(keyset)
        .build()
        .expect("keygen keys and the generated metadata configure a confidential client");

    // A document that would break a rule is not written.
    let bad = dir.path().join("bad.json");
    let output = atoauth()
        .args([
            "client-metadata",
            "new",
            "--web",
            "--client-id",
            "http://app.example.com/m.json",
        ])
        .arg("--out")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("[B1]"), "{}", stderr(&output));
    assert!(!bad.exists());
}

#[test]
fn warnings_alone_pass_and_client_id_pins_the_served_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut document: Value = serde_json::from_str(
        &std::fs::read_to_string(testdata("statusphere-client-metadata.json")).unwrap(),
    )
    .unwrap();
    let redirect = document["redirect_uris"][0].clone();
    document["redirect_uris"] = json!([redirect, redirect]);
    let path = dir.path().join("warned.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let path = path.to_str().unwrap();

    // B6.3: a duplicate redirect URI is a warning; the exit code stays 0.
    let output = validate(path);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("[B6.3] warning:"),
        "{}",
        stdout(&output)
    );
    let output = atoauth()
        .args(["client-metadata", "validate", path, "--json"])
        .output()
        .unwrap();
    let report = json(&output);
    assert_eq!(report["valid"], true);
    assert_eq!(report["violations"][0]["severity"], "warning");

    // --client-id: the document must be the one served at that URL (B5.1), without fetching.
    let client_id = document["client_id"].as_str().unwrap();
    let output = atoauth()
        .args([
            "client-metadata",
            "validate",
            path,
            "--client-id",
            client_id,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stdout(&output));
    let output = atoauth()
        .args([
            "client-metadata",
            "validate",
            path,
            "--client-id",
            "https://elsewhere.example.com/oauth-client-metadata.json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("[B5.1]"), "{}", stdout(&output));
}
