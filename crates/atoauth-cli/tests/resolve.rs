//! `atoauth resolve` end to end against the official PDS (identity issue, item 8).

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use atoauth_testkit::pds;
use common::{assert_snapshot, atoauth, json, shape, stderr, stdout};

fn against_pds(args: &[&str]) -> std::process::Output {
    let pds = pds();
    atoauth()
        .args(["--insecure-dev", "--plc-url", pds.plc_url().as_str()])
        .args(["--handle-resolver", pds.pds_url().as_str()])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn resolves_alice_as_json() {
    let pds = pds();
    let output = against_pds(&["resolve", "@alice.test", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let value = json(&output);
    assert_snapshot("resolve", &shape(&value));
    assert_eq!(value["did"], pds.alice().did.as_str());
    assert_eq!(value["handle"], "alice.test");
    assert_eq!(value["handle_verified"], true);
    assert_eq!(
        value["pds"].as_str().unwrap().trim_end_matches('/'),
        pds.issuer()
    );
}

#[test]
fn resolves_a_did_as_text() {
    let pds = pds();
    let output = against_pds(&["resolve", &pds.bob().did]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("DID:     {}", pds.bob().did)),
        "{text}"
    );
    assert!(text.contains("handle:  bob.test (verified)"), "{text}");
    assert!(
        text.contains(&format!("PDS:     {}", pds.pds_url())),
        "{text}"
    );
}

#[test]
fn failures_are_one_error_line_and_a_non_zero_exit() {
    for (args, expected) in [
        (
            &["resolve", "nobody.test"][..],
            "error: handle nobody.test not found",
        ),
        (
            &["resolve", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"][..],
            "error: DID did:plc:aaaaaaaaaaaaaaaaaaaaaaaa not found",
        ),
        (
            &["resolve", "not..valid"][..],
            "error: invalid at-identifier",
        ),
        (
            &["resolve", "did:key:zQ3sh"][..],
            "error: unsupported DID did:key:zQ3sh",
        ),
        (
            &["resolve", "laptop.local"][..],
            "error: laptop.local cannot be resolved",
        ),
    ] {
        let output = against_pds(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
        assert_eq!(lines.len(), 1, "one error line for {args:?}: {err}");
        assert!(lines[0].starts_with(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn loopback_servers_are_refused_without_insecure_dev() {
    let pds = pds();
    let output = atoauth()
        .args(["--plc-url", pds.plc_url().as_str()])
        .args(["--handle-resolver", pds.pds_url().as_str()])
        .args(["resolve", "alice.test"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: refused to fetch"),
        "{}",
        stderr(&output)
    );
}
