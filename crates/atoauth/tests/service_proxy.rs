//! Calling a service through the PDS (`atproto-proxy`) against the official PDS: the header goes
//! out as configured, the PDS answers for the service (with its own error: the harness has no
//! AppView), and what `Permissions::check_rpc` predicts for a granular grant is what the PDS
//! enforces (permission spec §3.15, §9.45, §9.46).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use atoauth::{MemoryStore, OAuthError, nsid};
use atoauth_testkit::pds;

const APPVIEW: &str = "did:web:api.bsky.app";

#[tokio::test]
async fn a_proxied_call_reaches_the_pds_with_the_header_and_gets_its_answer() {
    let pds = pds();
    let http = atoauth_testkit::RecordingHttp::loopback();
    let (_, _, session) = pds
        .signed_in("atproto transition:generic", pds.alice(), &http)
        .await;
    let params = [("actor", pds.alice().did.as_str())];

    // Without the header the PDS answers for itself.
    let own: Result<serde_json::Value, _> =
        session.query("app.bsky.actor.getProfile", &params).await;
    // Through a service of alice's DID document that does not exist: the PDS's own refusal,
    // naming the service it was asked for.
    let alice = pds.alice().did.parse().unwrap();
    let proxied = session.with_proxy(&alice, "bsky_appview").unwrap();
    assert_eq!(
        proxied.proxy(),
        Some(format!("{}#bsky_appview", pds.alice().did).as_str())
    );
    let error = proxied
        .query::<serde_json::Value>("app.bsky.actor.getProfile", &params)
        .await
        .unwrap_err();
    let OAuthError::Xrpc(answer) = &error else {
        panic!("the PDS's own XRPC error, not ours: {error}");
    };
    assert!(
        (400..500).contains(&answer.status),
        "the PDS refuses the unknown service: {answer:?}"
    );
    let own_error = own.err().map(|e| e.to_string());
    assert_ne!(
        Some(error.to_string()),
        own_error,
        "the header changed what the PDS did"
    );
    // What went out: no header on the session's own call, the service on the proxied one.
    let sent: Vec<Option<String>> = http
        .exchanges()
        .into_iter()
        .filter(|e| e.path.ends_with("app.bsky.actor.getProfile"))
        .map(|e| e.proxy)
        .collect();
    assert_eq!(
        sent,
        [None, Some(format!("{}#bsky_appview", pds.alice().did))]
    );
    // The original session is unchanged: no header.
    assert_eq!(session.proxy(), None);
}

#[tokio::test]
async fn check_rpc_predicts_what_the_pds_enforces_for_a_granular_grant() {
    let pds = pds();
    let appview_ref = format!("{APPVIEW}#bsky_appview");
    let scope = format!("atproto rpc:app.bsky.actor.getProfile?aud={appview_ref}");
    let client = pds.loopback_client(&scope, Arc::new(MemoryStore::default()));
    let session = pds.sign_in(&client, pds.bob()).await;
    let get_profile = nsid!("app.bsky.actor.getProfile");
    let get_timeline = nsid!("app.bsky.feed.getTimeline");
    let granted = session.permissions();
    assert_eq!(granted.check_rpc(&get_profile, &appview_ref), Ok(()));
    let missing = granted.check_rpc(&get_timeline, &appview_ref).unwrap_err();
    // The canonical form escapes the `#` of the service reference.
    assert_eq!(
        missing.to_string(),
        "rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app%23bsky_appview"
    );

    // The PDS agrees: the granted method passes its scope check (and then fails to reach an
    // AppView that is not there), the other one is refused with exactly that permission.
    let appview = session
        .with_proxy(&APPVIEW.parse().unwrap(), "bsky_appview")
        .unwrap();
    let params = [("actor", pds.bob().did.as_str())];
    let allowed = appview
        .query::<serde_json::Value>(&get_profile, &params)
        .await
        .unwrap_err();
    assert!(
        !matches!(allowed, OAuthError::ScopeMissing { .. }),
        "granted, so not a scope error: {allowed}"
    );
    let refused = appview
        .query::<serde_json::Value>(&get_timeline, &[])
        .await
        .unwrap_err();
    let OAuthError::ScopeMissing { permission, .. } = refused else {
        panic!("a typed missing scope, got {refused}");
    };
    assert_eq!(*permission, missing);
}

#[tokio::test]
async fn a_proxy_the_pds_would_refuse_is_refused_before_any_call() {
    let pds = pds();
    let client = pds.loopback_client("atproto", Arc::new(MemoryStore::default()));
    let session = pds.sign_in(&client, pds.carol()).await;
    let did = "did:web:api.bsky.app".parse().unwrap();
    for bad in ["", "bsky appview", "a#b"] {
        let error = session.with_proxy(&did, bad).unwrap_err();
        assert!(
            matches!(error, OAuthError::InvalidInput { .. }),
            "{bad:?}: {error}"
        );
    }
    let port = "did:web:example.com%3A8080".parse().unwrap();
    assert!(
        session.with_proxy(&port, "svc").is_err(),
        "§9.46: a port only for localhost"
    );
}

#[tokio::test]
async fn i8_reads_where_the_pds_sends_no_nonce_work_in_the_strict_default() {
    let pds = pds();
    let client = pds.loopback_client(
        "atproto transition:generic",
        Arc::new(MemoryStore::default()),
    );
    let session = pds.sign_in(&client, pds.alice()).await;
    let did = session.did().as_str().to_owned();
    let created: serde_json::Value = session
        .procedure(
            "com.atproto.repo.createRecord",
            &serde_json::json!({
                "repo": did,
                "collection": "app.bsky.feed.post",
                "record": {"$type": "app.bsky.feed.post", "text": "read back", "createdAt": "2026-12-03T00:00:00Z"},
            }),
        )
        .await
        .unwrap();
    let rkey = created["uri"].as_str().unwrap().rsplit('/').next().unwrap();
    let record: serde_json::Value = session
        .query(
            "com.atproto.repo.getRecord",
            &[
                ("repo", &did),
                ("collection", "app.bsky.feed.post"),
                ("rkey", rkey),
            ],
        )
        .await
        .unwrap();
    assert_eq!(record["value"]["text"], "read back");
    let list: serde_json::Value = session
        .query(
            "com.atproto.repo.listRecords",
            &[("repo", &did), ("collection", "app.bsky.feed.post")],
        )
        .await
        .unwrap();
    assert!(list["records"].as_array().is_some_and(|r| !r.is_empty()));
    let repo: serde_json::Value = session
        .query("com.atproto.repo.describeRepo", &[("repo", &did)])
        .await
        .unwrap();
    assert_eq!(repo["did"], did.as_str());
}
