//! The other hot paths: scope parsing, normalising and matching on realistic scope strings; an
//! identity cache hit; the in-memory stores. `cargo bench -p atoauth --bench core`; CI runs it
//! once in test mode.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use atoauth::http::{HttpClient, HttpError, Request};
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::scope::{Permissions, RepoAction, Scope};
use atoauth::store::{MemorySessionStore, SessionStore};
use atoauth::syntax::{AtIdentifier, Nsid};
use criterion::{Criterion, criterion_group, criterion_main};

const REALISTIC: &str = "atproto repo:app.bsky.feed.post?action=create&action=delete \
    repo:app.bsky.feed.like repo:app.bsky.graph.follow?action=create \
    rpc:app.bsky.actor.getProfile?aud=did:web:api.bsky.app%23bsky_appview \
    blob:image/* account:email identity:handle transition:generic";

fn scopes(c: &mut Criterion) {
    c.bench_function("scope/parse_and_normalise", |b| {
        b.iter(|| Scope::parse(black_box(REALISTIC)).to_string());
    });
    let permissions = Permissions::from(&Scope::parse(REALISTIC));
    let post = Nsid::new("app.bsky.feed.post").unwrap();
    let repost = Nsid::new("app.bsky.feed.repost").unwrap();
    c.bench_function("scope/match_repo_allowed_and_denied", |b| {
        b.iter(|| {
            (
                permissions.allows_repo(black_box(&post), RepoAction::Create),
                permissions.allows_repo(black_box(&repost), RepoAction::Update),
            )
        });
    });
}

fn identity_cache_hit(c: &mut Criterion) {
    let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    let http: Arc<dyn HttpClient> = Arc::new(move |request: Request| {
        let path = request.uri().path().to_owned();
        async move {
            let body = if path.ends_with("resolveHandle") {
                serde_json::json!({"did": did})
            } else {
                serde_json::json!({"id": did, "alsoKnownAs": ["at://alice.example.com"],
                    "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                 "serviceEndpoint": "https://pds.example.com"}]})
            };
            Ok::<_, HttpError>(
                http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body).unwrap())
                    .unwrap(),
            )
        }
    });
    let resolver = IdentityResolver::builder()
        .http_client(http)
        .plc_url("https://plc.example.com".parse().unwrap())
        .handle_resolution(HandleResolution::Service(
            "https://pds.example.com".parse().unwrap(),
        ))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let input = AtIdentifier::new("alice.example.com").unwrap();
    runtime.block_on(resolver.resolve(&input)).unwrap();
    c.bench_function("identity/resolve_cache_hit", |b| {
        b.iter(|| {
            runtime
                .block_on(resolver.resolve(black_box(&input)))
                .unwrap()
        });
    });
}

fn memory_store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = MemorySessionStore::default();
    let session =
        atoauth_testkit::conformance::sample_session("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "s1");
    c.bench_function("store/memory_put", |b| {
        b.iter(|| runtime.block_on(store.upsert(black_box(&session))).unwrap());
    });
    c.bench_function("store/memory_get", |b| {
        b.iter(|| {
            runtime
                .block_on(store.get(&session.did, &session.session_id))
                .unwrap()
        });
    });
}

criterion_group!(benches, scopes, identity_cache_hit, memory_store);
criterion_main!(benches);
