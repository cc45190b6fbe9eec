//! Permission sets end to end against the official PDS (permission spec §5): a set published as
//! a lexicon record in an account's repository, found through its `_lexicon` TXT record (our
//! DNS server for atoauth, the harness's table for the PDS), its record proof verified, the
//! set expanded by atoauth and by the PDS alike; hostile answers refused with typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use atoauth::lexicon::{LexiconError, LexiconResolver, authority_name};
use atoauth::scope::Scope;
use atoauth::{Nsid, nsid};
use atoauth_testkit::{Account, TestDns, pds};
use serde_json::json;

/// A calendar app's permission set: write events and RSVPs, call its AppView methods.
fn calendar_set(id: &str, collections: &[&str]) -> serde_json::Value {
    json!({
        "lexicon": 1,
        "id": id,
        "defs": {"main": {
            "type": "permission-set",
            "title": "Calendar",
            "detail": "Create and manage your events",
            "permissions": [
                {"type": "permission", "resource": "repo", "collection": collections},
                {"type": "permission", "resource": "rpc", "lxm": ["com.example.calendar.getEvents"], "inheritAud": true},
            ],
        }},
    })
}

/// Publishes `document` in `account`'s repository and points `_lexicon.<authority>` at it, for
/// the PDS and for `dns`'s table; returns our resolver.
async fn published(
    account: &Account,
    document: &serde_json::Value,
    dns: &TestDns,
) -> LexiconResolver {
    let pds = pds();
    pds.publish_lexicon(account, document).await;
    let nsid = Nsid::new(document["id"].as_str().unwrap()).unwrap();
    pds.set_txt(&authority_name(&nsid), &[&format!("did={}", account.did)])
        .await;
    LexiconResolver::builder(pds.identity_resolver())
        .dns_resolver(dns.resolver())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_published_set_resolves_with_a_verified_proof_and_expands() {
    let pds = pds();
    let alice = pds.alice();
    let id = "com.example.calendar.auth";
    let txt = format!("did={}", alice.did);
    let dns = TestDns::start(&[("_lexicon.calendar.example.com", &[&[txt.as_str()]])]).await;
    let document = calendar_set(
        id,
        &["com.example.calendar.event", "com.example.calendar.rsvp"],
    );
    let resolver = published(alice, &document, &dns).await;

    let resolved = resolver
        .resolve(&nsid!("com.example.calendar.auth"))
        .await
        .unwrap();
    assert_eq!(resolved.did.as_str(), alice.did);
    assert_eq!(resolved.document["defs"], document["defs"]);
    assert!(resolved.cid.starts_with("bafyrei"), "{}", resolved.cid);

    let scope = Scope::parse(&format!(
        "atproto include:{id}?aud=did:web:calendar.example.com%23calendar_appview"
    ));
    let expanded = scope.expand_includes(&resolver).await.unwrap();
    assert_eq!(
        expanded.to_string(),
        "atproto repo?collection=com.example.calendar.event&collection=com.example.calendar.rsvp \
         rpc:com.example.calendar.getEvents?aud=did:web:calendar.example.com%23calendar_appview"
    );

    // Cached: a second lookup asks DNS nothing.
    let queries = dns.query_count();
    resolver
        .resolve(&nsid!("com.example.calendar.auth"))
        .await
        .unwrap();
    assert_eq!(dns.query_count(), queries);

    // No TXT record: a typed error naming the name asked.
    let error = resolver
        .resolve(&nsid!("org.example.nothing.auth"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LexiconError::Authority { name, .. } if name == "_lexicon.nothing.example.org"),
        "{error}"
    );
}

/// The calendar set's `include:` token, with the audience its rpc member inherits.
const CALENDAR_AUD: &str = "did:web:calendar.example.com%23calendar_appview";

fn create_event(collection: &str, repo: &str) -> serde_json::Value {
    json!({
        "repo": repo,
        "collection": collection,
        "record": {"$type": collection, "name": "standup", "createdAt": "2026-12-03T00:00:00Z"},
    })
}

#[tokio::test]
async fn the_pds_grants_the_expansion_atoauth_predicted_and_re_expands_at_refresh() {
    use std::sync::{Arc, Mutex};

    use atoauth::{LoopbackClient, MemoryStore, OAuthClient, OAuthError, SessionEvent, Store};

    let pds = pds();
    let carol = pds.carol();
    let id = "org.example.planner.auth";
    let txt = format!("did={}", carol.did);
    let dns = TestDns::start(&[("_lexicon.planner.example.org", &[&[txt.as_str()]])]).await;
    let set = |collections: &[&str]| {
        let mut document = calendar_set(id, collections);
        document["defs"]["main"]["permissions"][1]["lxm"] =
            json!(["org.example.planner.getEvents"]);
        document
    };
    let resolver = published(carol, &set(&["org.example.planner.event"]), &dns).await;

    let scope = format!("atproto include:{id}?aud={CALENDAR_AUD}");
    let events: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    let seen = Arc::clone(&events);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let client = OAuthClient::builder()
        .loopback(LoopbackClient::with_scope(&scope).unwrap())
        .insecure_local_pds(pds.plc_url().clone(), pds.pds_url().clone())
        .store(Arc::clone(&store))
        .permission_sets(resolver.clone())
        .on_session_event(Arc::new(move |event: &SessionEvent| {
            seen.lock().unwrap().push(event.clone());
        }))
        .build()
        .unwrap();
    let session = pds.sign_in(&client, pds.bob()).await;

    // The PDS expanded the set itself; it is what atoauth predicted.
    let predicted = Scope::parse(&scope)
        .expand_includes(&resolver)
        .await
        .unwrap();
    assert_eq!(
        session.granted_scope().permissions(),
        predicted.permissions(),
        "granted {}",
        session.granted_scope()
    );
    assert!(
        session.scope_diff().is_complete(),
        "{:?}",
        session.scope_diff()
    );

    // Inside the set: allowed. Outside: the typed missing scope.
    let bob = session.did().as_str().to_owned();
    let _: serde_json::Value = session
        .procedure(
            "com.atproto.repo.createRecord",
            &create_event("org.example.planner.event", &bob),
        )
        .await
        .unwrap();
    let refused = session
        .procedure::<_, serde_json::Value>(
            "com.atproto.repo.createRecord",
            &create_event("org.example.planner.rsvp", &bob),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, OAuthError::ScopeMissing { .. }),
        "{refused}"
    );

    // The author adds RSVPs to the set. The PDS re-expands at the next refresh (once its stored
    // copy is stale), and the session reports the new grant.
    pds.publish_lexicon(
        carol,
        &set(&["org.example.planner.event", "org.example.planner.rsvp"]),
    )
    .await;
    assert!(pds.age_lexicons().await >= 1);
    atoauth_testkit::expire_session(store.as_ref(), session.did(), session.session_id()).await;
    let resumed = client
        .restore(session.did(), session.session_id())
        .await
        .unwrap();
    let _: serde_json::Value = resumed
        .procedure(
            "com.atproto.repo.createRecord",
            &create_event("org.example.planner.rsvp", &bob),
        )
        .await
        .unwrap();
    let changed: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ScopeChanged { before, after, .. } => {
                Some((before.clone(), after.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(
        !changed[0].0.contains("org.example.planner.rsvp"),
        "{changed:?}"
    );
    assert!(
        changed[0].1.contains("org.example.planner.rsvp"),
        "{changed:?}"
    );
}

/// What a hostile lexicon host answers.
#[derive(Clone)]
struct Hostile {
    tamper: atoauth_testkit::repo::Tamper,
    /// The record, as its `id` should be (or not).
    record: serde_json::Value,
    /// Padding that makes the CAR larger than the limit.
    pad: usize,
    delay: std::time::Duration,
}

/// A did:web authority on 127.0.0.1 that serves its DID document and a bent proof of the set
/// `nsid`; the resolver reaches it through its `_lexicon` TXT record.
async fn hostile_resolver(
    nsid: &str,
    hostile: Hostile,
) -> (atoauth_testkit::TestServer, TestDns, LexiconResolver) {
    use std::sync::{Arc, OnceLock};

    use atoauth_testkit::repo::TestRepo;
    use atoauth_testkit::{Reply, TestServer};

    let answers: Arc<OnceLock<(serde_json::Value, Vec<u8>)>> = Arc::default();
    let served = Arc::clone(&answers);
    let delay = hostile.delay;
    let server = TestServer::start(move |request| {
        let (document, car) = served.get().expect("set before any request");
        if request.target == "/.well-known/did.json" {
            Reply::json(document)
        } else if request
            .target
            .starts_with("/xrpc/com.atproto.sync.getRecord")
        {
            Reply::status(200)
                .header("content-type", "application/vnd.ipld.car")
                .body(car.clone())
                .delayed(delay)
        } else {
            Reply::status(404)
        }
    })
    .await;
    let port = server.address().port();
    let did = format!("did:web:localhost%3A{port}");
    let repo = TestRepo::new(&did);
    let mut car = repo.proof(
        &format!("com.atproto.lexicon.schema/{nsid}"),
        &hostile.record,
        &hostile.tamper,
    );
    car.extend(std::iter::repeat_n(0u8, hostile.pad));
    let _ = answers.set((repo.did_document(&format!("http://localhost:{port}")), car));
    let name = authority_name(&Nsid::new(nsid).unwrap());
    let txt = format!("did={did}");
    let dns = TestDns::start(&[(name.as_str(), &[&[txt.as_str()]])]).await;
    let resolver = LexiconResolver::builder(pds().identity_resolver())
        .dns_resolver(dns.resolver())
        .timeout(std::time::Duration::from_millis(500))
        .max_bytes(64 * 1024)
        .build()
        .unwrap();
    (server, dns, resolver)
}

fn honest(nsid: &str) -> Hostile {
    let mut record = calendar_set(nsid, &["net.example.hostile.event"]);
    record["$type"] = "com.atproto.lexicon.schema".into();
    Hostile {
        tamper: atoauth_testkit::repo::Tamper::None,
        record,
        pad: 0,
        delay: std::time::Duration::ZERO,
    }
}

#[tokio::test]
async fn an_honest_hand_made_proof_verifies() {
    // The baseline for the hostile cases below: the same server, nothing bent.
    let nsid = "net.example.hostile.auth";
    let (_server, _dns, resolver) = hostile_resolver(nsid, honest(nsid)).await;
    let set = resolver
        .permission_set(&Nsid::new(nsid).unwrap())
        .await
        .unwrap();
    assert_eq!(set.title.as_deref(), Some("Calendar"));
}

#[tokio::test]
async fn bent_proofs_are_refused_with_typed_errors() {
    use atoauth_testkit::repo::Tamper;

    let nsid = "net.example.hostile.auth";
    let cases = [
        (Tamper::BadSignature, "signature"),
        (Tamper::HighS, "signature"),
        (Tamper::SwappedRecordBlock, "does not hash"),
        (
            Tamper::CommitDid("did:plc:ewvi7nxzyoun6zhxrhs64oiz".into()),
            "the commit is did:plc:ewvi7nxzyoun6zhxrhs64oiz's",
        ),
    ];
    for (tamper, expected) in cases {
        let hostile = Hostile {
            tamper: tamper.clone(),
            ..honest(nsid)
        };
        let (_server, _dns, resolver) = hostile_resolver(nsid, hostile).await;
        let error = resolver
            .resolve(&Nsid::new(nsid).unwrap())
            .await
            .unwrap_err();
        let LexiconError::Proof { reason, .. } = &error else {
            panic!("{tamper:?}: a proof error, got {error}");
        };
        assert!(reason.contains(expected), "{tamper:?}: {reason}");
    }

    // The record moved to another key: the signed tree proves there is none at this one.
    let hostile = Hostile {
        tamper: Tamper::KeyPath("com.atproto.lexicon.schema/net.example.hostile.zzz".into()),
        ..honest(nsid)
    };
    let (_server, _dns, resolver) = hostile_resolver(nsid, hostile).await;
    let error = resolver
        .resolve(&Nsid::new(nsid).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, LexiconError::NotPublished { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn wrong_documents_oversized_and_slow_answers_are_refused() {
    let nsid = "net.example.hostile.auth";
    let id = Nsid::new(nsid).unwrap();

    // id ≠ rkey.
    let mut hostile = honest(nsid);
    hostile.record["id"] = "net.example.hostile.elsewhere".into();
    let (_s, _d, resolver) = hostile_resolver(nsid, hostile).await;
    let error = resolver.resolve(&id).await.unwrap_err();
    assert!(
        matches!(&error, LexiconError::Document { reason, .. } if reason.contains("record key")),
        "{error}"
    );

    // A lexicon whose main definition is not a permission set.
    let mut hostile = honest(nsid);
    hostile.record["defs"]["main"] =
        json!({"type": "query", "output": {"encoding": "application/json"}});
    let (_s, _d, resolver) = hostile_resolver(nsid, hostile).await;
    assert!(
        resolver.resolve(&id).await.is_ok(),
        "a lexicon all the same"
    );
    let error = resolver.permission_set(&id).await.unwrap_err();
    assert!(
        matches!(&error, LexiconError::Document { reason, .. } if reason.contains("permission-set")),
        "{error}"
    );

    // Oversized: more than the limit is never read whole.
    let mut hostile = honest(nsid);
    hostile.pad = 200 * 1024;
    let (_s, _d, resolver) = hostile_resolver(nsid, hostile).await;
    let error = resolver.resolve(&id).await.unwrap_err();
    assert!(
        matches!(&error, LexiconError::Fetch { reason, .. } if reason.contains("exceeds")),
        "{error}"
    );

    // Slow: cut off at the timeout.
    let mut hostile = honest(nsid);
    hostile.delay = std::time::Duration::from_secs(3);
    let (_s, _d, resolver) = hostile_resolver(nsid, hostile).await;
    let started = std::time::Instant::now();
    let error = resolver.resolve(&id).await.unwrap_err();
    assert!(matches!(error, LexiconError::Fetch { .. }), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_txt_record_naming_another_repository_finds_no_set() {
    // The TXT record names bob, whose repository has no such lexicon: the PDS says so.
    let pds = pds();
    let txt = format!("did={}", pds.bob().did);
    let dns = TestDns::start(&[("_lexicon.elsewhere.example.net", &[&[txt.as_str()]])]).await;
    let resolver = LexiconResolver::builder(pds.identity_resolver())
        .dns_resolver(dns.resolver())
        .build()
        .unwrap();
    let error = resolver
        .resolve(&nsid!("net.example.elsewhere.auth"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LexiconError::NotPublished { did, .. } if did.as_str() == pds.bob().did),
        "{error}"
    );
}

#[test]
fn an_include_among_a_set_s_members_is_dropped_not_followed() {
    // The format has no nested sets: an `include` member grants nothing, so there is no loop.
    let mut document = calendar_set("com.example.loop.auth", &["com.example.loop.event"]);
    document["defs"]["main"]["permissions"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"type": "permission", "resource": "include", "nsid": "com.example.loop.auth"}),
        );
    let set = atoauth::scope::PermissionSet::from_lexicon(&document).unwrap();
    let atoauth::Permission::Include(include) =
        atoauth::Permission::parse("include:com.example.loop.auth").unwrap()
    else {
        unreachable!()
    };
    let granted = set.expand(&include);
    assert_eq!(granted.len(), 1, "only the repo member: {granted:?}");
}

#[tokio::test]
async fn bluesky_s_own_sets_expand_here_as_the_pds_expands_them() {
    use std::sync::Arc;

    use atoauth::{LoopbackClient, MemoryStore, OAuthClient};

    // Bluesky's app.bsky.auth* permission sets, as @atproto/pds ships them (testdata/lexicon/
    // bluesky), published in alice's repository under `_lexicon.bsky.app` for this test.
    let pds = pds();
    let alice = pds.alice();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/lexicon/bluesky");
    let mut sets = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let document: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        pds.publish_lexicon(alice, &document).await;
        sets.push(document["id"].as_str().unwrap().to_owned());
    }
    sets.sort();
    assert_eq!(sets.len(), 9, "{sets:?}");
    let txt = format!("did={}", alice.did);
    pds.set_txt("_lexicon.bsky.app", &[&txt]).await;
    let dns = TestDns::start(&[("_lexicon.bsky.app", &[&[txt.as_str()]])]).await;
    let resolver = LexiconResolver::builder(pds.identity_resolver())
        .dns_resolver(dns.resolver())
        .build()
        .unwrap();

    for set in &sets {
        let scope = format!("atproto include:{set}?aud=did:web:api.bsky.app%23bsky_appview");
        let predicted = Scope::parse(&scope)
            .expand_includes(&resolver)
            .await
            .unwrap();
        let client = OAuthClient::builder()
            .loopback(LoopbackClient::with_scope(&scope).unwrap())
            .insecure_local_pds(pds.plc_url().clone(), pds.pds_url().clone())
            .store(Arc::new(MemoryStore::default()))
            .permission_sets(resolver.clone())
            .build()
            .unwrap();
        let session = pds.sign_in(&client, pds.bob()).await;
        assert_eq!(
            session.granted_scope().permissions(),
            predicted.permissions(),
            "{set}: the PDS granted {}, atoauth predicted {predicted}",
            session.granted_scope()
        );
        assert!(session.scope_diff().is_complete(), "{set}");
        session.sign_out().await.unwrap();
    }
}
