//! DPoP proofs (section I; RFC 9449) and the per-origin nonce cache.
//!
//! A [`DpopKey`] is created once per authorization and lives as long as the session (I2). Its
//! JWS header, which embeds the public JWK (I3), is serialised once; each proof then costs one
//! claims serialisation and one ES256 signature.
//!
//! The key is either atoauth's own ([`Es256Key`], kept in the session record) or a
//! [`DpopSigner`] that keeps its private key elsewhere and signs asynchronously: a browser's
//! non-extractable WebCrypto key, which nobody (atoauth included) can read. A
//! [`DpopKeyStore`] makes and finds such keys; the session record then holds only the public
//! key.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use url::Url;

use crate::crypto::{
    Clock, Es256Key, Jwk, JwsHeaderPrefix, KeyError, Randomness, random_token, sha256_base64url,
};
use crate::platform::{BoxFuture, MaybeSend, MaybeSync};

/// An ES256 key that signs DPoP proofs without handing out its private key, possibly
/// asynchronously (a WebCrypto `sign` is a promise). [`Es256Key`] is one; a browser's
/// non-extractable `CryptoKey` is the reason for the trait.
pub trait DpopSigner: MaybeSend + MaybeSync + fmt::Debug {
    /// The public key (`kty` EC, `crv` P-256, no private member) that goes in each proof's
    /// header (I3).
    fn public_jwk(&self) -> &Jwk;

    /// The ES256 signature of `message`: 64 bytes, `r || s` (RFC 7518 §3.4).
    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, KeyError>>;
}

impl DpopSigner for Es256Key {
    fn public_jwk(&self) -> &Jwk {
        Self::public_jwk(self)
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, KeyError>> {
        Box::pin(std::future::ready(Self::sign(self, message)))
    }
}

/// Makes and keeps the DPoP keys of an app whose keys must not sit in the session record (a
/// browser app: non-extractable WebCrypto keys in IndexedDB). The record then holds the public
/// key only, and the client asks this store for the signer.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait DpopKeyStore: MaybeSend + MaybeSync + fmt::Debug {
    /// A new key, kept by the store, for a new authorization (I2).
    async fn generate(&self) -> Result<Arc<dyn DpopSigner>, KeyError>;
    /// The key whose public JWK is `public`; `None` when the store no longer has it (the user
    /// cleared the site's data): the session cannot continue.
    async fn load(&self, public: &Jwk) -> Result<Option<Arc<dyn DpopSigner>>, KeyError>;
    /// Forgets the key of an ended session.
    async fn delete(&self, public: &Jwk) -> Result<(), KeyError>;
}

// One per session, behind an `Arc`: the size is paid once, and the common case (atoauth's own
// key) stays one pointer away from every proof.
#[allow(clippy::large_enum_variant)]
enum Signer {
    /// atoauth's own key: it signs in place, and the record keeps it.
    Local(Es256Key),
    /// A key kept elsewhere: the record keeps its public half.
    External(Arc<dyn DpopSigner>),
}

/// A session's DPoP key with its serialised proof header.
pub struct DpopKey {
    signer: Signer,
    header: JwsHeaderPrefix,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("thumbprint", &self.public_jwk().thumbprint())
            .field("external", &matches!(self.signer, Signer::External(_)))
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    alg: &'static str,
    jwk: &'a Jwk,
}

#[derive(Serialize)]
struct Claims<'a> {
    jti: &'a str,
    htm: &'a str,
    htu: &'a str,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

/// What one proof is for.
#[derive(Clone, Copy, Debug)]
pub struct ProofTarget<'a> {
    /// The HTTP method, upper case (`htm`).
    pub method: &'a str,
    /// The request URL; its query and fragment are dropped for `htu` (I4).
    pub url: &'a Url,
    /// The server's latest nonce, if one is known (I6).
    pub nonce: Option<&'a str>,
    /// The access token the request carries, for `ath` (PDS requests only, I4).
    pub access_token: Option<&'a str>,
}

impl DpopKey {
    /// A fresh key for a new authorization (I2).
    ///
    /// # Errors
    /// When the randomness source fails.
    pub fn generate(random: &dyn Randomness) -> Result<Self, KeyError> {
        Self::from_key(Es256Key::generate(random)?)
    }

    /// Wraps an existing key (restored from a store).
    ///
    /// # Errors
    /// Never in practice: only if the header cannot be serialised.
    pub fn from_key(key: Es256Key) -> Result<Self, KeyError> {
        let header = proof_header(key.public_jwk())?;
        Ok(Self {
            signer: Signer::Local(key),
            header,
        })
    }

