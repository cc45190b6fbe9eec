//! The page's globals, reached without panicking: `window`, `crypto.subtle`, `indexedDB`,
//! `navigator.locks`, and a timer.

use js_sys::Promise;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::BrowserError;

pub(crate) fn window() -> Result<web_sys::Window, BrowserError> {
    web_sys::window().ok_or_else(|| BrowserError::Options("no window: run in a page".to_owned()))
}

/// `crypto.subtle`, present only in a secure context.
pub(crate) fn subtle() -> Result<web_sys::SubtleCrypto, BrowserError> {
    let crypto = window()?
        .crypto()
        .map_err(|_| BrowserError::NotSecureContext)?;
    let subtle = js_sys::Reflect::get(&crypto, &JsValue::from_str("subtle"))
        .map_err(|_| BrowserError::NotSecureContext)?;
    if subtle.is_undefined() || subtle.is_null() {
        return Err(BrowserError::NotSecureContext);
    }
    Ok(subtle.unchecked_into())
}

/// Awaits a promise, naming the API in the error.
pub(crate) async fn settle(what: &'static str, promise: Promise) -> Result<JsValue, BrowserError> {
    JsFuture::from(promise)
        .await
        .map_err(|e| BrowserError::js(what, &e))
}

/// Resolves after `ms` milliseconds.
pub(crate) async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Milliseconds since the epoch, from the page's clock.
pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}
