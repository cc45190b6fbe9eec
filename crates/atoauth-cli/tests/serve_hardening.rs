//! `atoauth serve` hardened (issue #15), against the official PDS: what the XRPC proxy passes
//! back from a PDS is inert on our origin and never a page (finding 1), a request body is not
//! read before the Origin and session checks (2), every page carries its security headers (6),
//! and the data directory is private (10). Finding 7 is in `serve.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use atoauth_testkit::{pds, reqwest};
use common::serve::{Serve, Visitor};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn call(
    visitor: &Visitor,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = visitor
        .http
        .request(method, format!("{}{path}", visitor.base))
        .header("cookie", visitor.cookie.clone().unwrap())
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_stored_html_blob_is_never_a_page_on_our_origin() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &["--scope", "atproto transition:generic"]);
    let mut alice = Visitor::new(&serve.url);
    alice.sign_in(pds().alice()).await;
    let origin = serve.url.clone();

    // What any account on the PDS can do: upload an HTML file and reference it from a record.
    let html = b"<html><script>fetch('/oauth/logout',{method:'POST'})</script></html>".to_vec();
    let upload = call(
        &alice,
        reqwest::Method::POST,
        "/xrpc/com.atproto.repo.uploadBlob",
        &[("origin", &origin), ("content-type", "text/html")],
        html,
    )
    .await;
    assert_eq!(upload.status(), 200);
    let blob: Value = upload.json().await.unwrap();
    let did = pds().alice().did.as_str().to_owned();
    let record = json!({
        "repo": did,
        "collection": "com.example.hardening.file",
        "record": {"$type": "com.example.hardening.file", "file": blob["blob"], "createdAt": "2026-12-02T00:00:00Z"},
    });
    let created = call(
        &alice,
        reqwest::Method::POST,
        "/xrpc/com.atproto.repo.createRecord",
        &[("origin", &origin), ("content-type", "application/json")],
        record.to_string().into_bytes(),
    )
    .await;
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    let cid = blob["blob"]["ref"]["$link"].as_str().unwrap();
    let path = format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}");

    // A followed link (a top-level navigation) is refused, whatever the browser sends.
    for navigation in [
        &[
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ][..],
        &[("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "iframe")][..],
        &[("sec-fetch-dest", "document")][..],
    ] {
        let page = call(&alice, reqwest::Method::GET, &path, navigation, vec![]).await;
        assert_eq!(page.status(), 403, "{navigation:?}");
    }

    // A script's fetch still gets the bytes, but as an inert download.
    let fetched = call(
        &alice,
        reqwest::Method::GET,
        &path,
        &[("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty")],
        vec![],
    )
    .await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(header(&fetched, "x-content-type-options"), "nosniff");
    assert!(header(&fetched, "content-security-policy").contains("sandbox"));
    assert!(header(&fetched, "content-disposition").starts_with("attachment"));
    assert_eq!(header(&fetched, "cache-control"), "no-store");

    // JSON stays readable in place, and just as inert.
    let me = call(
        &alice,
        reqwest::Method::GET,
        "/xrpc/com.atproto.server.getSession",
        &[],
        vec![],
    )
    .await;
    assert_eq!(me.status(), 200);
    assert_eq!(header(&me, "content-disposition"), "");
    assert_eq!(header(&me, "x-content-type-options"), "nosniff");
    assert!(header(&me, "content-security-policy").contains("default-src 'none'"));
}

/// Sends the headers of a 50 MB upload and 10 bytes of it; the answer must come at once.
async fn answer_to_a_stalled_upload(base: &str, extra: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nHost: {address}\r\n{extra}\
         Content-Type: application/octet-stream\r\nContent-Length: 50000000\r\n\r\n0123456789"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer before the body arrives")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[tokio::test]
async fn a_body_is_not_read_before_origin_and_session_are_checked() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let origin = serve.url.clone();

    // Cross-site: refused from the headers alone.
    let answer = answer_to_a_stalled_upload(&serve.url, "Origin: http://evil.example\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // Same origin but anonymous: refused from the headers alone.
    let answer = answer_to_a_stalled_upload(&serve.url, &format!("Origin: {origin}\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn every_page_has_its_security_headers() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let http = atoauth_testkit::http_client();
    let mut alice = Visitor::new(&serve.url);
    alice.sign_in(pds().alice()).await;
    for (path, cookie) in [
        ("/", None),
        ("/", alice.cookie.clone()),
        ("/oauth/callback?state=x&code=y&iss=z", None),
        ("/healthz", None),
        ("/oauth-client-metadata.json", None),
    ] {
        let mut request = http.get(format!("{}{path}", serve.url));
        if let Some(cookie) = cookie.as_deref() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(header(&response, "x-frame-options"), "DENY", "{path}");
        assert!(
            header(&response, "content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(
            header(&response, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(
            header(&response, "referrer-policy"),
            "same-origin",
            "{path}"
        );
        if header(&response, "content-type").starts_with("text/html") {
            assert_eq!(
                header(&response, "cache-control"),
                "no-store",
                "{path}: a CSRF token"
            );
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("new-data-dir");
    let serve = Serve::start(&dir, &[]);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
    serve.stop();

    // A directory that existed before, open to others, is made private, with one warning.
    let open = data.path().join("open-data-dir");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let serve = Serve::start(&open, &[]);
    let mode = std::fs::metadata(&open).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
    let warnings: Vec<String> = serve
        .logs()
        .lines()
        .filter(|l| l.contains("could be reached by other users"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{}", serve.logs());
    assert!(warnings[0].contains("mode 0755") && warnings[0].contains("now 0700"));
    serve.stop();
}

#[tokio::test]
async fn signing_in_again_ends_the_browser_s_previous_session() {
    use atoauth::store::SessionStore;
    // Finding 9: alice, then bob, in one browser left alice's session live and unreferenced.
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let mut visitor = Visitor::new(&serve.url);
    visitor.sign_in(pds().alice()).await;
    visitor.sign_in(pds().bob()).await;
    assert!(visitor.get("/").await.body.contains("bob.test"));
    let store = atoauth_sqlx::SqliteStore::open(&data.path().join("atoauth.db"))
        .await
        .unwrap();
    let dids: Vec<String> = store
        .list_all()
        .await
        .unwrap()
        .iter()
        .map(|s| s.did.to_string())
        .collect();
    assert_eq!(dids, [pds().bob().did.to_string()]);
    // The same account again: still one session, the new one.
    visitor.sign_in(pds().bob()).await;
    assert_eq!(store.list_all().await.unwrap().len(), 1);
}

/// Starts a sign-in from `forwarded_for` (as a reverse proxy would write it); the status.
async fn start_sign_in(visitor: &Visitor, csrf: &str, forwarded_for: &str) -> u16 {
    visitor
        .http
        .post(format!("{}/oauth/login", visitor.base))
        .header("cookie", visitor.cookie.clone().unwrap())
        .header("origin", &visitor.base)
        .header("x-forwarded-for", forwarded_for)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("identifier=alice.test&csrf={csrf}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_sign_in_budget() {
    // Finding 5: behind a reverse proxy, the whole site shared one bucket of 20 a minute.
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &["--trusted-proxy", "127.0.0.0/8"]);
    let mut visitor = Visitor::new(&serve.url);
    let csrf = Visitor::csrf(&visitor.get("/").await);
    for i in 0..21 {
        let status = start_sign_in(&visitor, &csrf, &format!("203.0.113.{i}")).await;
        assert_eq!(status, 303, "client {i} has its own budget");
    }
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..21 {
            statuses.push(start_sign_in(&visitor, &csrf, "198.51.100.1").await);
        }
        statuses
    };
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
    serve.stop();

    // Without the option the header is the client's word, and ignored.
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let mut visitor = Visitor::new(&serve.url);
    let csrf = Visitor::csrf(&visitor.get("/").await);
    let mut limited = 0;
    for i in 0..21 {
        let status = start_sign_in(&visitor, &csrf, &format!("203.0.113.{i}")).await;
        limited += usize::from(status == 429);
    }
    assert_eq!(limited, 1, "one shared bucket for forged addresses");
}

/// Whether the server closes `stream` (end of file or reset) within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An error page (408) may come first; the close follows.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn stalled_requests_are_cut_off_and_connections_are_bounded() {
    // Finding 3: partial headers or bodies kept connections open forever.
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        data.path(),
        &["--read-timeout", "2", "--max-connections", "4"],
    );
    let address = serve.url.trim_start_matches("http://").to_owned();

    // Headers that never end.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(format!("GET / HTTP/1.1\r\nHost: {address}\r\nX-Slow: 1").as_bytes())
        .await
        .unwrap();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(6)).await,
        "stalled headers"
    );

    // A body that stops arriving.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(
            format!(
                "POST /oauth/login HTTP/1.1\r\nHost: {address}\r\nOrigin: {}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nidentifier=",
                serve.url
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(6)).await,
        "stalled body"
    );

    // Four slow clients hold every slot; a fifth, normal request still gets its answer once
    // their time is up, and never an unbounded number of descriptors.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        slow.push(stream);
    }
    let started = std::time::Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        atoauth_testkit::http_client()
            .get(format!("{}/healthz", serve.url))
            .send(),
    )
    .await
    .expect("answered once a slot is free")
    .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it had to wait for a slot"
    );
}

/// The session id in a visitor's cookie (`name=<id>.<tag>`).
fn cookie_id(visitor: &Visitor) -> atoauth::secret::SessionId {
    let pair = visitor.cookie.clone().unwrap();
    let value = pair.split_once('=').unwrap().1;
    atoauth::secret::SessionId::new(value.split_once('.').unwrap().0)
}

#[tokio::test]
async fn anonymous_visitors_cost_no_storage() {
    use atoauth::store::BrowserSessionStore;
    // Finding 4: every anonymous GET / stored a browser session for 30 days.
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let mut ids = Vec::new();
    for _ in 0..50 {
        let mut visitor = Visitor::new(&serve.url);
        let page = visitor.get("/").await;
        assert_eq!(page.status, 200);
        assert!(
            !Visitor::csrf(&page).is_empty(),
            "the sign-in form has its token"
        );
        ids.push(cookie_id(&visitor));
    }
    let store = atoauth_sqlx::SqliteStore::open(&data.path().join("atoauth.db"))
        .await
        .unwrap();
    for id in &ids {
        assert!(store.get_browser(id).await.unwrap().is_none());
    }
    // Signing in is what creates the one stored browser session.
    let mut visitor = Visitor::new(&serve.url);
    visitor.sign_in(pds().alice()).await;
    let stored = store.get_browser(&cookie_id(&visitor)).await.unwrap();
    assert!(stored.is_some_and(|b| b.active().is_some()));
}
