//! `atoauth serve`, the web app, driven over HTTP against the official PDS: restart, security
//! (CSRF, cookies, proxy paths, forged cookies, logs), and confidential mode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use atoauth::store::SessionStore;
use atoauth_testkit::pds;
use common::serve::{Serve, Visitor};

#[tokio::test]
async fn a_signed_in_visitor_stays_signed_in_across_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let mut visitor = Visitor::new(&serve.url);
    visitor.sign_in(pds().alice()).await;
    let home = visitor.get("/").await;
    assert!(home.body.contains("alice.test"), "{}", home.body);
    serve.stop();

    let serve = Serve::start(data.path(), &[]);
    visitor.base = serve.url.clone();
    let home = visitor.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("id=handle>alice.test<"), "{}", home.body);
    let me = visitor.get("/xrpc/com.atproto.server.getSession").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["did"], pds().alice().did.as_str());
}

#[tokio::test]
async fn csrf_cookies_proxy_paths_forged_cookies_and_logs() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let mut visitor = Visitor::new(&serve.url);

    // Cookie flags on the first visit.
    let start = visitor.get("/").await;
    let cookie = start.set_cookie.clone().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http has no Secure flag: {cookie}"
    );
    let csrf = Visitor::csrf(&start);

    // Cross-site sign-in attempts: no Origin, another Origin, no token, a wrong token.
    let form = [("identifier", "alice.test"), ("csrf", csrf.as_str())];
    let base = serve.url.clone();
    for (origin, form) in [
        (None, &form[..]),
        (Some("http://evil.example"), &form[..]),
        (Some(base.as_str()), &form[..1]),
        (
            Some(base.as_str()),
            &[("identifier", "alice.test"), ("csrf", "guess")][..],
        ),
    ] {
        let refused = visitor.post("/oauth/login", origin, form).await;
        assert_eq!(refused.status, 403, "origin {origin:?}");
    }

    // The proxy needs a session, and only serves /xrpc/<nsid>.
    let anonymous = visitor.get("/xrpc/com.atproto.server.getSession").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let callback = visitor.sign_in(pds().bob()).await;
    for path in ["/xrpc/..%2Fadmin", "/xrpc/not-an-nsid", "/xrpc/"] {
        let refused = visitor.get(path).await;
        assert!(
            matches!(refused.status, 400 | 404),
            "{path}: {}",
            refused.status
        );
    }
    assert_eq!(
        visitor
            .get("/other/com.atproto.server.getSession")
            .await
            .status,
        404
    );
    let cross_site = visitor
        .post(
            "/xrpc/com.atproto.repo.createRecord",
            Some("http://evil.example"),
            &[],
        )
        .await;
    assert_eq!(cross_site.status, 403);

    // A forged cookie is just "not signed in".
    let mut forger = Visitor::new(&serve.url);
    forger.cookie = Some(format!("atoauth_sid={}.AAAA", "x".repeat(43)));
    let page = forger.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=identifier"), "{}", page.body);

    // Another host name is sent to the canonical one, where the cookie lives.
    let port = serve.url.rsplit(':').next().unwrap();
    let other_host = visitor
        .http
        .get(format!("http://localhost:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_host.status().as_u16(), 307);
    assert_eq!(
        other_host.headers()["location"].to_str().unwrap(),
        format!("{}/", serve.url)
    );

    // Sign-out needs the token too; then the session is gone.
    let home = visitor.get("/").await;
    let csrf = Visitor::csrf(&home);
    assert_eq!(
        visitor.post("/oauth/logout", Some(&base), &[]).await.status,
        403
    );
    let out = visitor
        .post("/oauth/logout", Some(&base), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    assert!(visitor.get("/").await.body.contains("id=identifier"));

    let csrf_after = Visitor::csrf(&visitor.get("/").await);
    // Sign-in attempts are rate-limited per address (20 a minute by default).
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let attempt = visitor
            .post(
                "/oauth/login",
                Some(&base),
                &[("identifier", ""), ("csrf", &csrf_after)],
            )
            .await;
        statuses.push(attempt.status);
    }
    assert!(statuses[..16].iter().all(|s| *s == 400), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // `code` and `state` never reached the logs.
    let callback = url::Url::parse(&callback).unwrap();
    let logs = serve.logs();
    for (name, value) in callback.query_pairs() {
        if name == "code" || name == "state" {
            assert!(
                !logs.contains(value.as_ref()),
                "{name} leaked into the logs:\n{logs}"
            );
        }
    }
    assert!(
        logs.contains("/oauth/callback"),
        "requests are logged:\n{logs}"
    );
}

#[tokio::test]
async fn a_callback_opened_in_another_browser_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let mut starter = Visitor::new(&serve.url);
    let start = starter.get("/").await;
    let csrf = Visitor::csrf(&start);
    let base = serve.url.clone();
    let login = starter
        .post(
            "/oauth/login",
            Some(&base),
            &[("identifier", "alice.test"), ("csrf", &csrf)],
        )
        .await;
    let authorize = login.location.unwrap();
    let callback = pds()
        .authorize(&authorize, pds().alice(), atoauth_testkit::Consent::Accept)
        .await
        .unwrap();
    // Another browser (its own cookie) opens the callback: refused, and the code is not used.
    let mut other = Visitor::new(&serve.url);
    other.get("/").await;
    let page = other
        .get(&format!("/oauth/callback?{}", callback.query().unwrap()))
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("another browser"), "{}", page.body);
    assert!(other.get("/").await.body.contains("id=identifier"));
    // #15 finding 7: that did not burn the sign-in; the browser that started it finishes it.
    let done = starter
        .get(&format!("/oauth/callback?{}", callback.query().unwrap()))
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(starter.get("/").await.body.contains("alice.test"));
}

