//! One refresh at a time across the tabs of an origin: atoauth's refresh lock over the Web Locks
//! API (`navigator.locks`). A lock is held while the promise returned to `request` is pending;
//! the guard resolves it. A tab that closes mid-refresh releases its locks with it.

use std::cell::RefCell;
use std::rc::Rc;

use atoauth::store::{RefreshGuard, RefreshLock, StoreError};
use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::describe;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks`, bound by hand: web-sys marks the Web Locks API unstable.
    type LockManager;

    #[wasm_bindgen(method, js_name = request)]
    fn request_with_options(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &Function,
    ) -> Promise;
}

/// Refresh locks shared by every tab of the origin.
#[derive(Clone, Debug)]
pub struct WebLocks {
    prefix: String,
    timeout_ms: u32,
}

impl WebLocks {
    /// Locks named `<prefix><key>`, waited for at most `timeout_ms`.
    #[must_use]
    pub fn new(prefix: &str, timeout_ms: u32) -> Self {
        Self {
            prefix: prefix.to_owned(),
            timeout_ms,
        }
    }
}

fn failed(reason: String) -> StoreError {
    StoreError::backend(std::io::Error::other(reason))
}

fn manager() -> Result<LockManager, StoreError> {
    let navigator = web_sys::window()
        .map(|w| w.navigator())
        .ok_or_else(|| failed("no window".to_owned()))?;
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks"))
        .map_err(|e| failed(describe(&e)))?;
    if locks.is_undefined() || locks.is_null() {
        return Err(failed(
            "the Web Locks API (navigator.locks) is unavailable: a secure context is needed"
                .to_owned(),
        ));
    }
    Ok(locks.unchecked_into())
}

/// A held Web Lock: resolving `release` ends the callback's promise, and with it the lock.
struct WebLockGuard {
    release: Option<Function>,
}

impl Drop for WebLockGuard {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}

#[async_trait::async_trait(?Send)]
impl RefreshGuard for WebLockGuard {
    async fn release(self: Box<Self>) {
        drop(self);
    }
}

#[async_trait::async_trait(?Send)]
impl RefreshLock for WebLocks {
    async fn lock(&self, key: &str) -> Result<Box<dyn RefreshGuard>, StoreError> {
        let name = format!("{}{key}", self.prefix);
        let release_slot: Rc<RefCell<Option<Function>>> = Rc::default();
        let held = {
            let slot = Rc::clone(&release_slot);
            Promise::new(&mut |resolve, _| {
                *slot.borrow_mut() = Some(resolve);
            })
        };
        let (granted, is_granted) = tokio::sync::oneshot::channel::<()>();
        let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
            let _ = granted.send(());
            held.into()
        });
        let options = Object::new();
        let signal = web_sys::AbortSignal::timeout_with_u32(self.timeout_ms);
        js_sys::Reflect::set(&options, &JsValue::from_str("signal"), &signal)
            .map_err(|e| failed(describe(&e)))?;
        let request = manager()?.request_with_options(&name, &options, callback.unchecked_ref());
        let request = JsFuture::from(request);
        tokio::select! {
            granted = is_granted => {
                granted.map_err(|_| failed("the lock request ended without the lock".to_owned()))?;
                Ok(Box::new(WebLockGuard { release: release_slot.borrow_mut().take() }))
            }
            ended = request => Err(failed(match ended {
                Err(error) => format!(
                    "the refresh lock {name:?} is still held after {} ms ({})",
                    self.timeout_ms,
                    describe(&error)
                ),
                Ok(_) => "the lock request ended without the lock".to_owned(),
            })),
        }
    }
}
