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

#[tokio::test]
async fn a_visitor_signs_in_posts_and_signs_out_in_chromium() {
    let pds = pds();
    let alice = pds.alice();
    let driver = Driver::start("serve");
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let browser = driver.browser().await;

    browser.goto(&format!("{}/", serve.url)).await.unwrap();
    let identifier = wait_for(&browser, Locator::Css("#identifier")).await;
    screenshot(&browser, "sign-in").await;
    identifier.send_keys("alice.test").await.unwrap();
    browser
        .find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The PDS's own sign-in page (the username comes pre-filled from the login hint).
    let password = wait_for(&browser, Locator::Css("input[name=password]")).await;
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
        username.send_keys(&alice.handle).await.unwrap();
    }
    password.send_keys(&alice.password).await.unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Its consent page.
    wait_for(
        &browser,
        Locator::XPath("//button[normalize-space()='Authorize']"),
    )
    .await
    .click()
    .await
    .unwrap();

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
    let rkey = uri.rsplit('/').next().unwrap();
    let (status, record) = pds
        .browser_get(&format!(
            "{}xrpc/com.atproto.repo.getRecord?repo={}&collection=app.bsky.feed.post&rkey={rkey}",
            pds.pds_url(),
            alice.did
        ))
        .await;
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
