//! `atoauth serve` with several accounts per browser and scope upgrades (issue #15, item 2),
//! against the official PDS: switching, signing out one or all, the least recently used
//! account revoked beyond the limit, and a larger scope that replaces the older session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use atoauth::store::SessionStore;
use atoauth_testkit::pds;
use common::serve::{Serve, Visitor};
use serde_json::{Value, json};

/// The handle on the home page (the active account), or `None` when signed out.
async fn active_handle(visitor: &mut Visitor) -> Option<String> {
    let page = visitor.get("/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let marker = "<span id=handle>";
    let start = page.body.find(marker)? + marker.len();
    page.body[start..].split('<').next().map(str::to_owned)
}

/// The DIDs with a stored OAuth session, sorted.
async fn stored_dids(store: &atoauth_sqlx::SqliteStore) -> Vec<String> {
    let mut dids: Vec<String> = store
        .list_all()
        .await
        .unwrap()
        .iter()
        .map(|s| s.did.to_string())
        .collect();
    dids.sort();
    dids
}

fn sorted(mut dids: Vec<String>) -> Vec<String> {
    dids.sort();
    dids
}

async fn form(visitor: &mut Visitor, path: &str, fields: &[(&str, &str)]) -> u16 {
    let csrf = Visitor::csrf(&visitor.get("/").await);
    let base = visitor.base.clone();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    visitor.post(path, Some(&base), &all).await.status
}

#[tokio::test]
async fn a_browser_holds_several_accounts_switches_between_them_and_signs_out_one_or_all() {
    let pds = pds();
    let (alice, bob, carol) = (pds.alice(), pds.bob(), pds.carol());
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &["--accounts-per-browser", "2"]);
    let store = atoauth_sqlx::SqliteStore::open(&data.path().join("atoauth.db"))
        .await
        .unwrap();
    let mut visitor = Visitor::new(&serve.url);

    visitor.sign_in(alice).await;
    visitor.sign_in(bob).await;
    assert_eq!(
        active_handle(&mut visitor).await.as_deref(),
        Some("bob.test")
    );
    let home = visitor.get("/").await.body;
    assert!(
        home.contains("<span class=account>alice.test</span>"),
        "{home}"
    );
    assert_eq!(
        stored_dids(&store).await,
        sorted(vec![alice.did.to_string(), bob.did.to_string()])
    );

    // Switching: only to an account the browser holds, only from our own pages.
    assert_eq!(
        form(
            &mut visitor,
            "/oauth/switch",
            &[("did", alice.did.as_str())]
        )
        .await,
        303
    );
    assert_eq!(
        active_handle(&mut visitor).await.as_deref(),
        Some("alice.test")
    );
    assert_eq!(
        form(
            &mut visitor,
            "/oauth/switch",
            &[("did", carol.did.as_str())]
        )
        .await,
        400
    );
    let csrf = Visitor::csrf(&visitor.get("/").await);
    let cross_site = visitor
        .post(
            "/oauth/switch",
            Some("https://evil.example"),
            &[("csrf", &csrf), ("did", bob.did.as_str())],
        )
        .await;
    assert_eq!(cross_site.status, 403);
    assert_eq!(
        active_handle(&mut visitor).await.as_deref(),
        Some("alice.test")
    );

    // A third account beyond the limit of two: bob, used least recently, is signed out.
    visitor.sign_in(carol).await;
    assert_eq!(
        active_handle(&mut visitor).await.as_deref(),
        Some("carol.test")
    );
    assert_eq!(
        stored_dids(&store).await,
        sorted(vec![alice.did.to_string(), carol.did.to_string()])
    );

    // Signing out signs out the active account; the other one becomes active.
    assert_eq!(form(&mut visitor, "/oauth/logout", &[]).await, 303);
    assert_eq!(
        active_handle(&mut visitor).await.as_deref(),
        Some("alice.test")
    );
    assert_eq!(stored_dids(&store).await, [alice.did.to_string()]);

    // Signing out of all of them ends the browser session.
    visitor.sign_in(bob).await;
    assert_eq!(stored_dids(&store).await.len(), 2);
    assert_eq!(
        form(&mut visitor, "/oauth/logout", &[("all", "1")]).await,
        303
    );
    assert!(visitor.cookie.is_none(), "the cookie is cleared");
    assert_eq!(active_handle(&mut visitor).await, None);
    assert!(stored_dids(&store).await.is_empty());
}

/// The home page's list of granted permissions.
fn granted(home: &str) -> &str {
    let start = home
        .find("<ul id=permissions>")
        .expect("the permissions list");
    let end = start + home[start..].find("</ul>").expect("its end");
    &home[start..end]
}

const BASE_SCOPE: &str = "atproto repo:app.bsky.feed.post?action=create";
const LARGER_SCOPE: &str =
    "atproto repo:app.bsky.feed.post?action=create repo:app.bsky.feed.like?action=create";

/// Creates a like through the app's XRPC proxy; the PDS's status.
async fn like(visitor: &Visitor, did: &str) -> u16 {
    let body = json!({
        "repo": did,
        "collection": "app.bsky.feed.like",
        "record": {
            "$type": "app.bsky.feed.like",
            "subject": {
                "uri": format!("at://{did}/app.bsky.feed.post/3jzfcijpj2z2a"),
                "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
            },
            "createdAt": "2026-12-02T00:00:00.000Z",
        },
    });
    let response = visitor
        .http
        .post(format!(
            "{}/xrpc/com.atproto.repo.createRecord",
            visitor.base
        ))
        .header("cookie", visitor.cookie.clone().unwrap())
        .header("origin", &visitor.base)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let _: Value = response.json().await.unwrap_or(Value::Null);
    status
}

#[tokio::test]
async fn a_larger_scope_from_the_allow_list_replaces_and_revokes_the_older_session() {
    let alice = pds().alice();
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        data.path(),
        &["--scope", BASE_SCOPE, "--allow-scope", LARGER_SCOPE],
    );
    let store = atoauth_sqlx::SqliteStore::open(&data.path().join("atoauth.db"))
        .await
        .unwrap();
    let mut visitor = Visitor::new(&serve.url);
    visitor.sign_in(alice).await;
    let before = store.list_all().await.unwrap();
    assert_eq!(before.len(), 1);
    let home = visitor.get("/").await.body;
    assert!(home.contains("id=upgrades"), "the page offers more: {home}");
    assert!(!granted(&home).contains("app.bsky.feed.like"), "{home}");
    assert_eq!(
        like(&visitor, alice.did.as_str()).await,
        403,
        "not granted yet"
    );

    // A scope outside the allow-list is refused before any request to the PDS.
    let csrf = Visitor::csrf(&visitor.get("/").await);
    let base = visitor.base.clone();
    let refused = visitor
        .post(
            "/oauth/login",
            Some(&base),
            &[
                ("csrf", &csrf),
                ("identifier", &alice.handle),
                ("scope", "atproto transition:generic"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    // The allowed larger scope: one session for alice, a new one, that may like.
    visitor
        .sign_in_with(alice, &[("scope", LARGER_SCOPE)])
        .await;
    let after = store.list_all().await.unwrap();
    assert_eq!(after.len(), 1, "the older session is gone");
    assert_ne!(after[0].session_id, before[0].session_id);
    let home = visitor.get("/").await.body;
    assert!(granted(&home).contains("app.bsky.feed.like"), "{home}");
    assert!(
        !home.contains("id=upgrades"),
        "nothing more to ask for: {home}"
    );
    assert_eq!(like(&visitor, alice.did.as_str()).await, 200);
}
