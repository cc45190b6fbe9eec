//! Driving a single-page app in Chromium: wait for, click, type into and read elements by CSS
//! selector, and run async JavaScript in the page. Every failure says what the page showed.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::Value;

/// Opens the browser client's IndexedDB database (`atoauth`) as `db` and defines
/// `all(store)`, for scripts given to [`in_page`].
pub const OPEN_DB: &str = "const db = await new Promise((resolve, reject) => {
       const r = indexedDB.open('atoauth');
       r.onsuccess = () => resolve(r.result);
       r.onerror = () => reject(r.error);
     });
     const all = (store) => new Promise((resolve, reject) => {
       const r = db.transaction(store).objectStore(store).getAll();
       r.onsuccess = () => resolve(r.result);
       r.onerror = () => reject(r.error);
     });";

/// Waits up to a minute for the element `css` names.
///
/// # Panics
/// When it does not appear, with the page's `#error` text and address.
pub async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    match browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(error) => {
            let error_text = match browser.find(Locator::Css("#error")).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let url = browser.current_url().await.map(|u| u.to_string());
            panic!("waiting for {css}: {error}; page error: {error_text:?}; at {url:?}")
        }
    }
}

async fn find(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

/// Clicks the element `css` names.
///
/// # Panics
/// When there is none, or the click fails.
pub async fn click(browser: &Client, css: &str) {
    find(browser, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// Types `text` into the element `css` names.
///
/// # Panics
/// When there is none, or typing fails.
pub async fn type_into(browser: &Client, css: &str, text: &str) {
    find(browser, css)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

/// The text of the element `css` names.
///
/// # Panics
/// When there is none.
pub async fn text_of(browser: &Client, css: &str) -> String {
    find(browser, css)
        .await
        .text()
        .await
        .unwrap_or_else(|e| panic!("reading {css}: {e}"))
}

/// Runs `body` (an async function body) in the page and returns what it returns; a thrown
/// error comes back as `{ thrown: message }`.
///
/// # Panics
/// When the WebDriver call fails.
pub async fn in_page(browser: &Client, body: &str) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         (async () => {{ {body} }})().then(done, (e) => done({{ thrown: String(e) }}));"
    );
    browser
        .execute_async(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("running a script in the page: {e}"))
}

/// Expires the access token of the page's stored session (its first), so the next call
/// refreshes; returns the record's DPoP public key `{x, y}` and refresh token.
pub async fn expire_stored_session(browser: &Client) -> Value {
    in_page(
        browser,
        &format!(
            "{OPEN_DB}
             const store = db.transaction('sessions', 'readwrite').objectStore('sessions');
             const keys = await new Promise((resolve) => {{
               const r = store.getAllKeys(); r.onsuccess = () => resolve(r.result); }});
             const record = JSON.parse(await new Promise((resolve) => {{
               const r = store.get(keys[0]); r.onsuccess = () => resolve(r.result); }}));
             record.expires_at = Math.floor(Date.now() / 1000) - 600;
             await new Promise((resolve, reject) => {{
               const r = store.put(JSON.stringify(record), keys[0]);
               r.onsuccess = resolve; r.onerror = () => reject(r.error); }});
             return {{ refresh: record.refresh_token, x: record.dpop_key.x,
                       y: record.dpop_key.y }};"
        ),
    )
    .await
}

/// Signs `account` in from the example app's form at `url` through the PDS's real pages.
pub async fn sign_in(browser: &Client, url: &str, account: &crate::Account) {
    browser
        .goto(&format!("{url}/"))
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    wait_for(browser, "body[data-state=signed-out]").await;
    type_into(browser, "#identifier", &account.handle).await;
    click(browser, "#sign-in").await;
    crate::browser::consent_at_the_pds(browser, account).await;
    wait_for(browser, "body[data-state=signed-in]").await;
}

/// Posts `text` from the example app's form (without waiting for the answer).
pub async fn start_post(browser: &Client, text: &str) {
    type_into(browser, "#text", text).await;
    click(browser, "#post").await;
}

/// Posts `text` from the example app's form and returns the new record's at-uri.
pub async fn post(browser: &Client, text: &str) -> String {
    start_post(browser, text).await;
    wait_for(browser, "#posted:not(:empty)").await;
    text_of(browser, "#posted").await
}
