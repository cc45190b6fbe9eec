//! Checking a DPoP proof (RFC 9449 §4.3) sent to the client-assertion backend: one `DPoP`
//! header, a JWT of type `dpop+jwt` signed with ES256 by the public P-256 key in its own header,
//! for this endpoint (`htm`, `htu`), made just now (`iat`), with the server's nonce when one is
//! required. Single use (`jti`) is checked by the caller, against the shared replay store.

use atoauth::protocol::crypto::Jwk;
use axum::http::HeaderMap;
use base64ct::{Base64UrlUnpadded, Encoding};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde::Deserialize;

/// The longest proof accepted (a P-256 proof is about 500 bytes).
const MAX_PROOF_BYTES: usize = 4096;

/// A proof that passed every check but single use.
#[derive(Debug)]
pub(crate) struct CheckedProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub(crate) jkt: String,
    /// The proof's `jti`.
    pub(crate) jti: String,
}

/// Why a proof is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProofError {
    /// No proof, or several.
    Missing,
    /// Malformed or wrongly signed: the reason.
    Invalid(String),
    /// The nonce is missing or not the current one.
    Nonce,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<Jwk>,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    nonce: Option<String>,
}

/// What the proof must match.
pub(crate) struct Expected<'a> {
    /// The endpoint's public URL, without query (the `htu`).
    pub(crate) htu: &'a str,
    /// Unix time now.
    pub(crate) now: i64,
    /// How far `iat` may be from `now`, in seconds, either way.
    pub(crate) iat_window: i64,
    /// Whether `nonce` must be one of the server's (checked by `nonce_ok`).
    pub(crate) nonce_required: bool,
}

fn invalid(reason: impl Into<String>) -> ProofError {
    ProofError::Invalid(reason.into())
}

