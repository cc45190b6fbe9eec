//! `atoauth scope explain` on valid and invalid strings; its `--json` schema is pinned by a
//! snapshot (tests/snapshots/scope_explain.json; regenerate with ATOAUTH_UPDATE_SNAPSHOTS=1 and
//! review the diff).
// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{atoauth, json, stderr, stdout};

const MIXED: &str = "atproto repo:app.bsky.feed.post?action=create&action=update&action=delete \
    Repo:x rpc:app.bsky.actor.getProfile?aud=did:web:api.bsky.app#bsky_appview \
    blob?accept=image/*&accept=image/png account:email?action=manage rpc:*?aud=* include:com.example \
    transition:generic identity:*";

#[test]
fn json_output_matches_the_snapshot() {
    let output = atoauth()
        .args(["scope", "explain", MIXED, "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "invalid tokens exit 1");
    let actual = serde_json::to_string_pretty(&json(&output)).unwrap() + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/scope_explain.json"
    );
    if std::env::var_os("ATOAUTH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        actual, expected,
        "the --json schema changed: review and update the snapshot"
    );
}

#[test]
fn valid_scopes_exit_zero_and_show_canonical_forms() {
    let output = atoauth()
        .args([
            "scope",
            "explain",
            "atproto repo?collection=app.bsky.feed.post&action=create",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("✓ atproto"), "{text}");
    assert!(
        text.contains("(canonical: repo:app.bsky.feed.post?action=create)"),
        "{text}"
    );
    assert!(
        text.contains("create records in app.bsky.feed.post"),
        "{text}"
    );
    assert!(
        stderr(&output).is_empty(),
        "no warning: {}",
        stderr(&output)
    );
}

#[test]
fn invalid_tokens_are_named_with_their_reason() {
    let output = atoauth()
        .args(["scope", "explain", "atproto rpc:*?aud=* repo:app.bsky.*"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("✗ rpc:*?aud=*  invalid: lxm=* together with aud=* is not allowed"),
        "{text}"
    );
    assert!(text.contains("✗ repo:app.bsky.*  invalid:"), "{text}");
    assert!(stderr(&output).contains("error: 2 invalid tokens"));
}

#[test]
fn a_missing_atproto_is_a_warning_not_an_error() {
    let output = atoauth()
        .args(["scope", "explain", "repo:*"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(stderr(&output).contains("warning: `atproto` is missing"));
}
