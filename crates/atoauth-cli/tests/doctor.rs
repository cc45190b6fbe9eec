//! `atoauth doctor` against the official PDS (every step that runs passes; DNS and HTTPS are
//! skipped with `--handle-resolver`), on an unknown handle, and on an in-process server with
//! broken metadata (the failing rule id appears). The `--json` shape is pinned by a snapshot
//! of step names, statuses and rules (tests/snapshots/doctor.json; ATOAUTH_UPDATE_SNAPSHOTS=1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use atoauth_testkit::{Reply, TestServer, pds};
use common::{atoauth, json, stderr, stdout};
use serde_json::{Value, json};

fn against_pds(args: &[&str]) -> std::process::Output {
    let pds = pds();
    atoauth()
        .args(["--insecure-dev", "--plc-url", pds.plc_url().as_str()])
        .args(["--handle-resolver", pds.pds_url().as_str()])
        .args(args)
        .output()
        .unwrap()
}

/// The stable part of a report: names, statuses and rules (timings and URLs vary).
fn shape(report: &Value) -> Value {
    json!({
        "keys": report.as_object().unwrap().keys().collect::<Vec<_>>(),
        "step_keys": report["steps"][0].as_object().unwrap().keys().collect::<Vec<_>>(),
        "steps": report["steps"].as_array().unwrap().iter()
            .map(|s| json!([s["name"], s["status"], s["rule"]]))
            .collect::<Vec<_>>(),
    })
}

#[test]
fn alice_passes_every_step_that_runs_and_the_json_matches_the_snapshot() {
    let output = against_pds(&["doctor", "alice.test", "--json"]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let report = json(&output);
    assert_eq!(report["ok"], true);
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["status"] != "fail"), "{report:#}");
    let skipped: Vec<_> = steps
        .iter()
        .filter(|s| s["status"] == "skip")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        ["handle via DNS TXT", "handle via HTTPS well-known"]
    );
    assert!(steps.iter().any(|s| s["name"]
        == "F4.6 client authentication none and private_key_jwt"
        && s["status"] == "pass"));

    let actual = serde_json::to_string_pretty(&shape(&report)).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/doctor.json");
    if std::env::var_os("ATOAUTH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &actual).unwrap();
    }
    assert_eq!(
        actual,
        std::fs::read_to_string(path).unwrap(),
        "review and update the snapshot"
    );

    // The text form, from a DID.
    let output = against_pds(&["doctor", &pds().alice().did]);
    assert!(output.status.success(), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("✓ handle verified both ways"), "{text}");
    assert!(text.contains("All checks that ran passed."), "{text}");
}

#[test]
fn an_unknown_handle_fails_with_its_rule_and_a_fix() {
    let output = against_pds(&["doctor", "nobody.test"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("✗ handle via the resolver service"), "{text}");
    assert!(text.contains("[D.20]") && text.contains("fix:"), "{text}");
}

#[tokio::test]
async fn broken_authorization_server_metadata_names_each_failing_rule() {
    let server = TestServer::start(|request| {
        let origin = format!("http://{}", request.headers["host"]);
        match request.target.as_str() {
            "/.well-known/oauth-protected-resource" => Reply::json(&json!({
                "resource": origin, "authorization_servers": [origin],
            })),
            "/.well-known/oauth-authorization-server" => Reply::json(&json!({
                "issuer": origin,
                "authorization_endpoint": format!("{origin}/oauth/authorize"),
                "token_endpoint": format!("{origin}/oauth/token"),
                "pushed_authorization_request_endpoint": format!("{origin}/oauth/par"),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                // Broken: no private_key_jwt (F4.6), no DPoP ES256 (F4.11).
                "token_endpoint_auth_methods_supported": ["none"],
                "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
                "scopes_supported": ["atproto"],
                "authorization_response_iss_parameter_supported": true,
                "require_pushed_authorization_requests": true,
                "dpop_signing_alg_values_supported": ["ES256K"],
                "client_id_metadata_document_supported": true,
            })),
            _ => Reply::status(404),
        }
    })
    .await;
    let url = server.url().to_string();
    let output = tokio::task::spawn_blocking(move || {
        atoauth()
            .args(["--insecure-dev", "doctor", &url, "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let report = json(&output);
    let failed: Vec<_> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "fail")
        .map(|s| s["rule"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(failed, ["F4.6", "F4.11"], "{report:#}");
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] != "fail" || s["fix"].is_string())
    );
}
