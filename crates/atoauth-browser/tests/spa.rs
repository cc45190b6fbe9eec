//! The browser client in headless Chromium against the official PDS (issue #19): the example
//! app (`examples/spa`) built to wasm32 and served by `atoauth serve --spa` on 127.0.0.1 signs
//! in through the PDS's own pages, posts (the record is on the PDS), is still signed in after a
//! reload, keeps its DPoP key non-extractable and nothing in Web Storage, and signs out with its
//! tokens revoked at the PDS.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use atoauth_testkit::browser::{Driver, consent_at_the_pds};
use atoauth_testkit::pds;
use atoauth_testkit::spa::page::{
    OPEN_DB, click, expire_stored_session, in_page, post, sign_in, start_post, text_of, type_into,
    wait_for,
};
use atoauth_testkit::spa::{Served, serve};
use fantoccini::{Client, Locator};
use serde_json::json;

/// The example app built for the harness PDS and served on 127.0.0.1.
fn build_and_serve() -> (tempfile::TempDir, Served) {
    let pds = pds();
    let site = tempfile::tempdir().unwrap();
    atoauth_testkit::spa::build(
        site.path(),
        &json!({
            "handleResolver": pds.pds_url().as_str(),
            "plcDirectory": pds.plc_url().as_str(),
            "insecureAllowLoopbackHttp": true,
            "scope": "atproto repo:app.bsky.feed.post?action=create",
        }),
    )
    .unwrap();
    let served = serve(site.path(), &[], &[]);
    (site, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spa_signs_in_posts_reloads_and_signs_out_in_chromium() {
    let pds = pds();
    let alice = pds.alice();
    let (_site, served) = build_and_serve();
    let driver = Driver::start("spa");
    let browser = driver.browser().await;
    sign_in(&browser, &served.url, alice).await;
    let did = browser.find(Locator::Css("#did")).await.unwrap();
    assert_eq!(did.text().await.unwrap(), alice.did);
    let address = browser.current_url().await.unwrap();
    assert_eq!(
        address.query(),
        None,
        "the callback is gone from the address bar"
    );
    assert_eq!(address.fragment(), None);

    // The callback replayed in another tab is refused: its state was used up.
    let callback = in_page(
        &browser,
        "return performance.getEntriesByType('navigation')[0].name;",
    )
    .await;
    let callback = callback.as_str().unwrap().to_owned();
    assert!(callback.contains("code="), "{callback}");
    let first_tab = browser.window().await.unwrap();
    let replay_tab = browser.new_window(true).await.unwrap().handle;
    browser.switch_to_window(replay_tab).await.unwrap();
    browser.goto(&callback).await.unwrap();
    wait_for(&browser, "body[data-state=error]").await;
    let refused = text_of(&browser, "#error").await;
    eprintln!("the replayed callback: {refused}");
    assert!(refused.contains("state"), "{refused}");
    browser.close_window().await.unwrap();
    browser.switch_to_window(first_tab).await.unwrap();

    // Post, and find the record on the PDS.
    let uri = post(&browser, "hello from a wasm32 single-page app").await;
    assert!(uri.starts_with(&format!("at://{}/", alice.did)), "{uri}");
    let (status, record) = pds.get_record(&uri).await;
    assert_eq!(status, 200, "{record}");
    assert!(record.contains("hello from a wasm32 single-page app"));

    // The DPoP key: a non-extractable P-256 CryptoKey, stored as the key object; nothing in
    // Web Storage; the session record holds the public key only.
    let keys = in_page(
        &browser,
        &format!(
            "{OPEN_DB}
             const pairs = await all('keys');
             const sessions = await all('sessions');
             const exported = await crypto.subtle.exportKey('jwk', pairs[0].privateKey)
               .then(() => 'exported', (e) => e.name);
             return {{
               keys: pairs.map((p) => ({{
                 extractable: p.privateKey.extractable,
                 type: p.privateKey.type,
                 algorithm: p.privateKey.algorithm.name,
                 curve: p.privateKey.algorithm.namedCurve,
                 isCryptoKey: p.privateKey instanceof CryptoKey,
               }})),
               exported,
               sessions: sessions.map((s) => JSON.parse(s)),
               localStorage: localStorage.length,
               sessionStorage: sessionStorage.length,
             }};"
        ),
    )
    .await;
    assert_eq!(
        keys["keys"],
        json!([{"extractable": false, "type": "private", "algorithm": "ECDSA",
                "curve": "P-256", "isCryptoKey": true}]),
    );
    eprintln!(
        "in the page after sign-in: keys {}, exportKey {}, localStorage {}, sessionStorage {}",
        keys["keys"], keys["exported"], keys["localStorage"], keys["sessionStorage"]
    );
    assert_eq!(
        keys["exported"], "InvalidAccessError",
        "{}",
        keys["exported"]
    );
    assert_eq!(keys["localStorage"], 0);
    assert_eq!(keys["sessionStorage"], 0);
    let session = &keys["sessions"][0];
    assert!(
        session["dpop_key"].get("d").is_none(),
        "the record holds the public key only"
    );
    assert_eq!(session["did"], alice.did.as_str());

    // Reload: still signed in.
    browser.refresh().await.unwrap();
    wait_for(&browser, "body[data-state=signed-in]").await;
    assert_eq!(text_of(&browser, "#did").await, alice.did);

    // Sign out; then prove the refresh token is dead at the PDS, with a proof from the very
    // key (kept in the page for this check before the app deleted it).
    let captured = in_page(
        &browser,
        &format!(
            "{OPEN_DB}
             const pairs = await all('keys');
             const sessions = await all('sessions');
             window.captured = {{ pair: pairs[0], record: JSON.parse(sessions[0]) }};
             return true;"
        ),
    )
    .await;
    assert_eq!(captured, json!(true));
    click(&browser, "#sign-out").await;
    wait_for(&browser, "body[data-state=signed-out]").await;
    assert_eq!(
        text_of(&browser, "#ended").await,
        "",
        "signing out is no surprise to report"
    );
    let left = in_page(
        &browser,
        &format!(
            "{OPEN_DB}
             return {{ keys: (await all('keys')).length, sessions: (await all('sessions')).length }};"
        ),
    )
    .await;
    assert_eq!(
        left,
        json!({"keys": 0, "sessions": 0}),
        "nothing left behind"
    );
    let refresh = in_page(
        &browser,
        "const b64u = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
           .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
         const encode = (value) => b64u(new TextEncoder().encode(JSON.stringify(value)));
         const { pair, record } = window.captured;
         const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
         const url = record.issuer.replace(/\\/$/, '') + '/oauth/token';
         const attempt = async (nonce) => {
           const header = { typ: 'dpop+jwt', alg: 'ES256',
                            jwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } };
           const claims = { jti: crypto.randomUUID(), htm: 'POST', htu: url,
                            iat: Math.floor(Date.now() / 1000), ...(nonce ? { nonce } : {}) };
           const input = encode(header) + '.' + encode(claims);
           const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' },
             pair.privateKey, new TextEncoder().encode(input));
           const response = await fetch(url, {
             method: 'POST',
             headers: { 'content-type': 'application/x-www-form-urlencoded',
                        dpop: input + '.' + b64u(signature) },
             body: new URLSearchParams({ grant_type: 'refresh_token',
                                         refresh_token: record.refresh_token,
                                         client_id: record.client_id }),
           });
           return { status: response.status, nonce: response.headers.get('dpop-nonce'),
                    body: await response.json() };
         };
         let answer = await attempt(null);
         if (answer.body.error === 'use_dpop_nonce') answer = await attempt(answer.nonce);
         return answer;",
    )
    .await;
    eprintln!("the signed-out refresh token at the PDS: {refresh}");
    assert_eq!(refresh["status"], 400, "{refresh}");
    assert_eq!(
        refresh["body"]["error"], "invalid_grant",
        "the proof was accepted and the token refused: {refresh}"
    );
    browser.close().await.unwrap();
}

