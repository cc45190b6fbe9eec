//! # atoauth-browser
//!
//! atoauth in a single-page app, compiled to WebAssembly: sign people in with their AT Protocol
//! account from a page with no backend, and call their PDS.
//!
//! - The DPoP key is a WebCrypto ECDSA P-256 key made with `extractable: false` and kept, as the
//!   key object itself, in IndexedDB: no script (ours included) can read its private half, and it
//!   is never in a string, in `localStorage` or in `sessionStorage`.
//! - Pending sign-ins and sessions live in IndexedDB behind atoauth's store traits; tokens are
//!   never in `localStorage` or `sessionStorage`.
//! - One refresh across tabs: a refresh lock over the Web Locks API (`navigator.locks`) plus the
//!   core's re-read of the session before refreshing; other tabs learn of updates and sign-outs
//!   through a `BroadcastChannel`.
//! - Handles resolve through a configured service (`com.atproto.identity.resolveHandle`): a
//!   browser has no DNS, and a handle's well-known is a cross-origin fetch its server rarely
//!   allows.
//!
//! From Rust, use `BrowserOAuthClient`; from JavaScript, the ES module that `wasm-bindgen
//! --target web` makes of this crate exports `AtoauthClient` (see `examples/spa`).
//!
//! Everything here exists only on `wasm32`; on other targets the crate is empty.

#[cfg(target_arch = "wasm32")]
mod channel;
#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod error;
#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod idb;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod keys;
#[cfg(target_arch = "wasm32")]
mod listeners;
#[cfg(target_arch = "wasm32")]
mod locks;
#[cfg(target_arch = "wasm32")]
mod page;
#[cfg(target_arch = "wasm32")]
mod stores;

#[cfg(target_arch = "wasm32")]
pub use client::{BrowserOAuthClient, BrowserOptions, ClientChoice, InitOutcome, TabNotice};
#[cfg(target_arch = "wasm32")]
pub use error::BrowserError;
#[cfg(target_arch = "wasm32")]
pub use fetch::FetchClient;
#[cfg(target_arch = "wasm32")]
pub use keys::{WebCryptoKey, WebCryptoKeyStore};
#[cfg(target_arch = "wasm32")]
pub use locks::WebLocks;
#[cfg(target_arch = "wasm32")]
pub use stores::IndexedDbStore;
