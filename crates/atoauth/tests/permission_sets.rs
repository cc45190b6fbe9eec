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