#[tokio::test]
async fn confidential_mode_signs_in_and_refreshes_with_private_key_jwt() {
    let pds = pds();
    let data = tempfile::tempdir().unwrap();
    let keys = data.path().join("keys.json");
    let made = common::atoauth()
        .arg("keygen")
        .arg("--out")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(made.status.success());
    let host = pds.ready().client_host_url.clone();
    let client_id = host
        .join("serve-confidential/client-metadata.json")
        .unwrap();
    let redirect_uri = host.join("serve-confidential/callback").unwrap();
    let serve = Serve::start(
        data.path(),
        &[
            "--client-id",
            client_id.as_str(),
            "--redirect-uri",
            redirect_uri.as_str(),
            "--keys",
            keys.to_str().unwrap(),
        ],
    );
    let mut visitor = Visitor::new(&serve.url);
    // The app serves its metadata and keys; the harness host publishes the same document.
    let metadata = visitor.get("/oauth-client-metadata.json").await;
    let document: serde_json::Value = serde_json::from_str(&metadata.body).unwrap();
    assert_eq!(document["client_id"], client_id.as_str());
    assert_eq!(document["token_endpoint_auth_method"], "private_key_jwt");
    let jwks: serde_json::Value =
        serde_json::from_str(&visitor.get("/oauth/jwks.json").await.body).unwrap();
    assert_eq!(jwks, document["jwks"]);
    assert!(jwks["keys"][0].get("d").is_none());
    pds.register_client_metadata("serve-confidential/client-metadata.json", &document)
        .await;

    // The redirect goes to the harness host; the test hands its query to the app.
    let callback = visitor.sign_in(pds.alice()).await;
    assert!(callback.starts_with(redirect_uri.as_str()), "{callback}");
    assert!(visitor.get("/").await.body.contains("alice.test"));

    // An expired session is refreshed on the next proxied call (private_key_jwt again).
    let store = atoauth_sqlx::SqliteStore::open(&data.path().join("atoauth.db"))
        .await
        .unwrap();
    let session = store.list_all().await.unwrap().remove(0);
    atoauth_testkit::expire_session(&store, &session.did, &session.session_id).await;
    let me = visitor.get("/xrpc/com.atproto.server.getSession").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let refreshed = store.list_all().await.unwrap().remove(0);
    assert_ne!(refreshed.refresh_token, session.refresh_token);
}

#[tokio::test]
async fn instances_sharing_a_store_share_sign_ins() {
    let key = "ab".repeat(32);
    let shared = tempfile::tempdir().unwrap();
    let sqlite = shared.path().join("shared.db");
    for db in [
        atoauth_testkit::servers::postgres_database("serve"),
        atoauth_testkit::servers::redis_url(),
        // Two processes on one SQLite file (issue #21).
        sqlite.to_str().unwrap().to_owned(),
    ] {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = Serve::start(one.path(), &["--db", &db, "--cookie-key", &key]);
        let second = Serve::start(two.path(), &["--db", &db, "--cookie-key", &key]);
        let mut visitor = Visitor::new(&first.url);
        visitor.sign_in(pds().bob()).await;
        // The same browser cookie, answered by the other instance.
        visitor.base = second.url.clone();
        let home = visitor.get("/").await;
        assert!(
            home.body.contains("id=handle>bob.test<"),
            "{db}: {}",
            home.body
        );
        let me = visitor.get("/xrpc/com.atproto.server.getSession").await;
        assert_eq!(me.status, 200, "{db}: {}", me.body);
        if db.ends_with(".db") {
            // An expired session, called through both processes at once: both answer, and
            // the one file holds one refreshed record.
            let store = atoauth_sqlx::SqliteStore::open(&sqlite).await.unwrap();
            let before = store.list_all().await.unwrap();
            assert_eq!(before.len(), 1);
            atoauth_testkit::expire_session(&store, &before[0].did, &before[0].session_id).await;
            let mut other = Visitor::new(&first.url);
            other.cookie.clone_from(&visitor.cookie);
            let (a, b) = tokio::join!(
                visitor.get("/xrpc/com.atproto.server.getSession"),
                other.get("/xrpc/com.atproto.server.getSession"),
            );
            assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
            let after = store.list_all().await.unwrap();
            assert_eq!(after.len(), 1);
            assert_ne!(after[0].refresh_token, before[0].refresh_token);
        }
    }
}

/// `--spa` with `--keys` is the client-assertion backend: it needs the app's `client_id`, and
/// every extra origin must be a bare origin; each mistake is one clear line before listening.
#[test]
fn a_client_assertion_backend_needs_a_client_id_and_bare_origins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html>").unwrap();
    let keys = dir.path().join("keys.json");
    let made = common::atoauth()
        .args(["keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", common::stderr(&made));
    let run = |extra: &[&str]| {
        common::atoauth()
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0", "--spa"])
            .arg(dir.path())
            .arg("--keys")
            .arg(&keys)
            .args(extra)
            .output()
            .unwrap()
    };
    let no_client_id = run(&[]);
    assert!(!no_client_id.status.success());
    assert!(
        common::stderr(&no_client_id).contains("--client-id"),
        "{}",
        common::stderr(&no_client_id)
    );
    let with_path = run(&[
        "--client-id",
        "https://app.example/client-metadata.json",
        "--cab-origin",
        "https://app.example/path",
    ]);
    assert!(!with_path.status.success());
    assert!(
        common::stderr(&with_path).contains("[U1]"),
        "{}",
        common::stderr(&with_path)
    );
}
