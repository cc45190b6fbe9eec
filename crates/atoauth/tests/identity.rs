//! Identity resolution against in-process DNS and HTTP servers on 127.0.0.1 (identity spec D–I).
// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atoauth::http::{HardenedClient, HttpClient, HttpError, TargetPolicy};
use atoauth::identity::{HandleResolution, IdentityError, IdentityResolver};
use atoauth::syntax::{AtIdentifier, Did, Handle};
use atoauth_testkit::{Reply, TestDns, TestServer};
use serde_json::json;

const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const BOB: &str = "did:plc:bobbobbobbobbobbobbobbob";

fn document(did: &str, handle: &str) -> serde_json::Value {
    json!({
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example.com"}]
    })
}

/// A PLC directory serving the given documents; unknown DIDs get 404, `did:plc:gone…` 410.
async fn plc(documents: Vec<serde_json::Value>) -> TestServer {
    TestServer::start(move |request| {
        let did = request.target.trim_start_matches('/');
        if did.starts_with("did:plc:gone") {
            return Reply::status(410);
        }
        documents
            .iter()
            .find(|d| d["id"] == did)
            .map_or_else(|| Reply::status(404), Reply::json)
    })
    .await
}

fn loopback_http() -> Arc<dyn HttpClient> {
    Arc::new(
        HardenedClient::builder()
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
            .build()
            .unwrap(),
    )
}

