//! DPoP proof creation next to a bare ES256 signature of the same bytes, for each signer
//! backend (issue #5: "a proof costs little more than one signature"). Also PKCE and the
//! client assertion.
//!
//! `cargo bench -p atoauth --bench dpop` for figures; CI runs it once in test mode
//! (`cargo test --benches`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future as _;
use std::hint::black_box;
use std::task::{Context, Waker};

use atoauth::protocol::client_auth::Keyset;
use atoauth::protocol::crypto::{Es256Key, SignerBackend, SystemClock};
use atoauth::protocol::dpop::{DpopKey, ProofTarget};
use atoauth::protocol::pkce::Pkce;
use atoauth::testing::SeededRandomness;
use criterion::{Criterion, criterion_group, criterion_main};
use url::Url;

fn backends() -> Vec<(&'static str, SignerBackend)> {
    let mut backends = vec![("p256", SignerBackend::P256)];
    #[cfg(feature = "ring")]
    backends.push(("ring", SignerBackend::Ring));
    backends
}

fn dpop(c: &mut Criterion) {
    let random = SeededRandomness::new(7);
    let clock = SystemClock;
    let url = Url::parse("https://pds.example.com/xrpc/com.atproto.repo.createRecord").unwrap();
    let mut group = c.benchmark_group("dpop");
    for (name, backend) in backends() {
        let key = Es256Key::from_secret_bytes(&[7; 32], backend).unwrap();
        let dpop =
            DpopKey::from_key(Es256Key::from_secret_bytes(&[7; 32], backend).unwrap()).unwrap();
        // The bytes a proof signs are about this long (header + claims with ath and nonce).
        let message = vec![b'a'; 520];
        group.bench_function(format!("es256_signature/{name}"), |b| {
            b.iter(|| key.sign(black_box(&message)));
        });
        let target = ProofTarget {
            method: "POST",
            url: &url,
            nonce: Some("f7d0b3b6-2c9b-4d37-9d5d-2b0f4d1a9c11"),
            access_token: Some("eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9.payload.signature"),
        };
        group.bench_function(format!("proof_with_ath_and_nonce/{name}"), |b| {
            b.iter(|| dpop.proof(black_box(target), &clock, &random));
        });
        // What the client sends through: the async signer path, which for atoauth's own key
        // completes at its first poll.
        group.bench_function(format!("proof_async_with_ath_and_nonce/{name}"), |b| {
            b.iter(|| {
                let proof = std::pin::pin!(dpop.proof_async(black_box(target), &clock, &random));
                proof.poll(&mut Context::from_waker(Waker::noop()))
            });
        });
    }
    group.finish();
}

fn pkce_and_assertion(c: &mut Criterion) {
    let random = SeededRandomness::new(8);
    c.bench_function("pkce/generate", |b| b.iter(|| Pkce::generate(&random)));
    let keys = Keyset::new([
        Es256Key::from_secret_bytes(&[9; 32], SignerBackend::default())
            .unwrap()
            .with_kid("k1"),
    ])
    .unwrap();
    c.bench_function("client_assertion", |b| {
        b.iter(|| {
            keys.assertion(
                "k1",
                "https://app.example.com/oauth-client-metadata.json",
                "https://bsky.social",
                &SystemClock,
                &random,
            )
        });
    });
}

criterion_group!(benches, dpop, pkce_and_assertion);
criterion_main!(benches);
