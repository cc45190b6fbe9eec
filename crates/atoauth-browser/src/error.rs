//! What can go wrong in a browser, beside the OAuth errors of the core.

use wasm_bindgen::{JsCast as _, JsValue};

/// Why the browser client could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// The page is not a secure context, so `crypto.subtle` is missing: serve it over https,
    /// or from `http://127.0.0.1` / `http://localhost` while developing.
    #[error(
        "this page is not a secure context (no crypto.subtle): serve it over https, or from \
         http://127.0.0.1 while developing"
    )]
    NotSecureContext,
    /// IndexedDB is missing or refused (a private window of some browsers, or storage
    /// blocked by the user).
    #[error("IndexedDB is unavailable here ({0}): sessions cannot be kept")]
    NoIndexedDb(String),
    /// The page was on `localhost` and is being moved to the same URL on `127.0.0.1` (the
    /// development client's origin: IndexedDB is per origin, and the PDS sends loopback clients
    /// back to `127.0.0.1` only). Nothing to do: the page reloads there.
    #[error("moving this page to {0} (the development client runs on 127.0.0.1)")]
    MovingToLoopbackIp(String),
    /// The options are incomplete or contradictory.
    #[error("invalid options: {0}")]
    Options(String),
    /// A browser API failed.
    #[error("{what} failed: {reason}")]
    Js {
        /// Which API.
        what: &'static str,
        /// What the browser said.
        reason: String,
    },
    /// The sign-in or a call failed; [`atoauth::OAuthError`] says why.
    #[error(transparent)]
    OAuth(#[from] atoauth::OAuthError),
}

impl BrowserError {
    /// A failed browser API, with the message of what it threw.
    pub(crate) fn js(what: &'static str, error: &JsValue) -> Self {
        Self::Js {
            what,
            reason: describe(error),
        }
    }
}

/// The message of a thrown JS value (an `Error`'s `message`, or its string form).
pub(crate) fn describe(error: &JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    if let Some(text) = error.as_string() {
        return text;
    }
    js_sys::JSON::stringify(error)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| "an unknown error".to_owned())
}
