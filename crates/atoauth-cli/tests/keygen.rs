//! `atoauth keygen`: a private JWKS with mode 0600 that the library reads back, its public half,
//! and no silent overwrite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use atoauth::protocol::client_auth::Keyset;
use common::{assert_snapshot, atoauth, json, shape, stderr};

#[test]
fn keygen_writes_a_private_jwks_and_prints_the_public_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.json");
    let output = atoauth()
        .args(["keygen", "--kid", "2026-11"])
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let public = json(&output);
    assert_snapshot("keygen_public", &shape(&public));
    assert_eq!(public["keys"][0]["kid"], "2026-11");
    assert_eq!(public["keys"][0]["alg"], "ES256");
    assert_eq!(public["keys"][0]["use"], "sig");
    assert!(public["keys"][0].get("d").is_none());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let private: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(private["keys"][0]["d"].is_string());
    let keys = Keyset::from_jwks_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(keys.public_jwks()).unwrap(), public);

    let again = atoauth()
        .arg("keygen")
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));

    let printed = atoauth()
        .arg("keygen")
        .arg("--public")
        .arg(&file)
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(json(&printed), public);
}
