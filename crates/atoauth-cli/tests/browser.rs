//! The web app in headless Chromium against the official PDS (issue #8): open `/`, type the
//! handle, sign in and consent on the PDS's own pages, land on the home page, post, see the
//! record on the PDS, sign out. Screenshots go to `<target>/tmp/screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use atoauth_testkit::browser::Driver;
use atoauth_testkit::pds;
use common::serve::Serve;
use fantoccini::{Client, Locator};

async fn screenshot(browser: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, browser.screenshot().await.unwrap()).unwrap();
    eprintln!("screenshot: {}", path.display());
}

async fn wait_for(browser: &Client, locator: Locator<'_>) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("waiting for {locator:?}: {e}"))
}

/// Signs `account` in through the app's form and the PDS's own sign-in and consent pages.
async fn sign_in(
    browser: &Client,
    base: &str,
    account: &atoauth_testkit::Account,
    screenshot_name: Option<&str>,
) {
    browser.goto(&format!("{base}/")).await.unwrap();
    let identifier = wait_for(browser, Locator::Css("#identifier")).await;
    if let Some(name) = screenshot_name {
        screenshot(browser, name).await;
    }
    identifier.send_keys(&account.handle).await.unwrap();
    browser
        .find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The PDS's own sign-in page (the username comes pre-filled from the login hint).
    let password = wait_for(browser, Locator::Css("input[name=password]")).await;
    let username = browser
        .find(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    if username
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
        .is_empty()
    {
        username.send_keys(&account.handle).await.unwrap();
    }
    password.send_keys(&account.password).await.unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Its consent page.
    wait_for(
        browser,
        Locator::XPath("//button[normalize-space()='Authorize']"),
    )
    .await
    .click()
    .await
    .unwrap();
}

#[tokio::test]
async fn a_visitor_signs_in_posts_and_signs_out_in_chromium() {
    let pds = pds();
    let alice = pds.alice();
    let driver = Driver::start("serve");
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let browser = driver.browser().await;

    sign_in(&browser, &serve.url, alice, Some("sign-in")).await;

    // Back home, signed in.
    let handle = wait_for(&browser, Locator::Css("#handle")).await;
    assert_eq!(handle.text().await.unwrap(), "alice.test");
    let did = browser.find(Locator::Css("#did")).await.unwrap();
    assert_eq!(did.text().await.unwrap(), alice.did);
    let permissions = browser
        .find(Locator::Css("#permissions"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        permissions.contains("repo:app.bsky.feed.post?action=create"),
        "{permissions}"
    );
    screenshot(&browser, "home").await;

    // Post, and find the record on the PDS.
    browser
        .find(Locator::Css("#text"))
        .await
        .unwrap()
        .send_keys("hello from Chromium through atoauth serve")
        .await
        .unwrap();
    browser
        .find(Locator::Css("#post"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let uri = wait_for(&browser, Locator::Css("#posted"))
        .await
        .text()
        .await
        .unwrap();
    assert!(uri.starts_with(&format!("at://{}/", alice.did)), "{uri}");
    let (status, record) = pds.get_record(&uri).await;
    assert_eq!(status, 200, "{record}");
    assert!(
        record.contains("hello from Chromium through atoauth serve"),
        "{record}"
    );
    screenshot(&browser, "posted").await;

    // Sign out: back to the sign-in form.
    browser
        .find(Locator::Css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, Locator::Css("#identifier")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_stored_html_blob_never_runs_on_our_origin_in_chromium() {
    // #15 finding 1, as the attack was reproduced: a file on the PDS, a followed link to it.
    let pds = pds();
    let driver = Driver::start("serve-xss");
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &["--scope", "atproto transition:generic"]);
    let browser = driver.browser().await;
    sign_in(&browser, &serve.url, pds.alice(), None).await;
    wait_for(&browser, Locator::Css("#handle")).await;

    // From our own page, as any script could: upload HTML and reference it from a record.
    let uploaded = browser
        .execute_async(
            r#"const [did, done] = arguments;
            const html = "<html><body><script>localStorage.setItem('pwned', document.cookie + '!')</script>pwned</body></html>";
            (async () => {
              const up = await fetch('/xrpc/com.atproto.repo.uploadBlob', {method: 'POST', headers: {'content-type': 'text/html'}, body: html});
              const blob = (await up.json()).blob;
              const made = await fetch('/xrpc/com.atproto.repo.createRecord', {method: 'POST', headers: {'content-type': 'application/json'},
                body: JSON.stringify({repo: did, collection: 'com.example.hardening.file', record: {$type: 'com.example.hardening.file', file: blob, createdAt: new Date().toISOString()}})});
              const url = '/xrpc/com.atproto.sync.getBlob?did=' + did + '&cid=' + blob.ref.$link;
              const fetched = await fetch(url);
              done({status: made.status, url, fetched: fetched.status, disposition: fetched.headers.get('content-disposition'), csp: fetched.headers.get('content-security-policy')});
            })().catch(e => done({error: String(e)}));"#,
            vec![serde_json::json!(pds.alice().did.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(uploaded["status"], 200, "{uploaded}");
    assert_eq!(
        uploaded["fetched"], 200,
        "a script still gets the bytes: {uploaded}"
    );
    assert!(
        uploaded["disposition"]
            .as_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(uploaded["csp"].as_str().unwrap().contains("sandbox"));

    // The victim follows a link to it: refused, and nothing ran on our origin.
    let url = format!("{}{}", serve.url, uploaded["url"].as_str().unwrap());
    browser.goto(&url).await.unwrap();
    let shown = browser.source().await.unwrap();
    assert!(shown.contains("Forbidden"), "{shown}");
    screenshot(&browser, "xss-refused").await;
    browser.goto(&format!("{}/", serve.url)).await.unwrap();
    let handle = wait_for(&browser, Locator::Css("#handle")).await;
    assert_eq!(
        handle.text().await.unwrap(),
        "alice.test",
        "still signed in"
    );
    let pwned = browser
        .execute("return localStorage.getItem('pwned');", vec![])
        .await
        .unwrap();
    assert!(pwned.is_null(), "the uploaded script ran: {pwned}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn our_pages_cannot_be_framed_in_chromium() {
    // #15 finding 6: the signed-in page, with its sign-out button, could be framed.
    let driver = Driver::start("serve-frame");
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let target = format!("{}/", serve.url);
    // Another site's page framing ours, and (the control) one of its own pages.
    let framer = atoauth_testkit::TestServer::start(move |request| {
        let page = if request.target.starts_with("/inner") {
            "<p id=inner>framed</p>".to_owned()
        } else {
            format!("<iframe src='{target}'></iframe><iframe src='/inner'></iframe>")
        };
        atoauth_testkit::Reply::status(200)
            .header("content-type", "text/html")
            .body(page)
    })
    .await;
    let browser = driver.browser().await;
    browser.goto(framer.url().as_str()).await.unwrap();
    wait_for(&browser, Locator::Css("iframe")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    browser.enter_frame(1).await.unwrap();
    wait_for(&browser, Locator::Css("#inner")).await;
    browser.enter_parent_frame().await.unwrap();

    browser.enter_frame(0).await.unwrap();
    let framed = browser.find(Locator::Css("#identifier")).await;
    assert!(
        framed.is_err(),
        "our sign-in page rendered inside another site's frame"
    );
    browser.enter_parent_frame().await.unwrap();
    screenshot(&browser, "framing-refused").await;
    browser.close().await.unwrap();
}