    /// Wraps a key kept elsewhere (from a [`DpopKeyStore`]).
    ///
    /// # Errors
    /// When its public key is not a public EC P-256 key.
    pub fn from_signer(signer: Arc<dyn DpopSigner>) -> Result<Self, KeyError> {
        let public = signer.public_jwk();
        if public.kty != "EC" || public.crv != "P-256" || public.is_private() {
            return Err(KeyError::Invalid(format!(
                "a DPoP signer must present a public EC P-256 key, not kty {:?} crv {:?}{}",
                public.kty,
                public.crv,
                if public.is_private() {
                    " with its private member"
                } else {
                    ""
                }
            )));
        }
        let header = proof_header(public)?;
        Ok(Self {
            signer: Signer::External(signer),
            header,
        })
    }

    /// atoauth's own key, when it is one (not a [`DpopSigner`] kept elsewhere).
    #[must_use]
    pub fn key(&self) -> Option<&Es256Key> {
        match &self.signer {
            Signer::Local(key) => Some(key),
            Signer::External(_) => None,
        }
    }

    /// The public key.
    #[must_use]
    pub fn public_jwk(&self) -> &Jwk {
        match &self.signer {
            Signer::Local(key) => key.public_jwk(),
            Signer::External(signer) => signer.public_jwk(),
        }
    }

    /// What the session record keeps: the private JWK of atoauth's own key, the public JWK of
    /// a key kept elsewhere.
    ///
    /// # Security Warning
    /// For atoauth's own key this is the private key: persist it only where the session's
    /// tokens are persisted.
    #[must_use]
    pub fn record_jwk(&self) -> Jwk {
        match &self.signer {
            Signer::Local(key) => key.to_private_jwk(),
            Signer::External(signer) => signer.public_jwk().to_public(),
        }
    }

    /// A new proof (I4, I5): a random `jti`, `iat` from `clock`, `htu` without query or fragment,
    /// the nonce when known, `ath` when an access token is sent. No `iss` (guide errata 2025-06).
    ///
    /// # Errors
    /// When randomness or signing fails.
    /// The signature is made in place, so this works for atoauth's own keys only; a key kept
    /// elsewhere signs through [`proof_async`](Self::proof_async).
    ///
    /// # Errors
    /// When randomness or signing fails, or the key is kept elsewhere.
    pub fn proof(
        &self,
        target: ProofTarget<'_>,
        clock: &dyn Clock,
        random: &dyn Randomness,
    ) -> Result<String, KeyError> {
        let Signer::Local(key) = &self.signer else {
            return Err(KeyError::External(
                "this DPoP key signs asynchronously: use proof_async".to_owned(),
            ));
        };
        self.with_claims(target, clock, random, |claims| {
            self.header.sign(key, claims)
        })
    }

    /// A new proof, as [`proof`](Self::proof), from either kind of key. atoauth's own key signs
    /// at once (no allocation beyond the proof's); a key kept elsewhere is awaited.
    ///
    /// # Errors
    /// When randomness or signing fails.
    pub async fn proof_async(
        &self,
        target: ProofTarget<'_>,
        clock: &dyn Clock,
        random: &dyn Randomness,
    ) -> Result<String, KeyError> {
        match &self.signer {
            Signer::Local(key) => self.with_claims(target, clock, random, |claims| {
                self.header.sign(key, claims)
            }),
            Signer::External(signer) => {
                let mut token = self.with_claims(target, clock, random, |claims| {
                    self.header.signing_input(claims)
                })?;
                let signature = signer.sign(token.as_bytes()).await?;
                if signature.len() != 64 {
                    return Err(KeyError::External(format!(
                        "the signer returned {} bytes, not a 64-byte ES256 signature",
                        signature.len()
                    )));
                }
                JwsHeaderPrefix::append_signature(&mut token, &signature);
                Ok(token)
            }
        }
    }

    fn with_claims<T>(
        &self,
        target: ProofTarget<'_>,
        clock: &dyn Clock,
        random: &dyn Randomness,
        finish: impl FnOnce(&Claims<'_>) -> Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        let jti = random_token(random, 16)?;
        let htu = htu(target.url);
        let claims = Claims {
            jti: &jti,
            htm: target.method,
            htu: &htu,
            iat: clock.unix_time(),
            nonce: target.nonce,
            ath: target.access_token.map(|t| sha256_base64url(t.as_bytes())),
        };
        finish(&claims)
    }
}

/// The proof header, serialised once per key. I3: only the public members go in; a `kid` would
/// be noise.
fn proof_header(public: &Jwk) -> Result<JwsHeaderPrefix, KeyError> {
    let mut jwk = public.to_public();
    jwk.kid = None;
    JwsHeaderPrefix::new(&Header {
        typ: "dpop+jwt",
        alg: "ES256",
        jwk: &jwk,
    })
    .map_err(|e| KeyError::Invalid(e.to_string()))
}

/// The `htu` claim: scheme, host (lower case, as `url` normalises it), non-default port and path;
/// never the query or the fragment (I4; the anchors' bug of sending the query is avoided here).
#[must_use]
pub fn htu(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.into()
}

/// The latest DPoP nonce of each server origin (I6). Cloneable snapshots persist with the
/// session; the cache itself is shared by the requests of one session.
#[derive(Debug, Default)]
pub struct NonceCache {
    nonces: Mutex<BTreeMap<String, String>>,
}

impl NonceCache {
    /// A cache holding `nonces` (origin → nonce), as restored from a store.
    #[must_use]
    pub fn from_map(nonces: BTreeMap<String, String>) -> Self {
        Self {
            nonces: Mutex::new(nonces),
        }
    }

