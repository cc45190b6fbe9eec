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
async fn published(account: &Account, document: &serde_json::Value, dns: &TestDns) -> LexiconResolver {
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
    let document = calendar_set(id, &["com.example.calendar.event", "com.example.calendar.rsvp"]);
    let resolver = published(alice, &document, &dns).await;

    let resolved = resolver.resolve(&nsid!("com.example.calendar.auth")).await.unwrap();
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
    resolver.resolve(&nsid!("com.example.calendar.auth")).await.unwrap();
    assert_eq!(dns.query_count(), queries);

    // No TXT record: a typed error naming the name asked.
    let error = resolver.resolve(&nsid!("org.example.nothing.auth")).await.unwrap_err();
    assert!(
        matches!(&error, LexiconError::Authority { name, .. } if name == "_lexicon.nothing.example.org"),
        "{error}"
    );
}