/// A resolver using `dns` for TXT, `well_known` for every handle's well-known, `plc` as the
/// directory. The PDS endpoints in the documents are https, which the strict check accepts.
fn resolver(dns: &TestDns, well_known: &TestServer, plc: &TestServer) -> IdentityResolver {
    IdentityResolver::builder()
        .http_client(loopback_http())
        .dns_resolver(dns.resolver())
        .insecure_handle_well_known_base(well_known.url())
        .plc_url(plc.url())
        .fetch_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn handle(s: &str) -> Handle {
    Handle::new(s).unwrap()
}

fn id(s: &str) -> AtIdentifier {
    AtIdentifier::new(s).unwrap()
}

async fn not_found_server() -> TestServer {
    TestServer::start(|_| Reply::status(404)).await
}

#[tokio::test]
async fn d16_one_txt_record_resolves_and_verifies() {
    let dns = TestDns::start(&[("_atproto.alice.example.com", &[&["did=", ALICE]])]).await;
    let (well_known, plc) = (
        not_found_server().await,
        plc(vec![document(ALICE, "alice.example.com")]).await,
    );
    let identity = resolver(&dns, &well_known, &plc)
        .resolve(&AtIdentifier::from_login_input("@Alice.Example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(identity.did.as_str(), ALICE);
    assert!(identity.handle_verified);
    assert_eq!(identity.display_handle(), "alice.example.com");
    assert_eq!(identity.pds.as_str(), "https://pds.example.com/");
}

#[tokio::test]
async fn d16_no_record_two_conflicting_and_malformed() {
    let dns = TestDns::start(&[
        (
            "_atproto.two.example.com",
            &[&[&format!("did={ALICE}")], &[&format!("did={BOB}")]],
        ),
        (
            "_atproto.same.example.com",
            &[
                &[&format!("did={ALICE}")],
                &[&format!("did={ALICE}")],
                &["other=x"],
            ],
        ),
        ("_atproto.bad.example.com", &[&["did=not-a-did"]]),
        ("_atproto.key.example.com", &[&["did=did:key:zQ3sh"]]),
        ("_atproto.noise.example.com", &[&["v=spf1 -all"]]),
    ])
    .await;
    let (well_known, plc) = (not_found_server().await, plc(vec![]).await);
    let resolver = resolver(&dns, &well_known, &plc);
    let error = resolver
        .resolve_handle(&handle("none.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleNotFound { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_handle(&handle("noise.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleNotFound { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_handle(&handle("two.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleAmbiguous { .. }),
        "{error}"
    );
    // The same DID twice is not a conflict; other TXT records are ignored.
    assert_eq!(
        resolver
            .resolve_handle(&handle("same.example.com"))
            .await
            .unwrap()
            .as_str(),
        ALICE
    );
    let error = resolver
        .resolve_handle(&handle("bad.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::InvalidDocument { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_handle(&handle("key.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::UnsupportedDidMethod { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn d17_well_known_when_dns_has_nothing_and_d18_dns_preferred() {
    let dns = TestDns::start(&[("_atproto.both.example.com", &[&[&format!("did={ALICE}")]])]).await;
    let well_known = TestServer::start(|request| {
        assert_eq!(request.target, "/.well-known/atproto-did");
        match request.headers.get("host").map(String::as_str) {
            Some("web.example.com") => Reply::text(&format!("  {BOB}\n")),
            Some("both.example.com") => Reply::text(BOB),
            _ => Reply::status(404),
        }
    })
    .await;
    let plc = plc(vec![]).await;
    let resolver = resolver(&dns, &well_known, &plc);
    assert_eq!(
        resolver
            .resolve_handle(&handle("web.example.com"))
            .await
            .unwrap()
            .as_str(),
        BOB
    );
    assert_eq!(
        resolver
            .resolve_handle(&handle("both.example.com"))
            .await
            .unwrap()
            .as_str(),
        ALICE
    );
}

#[tokio::test]
async fn d17_well_known_redirects_a_few_hops_only() {
    let dns = TestDns::start(&[]).await;
    let well_known = TestServer::start(|request| {
        let host = request.headers.get("host").cloned().unwrap_or_default();
        match (host.as_str(), request.target.as_str()) {
            ("hop.example.com", "/.well-known/atproto-did") => Reply::redirect(302, "/one"),
            (_, "/one") => Reply::redirect(301, "/two"),
            (_, "/two") => Reply::text(ALICE),
            ("loop.example.com", _) => Reply::redirect(302, "/.well-known/atproto-did"),
            ("private.example.com", _) => {
                Reply::redirect(302, "http://10.0.0.1/.well-known/atproto-did")
            }
            _ => Reply::status(404),
        }
    })
    .await;
    let plc = plc(vec![]).await;
    let resolver = resolver(&dns, &well_known, &plc);
    assert_eq!(
        resolver
            .resolve_handle(&handle("hop.example.com"))
            .await
            .unwrap()
            .as_str(),
        ALICE
    );
    let error = resolver
        .resolve_handle(&handle("loop.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleNotFound { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_handle(&handle("private.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::ForbiddenTarget { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn s1_oversized_and_slow_well_known_answers() {
    let dns = TestDns::start(&[]).await;
    let well_known =
        TestServer::start(
            |request| match request.headers.get("host").map(String::as_str) {
                Some("big.example.com") => Reply::text(&"x".repeat(100_000)),
                Some("slow.example.com") => Reply::text(ALICE).delayed(Duration::from_secs(3)),
                _ => Reply::status(404),
            },
        )
        .await;
    let plc = plc(vec![]).await;
    let resolver = resolver(&dns, &well_known, &plc);
    let error = resolver
        .resolve_handle(&handle("big.example.com"))
        .await
        .unwrap_err();
    assert!(matches!(error, IdentityError::TooLarge { .. }), "{error}");
    let error = resolver
        .resolve_handle(&handle("slow.example.com"))
        .await
        .unwrap_err();
    assert!(matches!(error, IdentityError::Timeout { .. }), "{error}");
}

#[tokio::test]
async fn a8_reserved_handles_are_never_looked_up() {
    let dns = TestDns::start(&[]).await;
    let (well_known, plc) = (not_found_server().await, plc(vec![]).await);
    let resolver = resolver(&dns, &well_known, &plc);
    for reserved in ["laptop.local", "handle.invalid", "blah.arpa"] {
        let error = resolver
            .resolve_handle(&handle(reserved))
            .await
            .unwrap_err();
        assert!(
            matches!(error, IdentityError::ReservedHandle { .. }),
            "{error}"
        );
    }
    assert_eq!(dns.query_count(), 0);
    assert_eq!(well_known.request_count(), 0);
}

#[tokio::test]
async fn e22_plc_status_codes_and_e24_document_id() {
    let dns = TestDns::start(&[]).await;
    let well_known = not_found_server().await;
    let plc = TestServer::start(|request| match request.target.as_str() {
        "/did:plc:unknownunknownunknownunk" => Reply::status(404),
        "/did:plc:gonegonegonegonegonegone" => Reply::status(410),
        "/did:plc:mismatchmismatchmismatch" => Reply::json(&document(ALICE, "a.example.com")),
        "/did:plc:htmlhtmlhtmlhtmlhtmlhtml" => {
            Reply::text("<html>").header("content-type", "text/html")
        }
        "/did:plc:brokenbrokenbrokenbroken" => Reply::status(503),
        _ => Reply::json(&document(ALICE, "a.example.com")),
    })
    .await;
    let resolver = resolver(&dns, &well_known, &plc);
    let did = |s: &str| Did::new(s).unwrap();
    let error = resolver
        .resolve_did(&did("did:plc:unknownunknownunknownunk"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::DidNotFound { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_did(&did("did:plc:gonegonegonegonegonegone"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::DidTombstoned { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_did(&did("did:plc:mismatchmismatchmismatch"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::DidDocIdMismatch { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_did(&did("did:plc:htmlhtmlhtmlhtmlhtmlhtml"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::InvalidDocument { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_did(&did("did:plc:brokenbrokenbrokenbroken"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::UnexpectedStatus { status: 503, .. }),
        "{error}"
    );
    let error = resolver
        .resolve_did(&did("did:key:zQ3sh"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::UnsupportedDidMethod { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn e23_did_web_on_localhost_in_insecure_mode_without_redirects() {
    let server = TestServer::start(|request| match request.target.as_str() {
        "/.well-known/did.json" => Reply::status(302).header("location", "/elsewhere.json"),
        _ => Reply::status(404),
    })
    .await;
    let port = server.address().port();
    let redirecting = Did::new(&format!("did:web:localhost%3A{port}")).unwrap();
    let resolver = IdentityResolver::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .handle_resolution(HandleResolution::Service(server.url()))
        .build()
        .unwrap();
    let error = resolver.resolve_did(&redirecting).await.unwrap_err();
    // E.23: no redirects for DID documents; the refusal is typed.
    assert!(
        matches!(error, IdentityError::ForbiddenTarget { .. }),
        "{error}"
    );

    let doc = document(&format!("did:web:localhost%3A{port}"), "web.example.com");
    let good = TestServer::start(move |_| Reply::json(&doc)).await;
    let did = Did::new(&format!("did:web:localhost%3A{}", good.address().port())).unwrap();
    // This server answers every path with the document, whose id names the other port.
    let error = resolver.resolve_did(&did).await.unwrap_err();
    assert!(
        matches!(error, IdentityError::DidDocIdMismatch { .. }),
        "{error}"
    );

    let strict = IdentityResolver::builder()
        .handle_resolution(HandleResolution::Service(server.url()))
        .build()
        .unwrap();
    let error = strict.resolve_did(&did).await.unwrap_err();
    assert!(
        matches!(error, IdentityError::UnsupportedDidMethod { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn g31_a_handle_the_document_does_not_claim_is_refused() {
    let dns = TestDns::start(&[(
        "_atproto.mallory.example.com",
        &[&[&format!("did={ALICE}")]],
    )])
    .await;
    let (well_known, plc) = (
        not_found_server().await,
        plc(vec![document(ALICE, "alice.example.com")]).await,
    );
    let error = resolver(&dns, &well_known, &plc)
        .resolve(&id("mallory.example.com"))
        .await
        .unwrap_err();
    match error {
        IdentityError::HandleMismatch {
            handle,
            did,
            claimed,
        } => {
            assert_eq!(handle, "mallory.example.com");
            assert_eq!(did, ALICE);
            assert_eq!(claimed, "alice.example.com");
        }
        other => panic!("expected HandleMismatch, got {other}"),
    }
}

#[tokio::test]
async fn g32_from_a_did_an_unverified_handle_shows_as_invalid() {
    let dns = TestDns::start(&[
        ("_atproto.alice.example.com", &[&[&format!("did={ALICE}")]]),
        (
            "_atproto.claimed.example.com",
            &[&[&format!("did={ALICE}")]],
        ),
    ])
    .await;
    let (well_known, plc) = (
        not_found_server().await,
        plc(vec![
            document(ALICE, "alice.example.com"),
            document(BOB, "claimed.example.com"),
        ])
        .await,
    );
    let resolver = resolver(&dns, &well_known, &plc);
    let alice = resolver.resolve(&id(ALICE)).await.unwrap();
    assert!(alice.handle_verified);
    assert_eq!(alice.display_handle(), "alice.example.com");
    // Bob's document claims a handle that resolves to Alice: the DID login may go on, the
    // handle may not be shown.
    let bob = resolver.resolve(&id(BOB)).await.unwrap();
    assert!(!bob.handle_verified);
    assert_eq!(bob.handle.unwrap().as_str(), "claimed.example.com");
    assert_eq!(
        resolver.resolve(&id(BOB)).await.unwrap().display_handle(),
        "handle.invalid"
    );
}

#[tokio::test]
async fn f27_a_document_without_a_pds_is_an_error() {
    let dns = TestDns::start(&[]).await;
    let mut doc = document(ALICE, "alice.example.com");
    doc["service"] = json!([]);
    let (well_known, plc) = (not_found_server().await, plc(vec![doc]).await);
    let error = resolver(&dns, &well_known, &plc)
        .resolve(&id(ALICE))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::NoPdsEndpoint { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn h34_a_thousand_concurrent_lookups_make_one_request_each_way() {
    let dns =
        TestDns::start(&[("_atproto.alice.example.com", &[&[&format!("did={ALICE}")]])]).await;
    let well_known =
        TestServer::start(|_| Reply::status(404).delayed(Duration::from_millis(100))).await;
    let doc = document(ALICE, "alice.example.com");
    let plc =
        TestServer::start(move |_| Reply::json(&doc).delayed(Duration::from_millis(100))).await;
    let resolver = resolver(&dns, &well_known, &plc);
    let lookups = (0..1000).map(|_| {
        let resolver = resolver.clone();
        tokio::spawn(async move { resolver.resolve(&id("alice.example.com")).await })
    });
    for lookup in lookups.collect::<Vec<_>>() {
        assert_eq!(lookup.await.unwrap().unwrap().did.as_str(), ALICE);
    }
    assert_eq!(
        plc.request_count(),
        1,
        "one document fetch for 1,000 lookups"
    );
    assert_eq!(
        well_known.request_count(),
        1,
        "one well-known fetch for 1,000 lookups"
    );
    assert_eq!(dns.query_count(), 1, "one DNS query for 1,000 lookups");
}

#[tokio::test]
async fn h35_misses_are_cached_briefly_and_fresh_lookups_bypass_the_cache() {
    let dns = TestDns::start(&[]).await;
    let (well_known, plc) = (
        not_found_server().await,
        plc(vec![document(ALICE, "a.example.com")]).await,
    );
    let resolver = IdentityResolver::builder()
        .http_client(loopback_http())
        .dns_resolver(dns.resolver())
        .insecure_handle_well_known_base(well_known.url())
        .plc_url(plc.url())
        .miss_ttl(Duration::from_millis(200))
        .build()
        .unwrap();
    let unknown = Did::new("did:plc:unknownunknownunknownunk").unwrap();
    for _ in 0..3 {
        assert!(resolver.resolve_did(&unknown).await.is_err());
    }
    assert_eq!(plc.request_count(), 1, "the miss is cached");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(resolver.resolve_did(&unknown).await.is_err());
    assert_eq!(plc.request_count(), 2, "the miss expired");

    let alice = Did::new(ALICE).unwrap();
    resolver.resolve_did(&alice).await.unwrap();
    resolver.resolve_did(&alice).await.unwrap();
    assert_eq!(plc.request_count(), 3, "the hit is cached");
    resolver
        .resolve_fresh(&AtIdentifier::Did(alice))
        .await
        .unwrap();
    assert_eq!(
        plc.request_count(),
        4,
        "resolve_fresh goes to the directory"
    );
}

#[tokio::test]
async fn d20_service_resolution_is_the_only_method_when_configured() {
    let dns = TestDns::start(&[("_atproto.alice.example.com", &[&[&format!("did={BOB}")]])]).await;
    let service = TestServer::start(|request| {
        if request.target == "/xrpc/com.atproto.identity.resolveHandle?handle=alice.example.com" {
            Reply::json(&json!({"did": ALICE}))
        } else {
            Reply::status(400)
                .body(r#"{"error":"InvalidRequest","message":"Unable to resolve handle"}"#)
        }
    })
    .await;
    let resolver = IdentityResolver::builder()
        .http_client(loopback_http())
        .dns_resolver(dns.resolver())
        .handle_resolution(HandleResolution::Service(service.url()))
        .build()
        .unwrap();
    assert_eq!(
        resolver
            .resolve_handle(&handle("alice.example.com"))
            .await
            .unwrap()
            .as_str(),
        ALICE
    );
    let error = resolver
        .resolve_handle(&handle("nobody.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleNotFound { .. }),
        "{error}"
    );
    assert_eq!(dns.query_count(), 0, "DNS is not asked");

    let fallback = IdentityResolver::builder()
        .http_client(loopback_http())
        .dns_resolver(dns.resolver())
        .insecure_handle_well_known_base(service.url())
        .handle_resolution(HandleResolution::DnsAndWellKnownThenService(service.url()))
        .build()
        .unwrap();
    // DNS answers first; the service is only a fallback.
    assert_eq!(
        fallback
            .resolve_handle(&handle("alice.example.com"))
            .await
            .unwrap()
            .as_str(),
        BOB
    );
}

// --- S1: the hardened path refuses private targets without connecting to them ---

async fn refused(client: &HardenedClient, url: &str) -> HttpError {
    let request = http::Request::get(url).body(Default::default()).unwrap();
    client.send(request).await.unwrap_err()
}

#[tokio::test]
async fn s1_private_addresses_are_refused_at_resolution_and_as_literals() {
    // The resolver maps names to private addresses; the policy refuses them before any
    // connection is attempted, so no packet leaves for 10.x or 169.254.x.
    let private: SocketAddr = "10.1.2.3:443".parse().unwrap();
    let metadata: SocketAddr = "169.254.169.254:443".parse().unwrap();
    let loopback: SocketAddr = "127.0.0.1:443".parse().unwrap();
    let strict = HardenedClient::builder()
        .resolve_override("intranet.example.com", vec![private])
        .resolve_override("rebind.example.com", vec![metadata, private])
        .resolve_override("local.example.com", vec![loopback])
        .build()
        .unwrap();
    for url in [
        "https://intranet.example.com/",
        "https://rebind.example.com/.well-known/did.json",
        "https://local.example.com/",
        "https://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/",
        "https://[fd00::1]/",
        "https://0.0.0.0/",
        "https://user:pass@example.com/",
    ] {
        let error = refused(&strict, url).await;
        assert!(
            matches!(error, HttpError::ForbiddenTarget { .. }),
            "{url}: {error}"
        );
    }
    let error = refused(&strict, "http://example.com/").await;
    assert!(
        matches!(error, HttpError::ForbiddenTarget { .. }),
        "http refused: {error}"
    );

    // Insecure development mode allows loopback and http, never private ranges.
    let dev = HardenedClient::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .resolve_override("intranet.example.com", vec![private])
        .build()
        .unwrap();
    for url in [
        "http://intranet.example.com/",
        "http://10.0.0.1/",
        "http://[fe80::1]/",
    ] {
        let error = refused(&dev, url).await;
        assert!(
            matches!(error, HttpError::ForbiddenTarget { .. }),
            "{url}: {error}"
        );
    }
}

#[tokio::test]
async fn s1_metadata_fetches_refuse_redirects_and_oversized_bodies() {
    let server = TestServer::start(|request| match request.target.as_str() {
        "/redirect" => Reply::redirect(302, "/ok"),
        "/big" => Reply::status(200).body(vec![b'x'; 70_000]),
        _ => Reply::text("ok"),
    })
    .await;
    let client = HardenedClient::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .build()
        .unwrap();
    let get = |path: &str| {
        let mut request = http::Request::get(server.url().join(path).unwrap().as_str())
            .body(Default::default())
            .unwrap();
        atoauth::http::FetchLimits::METADATA.apply(&mut request);
        client.send(request)
    };
    let error = get("/redirect").await.unwrap_err();
    assert!(
        matches!(error, HttpError::Redirect { .. }),
        "a metadata fetch refuses redirects: {error}"
    );
    assert!(matches!(
        get("/big").await.unwrap_err(),
        HttpError::TooLarge { limit: 65536, .. }
    ));
    assert_eq!(get("/ok").await.unwrap().body(), b"ok");
}