    /// The nonce last seen from `origin`.
    #[must_use]
    pub fn get(&self, origin: &str) -> Option<String> {
        self.lock().get(origin).cloned()
    }

    /// Records the nonce `origin` sent; returns whether it differs from the one held.
    pub fn update(&self, origin: &str, nonce: &str) -> bool {
        let mut nonces = self.lock();
        if nonces.get(origin).map(String::as_str) == Some(nonce) {
            return false;
        }
        nonces.insert(origin.to_owned(), nonce.to_owned());
        true
    }

    /// All nonces, for persisting.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A poisoned map of nonces is still a valid map: a stale nonce costs one retry.
        self.nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use p256::ecdsa::signature::Verifier as _;

    use super::*;
    use crate::testing::{FixedClock, SeededRandomness};

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
    }

    fn proof(url: &str, nonce: Option<&str>, token: Option<&str>) -> (DpopKey, String) {
        let random = SeededRandomness::new(1);
        let key = DpopKey::generate(&random).unwrap();
        let url = Url::parse(url).unwrap();
        let proof = key
            .proof(
                ProofTarget {
                    method: "POST",
                    url: &url,
                    nonce,
                    access_token: token,
                },
                &FixedClock(1_700_000_000),
                &random,
            )
            .unwrap();
        (key, proof)
    }

    #[test]
    fn i3_header_has_typ_alg_and_public_jwk_only() {
        let (key, proof) = proof("https://pds.example/xrpc/a", None, None);
        let header = decode(proof.split('.').next().unwrap());
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert_eq!(header["jwk"]["x"], key.public_jwk().x.as_str());
        assert!(header["jwk"].get("d").is_none());
    }

    #[test]
    fn i4_claims_htu_without_query_and_fragment_lowercase_default_port_dropped() {
        let (_, proof) = proof(
            "HTTPS://PDS.Example:443/xrpc/com.atproto.repo.getRecord?repo=x#frag",
            Some("n-1"),
            None,
        );
        let claims = decode(proof.split('.').nth(1).unwrap());
        assert_eq!(
            claims["htu"],
            "https://pds.example/xrpc/com.atproto.repo.getRecord"
        );
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["nonce"], "n-1");
        assert!(claims.get("ath").is_none());
        assert!(claims.get("iss").is_none());
        assert!(claims["jti"].as_str().unwrap().len() >= 16);
    }

    #[test]
    fn i4_ath_is_s256_of_the_access_token_and_nonce_omitted_when_unknown() {
        let (_, proof) = proof("https://pds.example/xrpc/a", None, Some("at-123"));
        let claims = decode(proof.split('.').nth(1).unwrap());
        assert_eq!(claims["ath"], sha256_base64url(b"at-123"));
        assert!(claims.get("nonce").is_none());
    }

    #[test]
    fn i5_every_proof_has_a_new_jti_and_verifies() {
        let random = SeededRandomness::new(2);
        let key = DpopKey::generate(&random).unwrap();
        let url = Url::parse("https://as.example/oauth/token").unwrap();
        let target = ProofTarget {
            method: "POST",
            url: &url,
            nonce: None,
            access_token: None,
        };
        let clock = FixedClock(1);
        let a = key.proof(target, &clock, &random).unwrap();
        let b = key.proof(target, &clock, &random).unwrap();
        assert_ne!(
            decode(a.split('.').nth(1).unwrap())["jti"],
            decode(b.split('.').nth(1).unwrap())["jti"]
        );

        let jwk = key.public_jwk();
        let mut point = vec![4u8];
        point.extend(Base64UrlUnpadded::decode_vec(&jwk.x).unwrap());
        point.extend(Base64UrlUnpadded::decode_vec(&jwk.y).unwrap());
        let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
        let (signed, signature) = a.rsplit_once('.').unwrap();
        let signature =
            p256::ecdsa::Signature::from_slice(&Base64UrlUnpadded::decode_vec(signature).unwrap())
                .unwrap();
        assert!(verifying.verify(signed.as_bytes(), &signature).is_ok());
    }

    #[test]
    fn i6_nonces_are_kept_per_origin() {
        let cache = NonceCache::default();
        assert!(cache.update("https://as.example", "a1"));
        assert!(!cache.update("https://as.example", "a1"));
        assert!(cache.update("https://pds.example", "p1"));
        assert_eq!(cache.get("https://as.example").as_deref(), Some("a1"));
        assert_eq!(cache.get("https://pds.example").as_deref(), Some("p1"));
        assert_eq!(
            crate::http::origin_of(&Url::parse("https://AS.example:443/oauth/par?x").unwrap()),
            "https://as.example"
        );
    }
}
