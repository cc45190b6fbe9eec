//! A confidential client's published keys (B5.10, J1, B6.1, B6.3), judged as the official
//! authorization server uses them: it keeps the keys its public-JWK schema accepts and ignores
//! the others, and it verifies an assertion with the one key that its header's `kid` and `alg`
//! select (a key with `use` other than `sig`, or `key_ops` without `verify`, is never selected).

use std::collections::BTreeSet;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;

use crate::rules::{Checker, Violation};

/// J1 and B5.10 on a published JWKS.
#[must_use]
pub fn check_jwks_document(jwks: &Value) -> Vec<Violation> {
    let mut check = Checker::default();
    check_jwks(&mut check, jwks);
    check.0
}

/// Reports every key problem; an error when no key can verify ES256 assertions (J1: what
/// atoauth and the reference clients sign with).
pub(super) fn check_jwks(check: &mut Checker, jwks: &Value) {
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        check.fail("B5.10", "\"jwks\" must be an object with a \"keys\" array");
        return;
    };
    check.require(!keys.is_empty(), "B5.10", "\"jwks\" holds no key");
    let mut kids = BTreeSet::new();
    let mut usable = 0;
    for (i, key) in keys.iter().enumerate() {
        let kid = key.get("kid").and_then(Value::as_str).unwrap_or("");
        let name = if kid.is_empty() {
            format!("key #{i}")
        } else {
            format!("key {kid:?}")
        };
        if key.get("d").is_some() || key.get("k").is_some() {
            check.fail(
                "B5.10",
                format!("{name} includes its private or secret part: never publish it"),
            );
            continue;
        }
        if let Some(problem) = ignored_by_server(key) {
            check.warn(
                "B6.1",
                format!("{name} is ignored by the authorization server: {problem}"),
            );
            continue;
        }
        if !kids.insert(kid) {
            check.fail(
                "J1",
                format!("\"kid\" {kid:?} is used twice: the server cannot tell the keys apart"),
            );
        }
        match verifies_es256(key) {
            Ok(true) => usable += 1,
            Ok(false) => {}
            // The server loads a key only when an assertion names it, so a broken extra key
            // does not stop the client; it can never verify anything.
            Err(problem) => check.warn("B5.10", format!("{name} is unusable: {problem}")),
        }
    }
    check.require(
        usable > 0,
        "J1",
        "the JWKS has no key that can verify ES256 client assertions (a kid, EC P-256, use \"sig\" or none, not revoked)",
    );
}

/// Why the server's public-JWK schema drops this key, if it does.
fn ignored_by_server(key: &Value) -> Option<String> {
    let text = |name: &str| key.get(name).map(|v| v.as_str().filter(|s| !s.is_empty()));
    match text("kid") {
        None => return Some("it has no \"kid\"".to_owned()),
        Some(None) => return Some("its \"kid\" is not a non-empty string".to_owned()),
        Some(Some(_)) => {}
    }
    let (kty, curves, algs): (&str, &[&str], &[&str]) = match text("kty").flatten() {
        Some("EC") => (
            "EC",
            &["P-256", "P-384", "P-521", "secp256k1"],
            &["ES256", "ES384", "ES512", "ES256K"],
        ),
        Some("RSA") => (
            "RSA",
            &[],
            &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        ),
        Some("OKP") => ("OKP", &["Ed25519", "Ed448"], &["EdDSA"]),
        other => {
            return Some(format!(
                "\"kty\" {other:?} is not a public key type it knows"
            ));
        }
    };
    let required: &[&str] = match kty {
        "EC" => &["crv", "x", "y"],
        "RSA" => &["n", "e"],
        _ => &["crv", "x"],
    };
    if let Some(missing) = required.iter().find(|m| text(m).flatten().is_none()) {
        return Some(format!("\"{missing}\" is missing or empty"));
    }
    if !curves.is_empty() && !text("crv").flatten().is_some_and(|c| curves.contains(&c)) {
        return Some("its \"crv\" is not one it knows for this key type".to_owned());
    }
    if let Some(alg) = key.get("alg")
        && !alg.as_str().is_some_and(|a| algs.contains(&a))
    {
        return Some(format!("\"alg\" {alg} does not fit \"kty\" {kty}"));
    }
    if let Some(key_use) = key.get("use")
        && !matches!(key_use.as_str(), Some("sig" | "enc"))
    {
        return Some(format!("\"use\" {key_use} is neither \"sig\" nor \"enc\""));
    }
    if let Some(ops) = key.get("key_ops") {
        let ops: Option<Vec<&str>> = ops
            .as_array()
            .and_then(|ops| ops.iter().map(Value::as_str).collect());
        let Some(ops) = ops.filter(|ops| !ops.is_empty()) else {
            return Some("\"key_ops\" must be a non-empty array of strings".to_owned());
        };
        if ops.iter().collect::<BTreeSet<_>>().len() != ops.len() {
            return Some("\"key_ops\" lists an operation twice".to_owned());
        }
        if !ops
            .iter()
            .all(|op| ["verify", "encrypt", "wrapKey"].contains(op))
        {
            return Some(
                "\"key_ops\" may hold only verify, encrypt and wrapKey for a public key".to_owned(),
            );
        }
        let consistent = match key.get("use").and_then(Value::as_str) {
            Some("sig") => ops.iter().all(|op| *op == "verify"),
            Some(_) => ops.iter().all(|op| *op != "verify"),
            None => true,
        };
        if !consistent {
            return Some("\"key_ops\" contradicts \"use\"".to_owned());
        }
    }
    None
}

/// Whether the server would select this (schema-valid) key for an ES256 assertion, and an
/// error when it would select a key that cannot work.
fn verifies_es256(key: &Value) -> Result<bool, String> {
    let field = |name: &str| key.get(name).and_then(Value::as_str);
    let selectable = field("kty") == Some("EC")
        && field("crv") == Some("P-256")
        && field("alg").is_none_or(|a| a == "ES256")
        && field("use").is_none_or(|u| u == "sig")
        && key
            .get("key_ops")
            .and_then(Value::as_array)
            .is_none_or(|ops| ops.iter().any(|op| op == "verify"))
        && key.get("revoked").is_none();
    if selectable {
        p256_point(key)?;
    }
    Ok(selectable)
}

/// The public point of a P-256 key, checked to lie on the curve.
fn p256_point(key: &Value) -> Result<p256::PublicKey, String> {
    let coordinate = |name: &str| {
        key.get(name)
            .and_then(Value::as_str)
            .and_then(|v| Base64UrlUnpadded::decode_vec(v).ok())
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| format!("\"{name}\" is not 32 bytes of base64url"))
    };
    let mut sec1 = vec![0x04];
    sec1.extend(coordinate("x")?);
    sec1.extend(coordinate("y")?);
    p256::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|_| "its point is not on the P-256 curve".to_owned())
}