/// How many requests this tab sent to a token endpoint (Resource Timing sees every fetch).
async fn token_requests(browser: &Client) -> u64 {
    in_page(
        browser,
        "return performance.getEntriesByType('resource')
           .filter((e) => e.name.endsWith('/oauth/token')).length;",
    )
    .await
    .as_u64()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_with_an_expired_session_refresh_it_once() {
    let pds = pds();
    let bob = pds.bob();
    let (_site, served) = build_and_serve();
    let driver = Driver::start("spa-tabs");
    let browser = driver.browser().await;
    sign_in(&browser, &served.url, bob).await;

    // Expire the stored access token; both tabs then load the session from IndexedDB.
    let expired = expire_stored_session(&browser).await;
    let key_x = expired["x"].as_str().unwrap().to_owned();
    let grants_before = pds.token_answers(&key_x).await.get(&200).copied();
    let first_tab = browser.window().await.unwrap();
    browser.refresh().await.unwrap();
    wait_for(&browser, "body[data-state=signed-in]").await;
    let second_tab = browser.new_window(true).await.unwrap().handle;
    browser.switch_to_window(second_tab.clone()).await.unwrap();
    browser.goto(&format!("{}/", served.url)).await.unwrap();
    wait_for(&browser, "body[data-state=signed-in]").await;

    // Both tabs post at once; each needs a fresh access token first.
    start_post(&browser, "from the second tab").await;
    browser.switch_to_window(first_tab.clone()).await.unwrap();
    start_post(&browser, "from the first tab").await;
    wait_for(&browser, "#posted:not(:empty)").await;
    let first_requests = token_requests(&browser).await;
    browser.switch_to_window(second_tab).await.unwrap();
    wait_for(&browser, "#posted:not(:empty)").await;
    let second_requests = token_requests(&browser).await;
    eprintln!("token requests: first tab {first_requests}, second tab {second_requests}");
    assert_eq!(
        first_requests + second_requests,
        1,
        "one refresh across the tabs (the Web Lock, then a re-read of the stored session)"
    );
    // Counted by the PDS's side too: one grant (the sign-in's was the one before).
    let grants_after = pds.token_answers(&key_x).await.get(&200).copied();
    eprintln!("grants at the PDS for this key: {grants_before:?} → {grants_after:?}");
    assert_eq!(grants_before, Some(1), "the sign-in's code exchange");
    assert_eq!(
        grants_after,
        Some(2),
        "exactly one refresh grant reached the PDS"
    );

    // The session is intact: a new token is stored, and a reload still signs in and posts.
    let now = in_page(
        &browser,
        &format!("{OPEN_DB} return JSON.parse((await all('sessions'))[0]).refresh_token;"),
    )
    .await;
    assert_ne!(
        now, expired["refresh"],
        "the refresh token was rotated once"
    );
    browser.refresh().await.unwrap();
    wait_for(&browser, "body[data-state=signed-in]").await;
    start_post(&browser, "after the refresh").await;
    wait_for(&browser, "#posted:not(:empty)").await;
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_popup_signs_in_while_the_page_stays() {
    let pds = pds();
    let carol = pds.carol();
    let (_site, served) = build_and_serve();
    let driver = Driver::start("spa-popup");
    let browser = driver.browser().await;
    browser.goto(&format!("{}/", served.url)).await.unwrap();
    wait_for(&browser, "body[data-state=signed-out]").await;
    let page = browser.window().await.unwrap();
    type_into(&browser, "#identifier", &carol.handle).await;
    click(&browser, "#sign-in-popup").await;
    // The popup: the PDS's pages, then back to the app, which completes and closes it.
    let mut popup = None;
    for _ in 0..100 {
        let windows = browser.windows().await.unwrap();
        popup = windows.into_iter().find(|w| *w != page);
        if popup.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .switch_to_window(popup.expect("a popup opened"))
        .await
        .unwrap();
    consent_at_the_pds(&browser, carol).await;
    browser.switch_to_window(page).await.unwrap();
    wait_for(&browser, "body[data-state=signed-in]").await;
    assert_eq!(text_of(&browser, "#did").await, carol.did);
    let address = browser.current_url().await.unwrap();
    assert_eq!(address.query(), None, "the page itself never left");
    start_post(&browser, "signed in through a popup").await;
    wait_for(&browser, "#posted:not(:empty)").await;
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_opened_on_localhost_moves_to_127_0_0_1_first() {
    // IndexedDB is per origin and the PDS sends loopback clients back to 127.0.0.1, so a
    // sign-in begun on localhost could never finish: the client moves the page first.
    let (_site, served) = build_and_serve();
    let driver = Driver::start("spa-localhost");
    let browser = driver.browser().await;
    let on_localhost = served.url.replace("127.0.0.1", "localhost");
    browser.goto(&format!("{on_localhost}/")).await.unwrap();
    wait_for(&browser, "body[data-state=signed-out]").await;
    let address = browser.current_url().await.unwrap();
    assert_eq!(address.host_str(), Some("127.0.0.1"), "{address}");
    browser.close().await.unwrap();
}
