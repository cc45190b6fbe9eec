//! What differs between native targets and the browser (`wasm32`).
//!
//! Natively, atoauth's traits and futures are `Send`, so a client can be shared across a
//! multi-threaded runtime. In a browser everything runs on the page's one thread, and the things
//! an implementation holds (a WebCrypto key, an IndexedDB handle, a `fetch` promise) are not
//! `Send`: there the same traits ask for nothing. [`MaybeSend`] and [`MaybeSync`] are `Send` and
//! `Sync` natively and empty in a browser; every type that is `Send` (or `Sync`) has them.

use std::future::Future;
use std::pin::Pin;

/// `Send` natively; nothing in a browser.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}

/// `Sync` natively; nothing in a browser.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}

/// `Send` natively; nothing in a browser.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` natively; nothing in a browser.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A boxed future: `Send` natively, not in a browser.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future: `Send` natively, not in a browser.
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;