fn decode<T: for<'de> Deserialize<'de>>(part: &str, what: &str) -> Result<T, ProofError> {
    let bytes = Base64UrlUnpadded::decode_vec(part)
        .map_err(|_| invalid(format!("[U3] the proof's {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| invalid(format!("[U3] the proof's {what} is not a JSON object")))
}

/// Checks the request's proof against `expected`; `nonce_ok` says whether a nonce is current.
pub(crate) fn check(
    headers: &HeaderMap,
    expected: &Expected<'_>,
    nonce_ok: impl Fn(&str) -> bool,
) -> Result<CheckedProof, ProofError> {
    let mut values = headers.get_all("dpop").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ProofError::Missing);
    };
    let token = value
        .to_str()
        .map_err(|_| invalid("[U3] the proof is not ASCII"))?;
    if token.len() > MAX_PROOF_BYTES {
        return Err(invalid("[U3] the proof is too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_part), Some(claims_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("[U3] the proof is not a compact JWS"));
    };
    let header: Header = decode(header_part, "header")?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(invalid("[U3] typ must be dpop+jwt"));
    }
    if header.alg.as_deref() != Some("ES256") {
        return Err(invalid("[U3] alg must be ES256"));
    }
    let jwk = header
        .jwk
        .ok_or_else(|| invalid("[U3] the header carries no jwk"))?;
    if jwk.kty != "EC" || jwk.crv != "P-256" || jwk.is_private() {
        return Err(invalid("[U3] jwk must be a public EC P-256 key"));
    }
    verify_signature(&jwk, header_part, claims_part, signature_part)?;

    let claims: Claims = decode(claims_part, "claims")?;
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty() && jti.len() <= 256)
        .ok_or_else(|| invalid("[U3] jti is missing"))?;
    if claims.htm.as_deref() != Some("POST") {
        return Err(invalid("[U3] htm must be POST"));
    }
    if claims.htu.as_deref() != Some(expected.htu) {
        return Err(invalid(format!(
            "[U3] htu must be {} (this endpoint)",
            expected.htu
        )));
    }
    let iat = claims.iat.ok_or_else(|| invalid("[U3] iat is missing"))?;
    if (iat - expected.now).abs() > expected.iat_window {
        return Err(invalid(format!(
            "[U3] iat is more than {} s from the server's time",
            expected.iat_window
        )));
    }
    if expected.nonce_required && !claims.nonce.as_deref().is_some_and(&nonce_ok) {
        return Err(ProofError::Nonce);
    }
    Ok(CheckedProof {
        jkt: jwk.thumbprint(),
        jti,
    })
}

fn verify_signature(
    jwk: &Jwk,
    header_part: &str,
    claims_part: &str,
    signature_part: &str,
) -> Result<(), ProofError> {
    let coordinate = |value: &str| {
        Base64UrlUnpadded::decode_vec(value)
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| invalid("[U3] jwk coordinates must be 32 bytes"))
    };
    let mut point = vec![0x04];
    point.extend(coordinate(&jwk.x)?);
    point.extend(coordinate(&jwk.y)?);
    let signature = Base64UrlUnpadded::decode_vec(signature_part)
        .map_err(|_| invalid("[U3] the signature is not base64url"))?;
    let signed = format!("{header_part}.{claims_part}");
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| invalid("[U3] the signature does not verify with the proof's jwk"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use atoauth::Url;
    use atoauth::protocol::dpop::{DpopKey, ProofTarget};
    use atoauth::testing::{FixedClock, SeededRandomness};
    use axum::http::HeaderValue;

    use super::*;

    const HTU: &str = "https://app.example/oauth/client-assertion";

    fn proof(key: &DpopKey, url: &str, method: &str, nonce: Option<&str>, iat: i64) -> String {
        let url = Url::parse(url).unwrap();
        key.proof(
            ProofTarget {
                method,
                url: &url,
                nonce,
                access_token: None,
            },
            &FixedClock(iat),
            &SeededRandomness::new(u64::try_from(iat).unwrap()),
        )
        .unwrap()
    }

    fn headers(proofs: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for proof in proofs {
            headers.append("dpop", HeaderValue::from_str(proof).unwrap());
        }
        headers
    }

    fn expected(nonce_required: bool) -> Expected<'static> {
        Expected {
            htu: HTU,
            now: 1000,
            iat_window: 60,
            nonce_required,
        }
    }

    #[test]
    fn u3_a_good_proof_gives_its_key_thumbprint() {
        let key = DpopKey::generate(&SeededRandomness::new(1)).unwrap();
        let good = proof(&key, HTU, "POST", Some("n1"), 1000);
        let checked = check(&headers(&[&good]), &expected(true), |n| n == "n1").unwrap();
        assert_eq!(checked.jkt, key.public_jwk().thumbprint());
        assert!(!checked.jti.is_empty());
    }

    #[test]
    fn u3_each_broken_part_is_refused() {
        let key = DpopKey::generate(&SeededRandomness::new(2)).unwrap();
        let good = proof(&key, HTU, "POST", None, 1000);
        let no_nonce = |_: &str| false;
        let refused = |headers: HeaderMap, nonce_required: bool| {
            check(&headers, &expected(nonce_required), no_nonce).unwrap_err()
        };
        assert_eq!(refused(headers(&[]), false), ProofError::Missing);
        assert_eq!(
            refused(headers(&[&good, &good]), false),
            ProofError::Missing
        );
        let other_htu = proof(&key, "https://app.example/elsewhere", "POST", None, 1000);
        assert!(
            matches!(refused(headers(&[&other_htu]), false), ProofError::Invalid(r) if r.contains("htu"))
        );
        let get = proof(&key, HTU, "GET", None, 1000);
        assert!(
            matches!(refused(headers(&[&get]), false), ProofError::Invalid(r) if r.contains("htm"))
        );
        let old = proof(&key, HTU, "POST", None, 900);
        assert!(
            matches!(refused(headers(&[&old]), false), ProofError::Invalid(r) if r.contains("iat"))
        );
        assert_eq!(refused(headers(&[&good]), true), ProofError::Nonce);
        // Another key's signature over the same header and claims.
        let stranger = DpopKey::generate(&SeededRandomness::new(3)).unwrap();
        let theirs = proof(&stranger, HTU, "POST", None, 1000);
        let mut mixed: Vec<&str> = good.split('.').take(2).collect();
        mixed.push(theirs.split('.').nth(2).unwrap());
        let forged = mixed.join(".");
        assert!(
            matches!(refused(headers(&[&forged]), false), ProofError::Invalid(r) if r.contains("signature"))
        );
        // alg none, and a header with a private key.
        let none = format!(
            "{}.{}.",
            Base64UrlUnpadded::encode_string(br#"{"typ":"dpop+jwt","alg":"none"}"#),
            good.split('.').nth(1).unwrap()
        );
        assert!(
            matches!(refused(headers(&[&none]), false), ProofError::Invalid(r) if r.contains("alg"))
        );
        let wrong_typ = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(br#"{"typ":"JWT","alg":"ES256"}"#),
            good.split_once('.').unwrap().1
        );
        assert!(
            matches!(refused(headers(&[&wrong_typ]), false), ProofError::Invalid(r) if r.contains("typ"))
        );
    }
}
