//! A small async face on IndexedDB: one database per app, a few object stores, every operation
//! one transaction. Records are JSON strings; key pairs are stored as the `CryptoKeyPair` object
//! itself (IndexedDB keeps non-extractable keys by structured clone, unreadable).

use js_sys::{Array, Promise};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbObjectStore, IdbRequest, IdbTransactionMode};

use crate::error::{BrowserError, describe};
use crate::page::{settle, window};

/// Pending sign-ins (`state` → JSON).
pub(crate) const STATES: &str = "states";
/// Sessions (`<did> <session id>` → JSON).
pub(crate) const SESSIONS: &str = "sessions";
/// DPoP key pairs (thumbprint → `CryptoKeyPair`).
pub(crate) const KEYS: &str = "keys";
/// Small facts, such as the last signed-in session.
pub(crate) const META: &str = "meta";

const STORES: [&str; 4] = [STATES, SESSIONS, KEYS, META];
const VERSION: u32 = 1;

/// An open database.
#[derive(Clone, Debug)]
pub(crate) struct Database {
    db: IdbDatabase,
}

/// Waits for a request's `success` (its result) or `error` (its error's message).
async fn finished(what: &'static str, request: &IdbRequest) -> Result<JsValue, BrowserError> {
    let promise = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = settle(what, promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result().map_err(|e| BrowserError::js(what, &e)),
        Err(_) => {
            let error =
                js_sys::Reflect::get(request, &JsValue::from_str("error")).unwrap_or(JsValue::NULL);
            Err(BrowserError::Js {
                what,
                reason: describe(&error),
            })
        }
    }
}

impl Database {
    /// Opens (creating or upgrading) the database `name`.
    pub(crate) async fn open(name: &str) -> Result<Self, BrowserError> {
        let factory = window()?
            .indexed_db()
            .map_err(|e| BrowserError::NoIndexedDb(describe(&e)))?
            .ok_or_else(|| BrowserError::NoIndexedDb("indexedDB is missing".to_owned()))?;
        let request = factory
            .open_with_u32(name, VERSION)
            .map_err(|e| BrowserError::NoIndexedDb(describe(&e)))?;
        let opening = request.clone();
        let upgrade = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
            if let Ok(db) = opening.result() {
                let db: IdbDatabase = db.unchecked_into();
                for store in STORES {
                    // Fails only when it exists already (a later version's upgrade).
                    let _ = db.create_object_store(store);
                }
            }
        });
        request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        let db = finished("opening IndexedDB", &request)
            .await
            .map_err(|e| BrowserError::NoIndexedDb(e.to_string()))?;
        request.set_onupgradeneeded(None);
        drop(upgrade);
        Ok(Self {
            db: db.unchecked_into(),
        })
    }

    fn store(&self, name: &str, mode: IdbTransactionMode) -> Result<IdbObjectStore, BrowserError> {
        self.db
            .transaction_with_str_and_mode(name, mode)
            .and_then(|tx| tx.object_store(name))
            .map_err(|e| BrowserError::js("an IndexedDB transaction", &e))
    }

    /// The value under `key`, if any.
    pub(crate) async fn get(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<JsValue>, BrowserError> {
        let request = self
            .store(store, IdbTransactionMode::Readonly)?
            .get(&JsValue::from_str(key))
            .map_err(|e| BrowserError::js("IndexedDB get", &e))?;
        let value = finished("IndexedDB get", &request).await?;
        Ok((!value.is_undefined()).then_some(value))
    }

    /// Stores `value` under `key`, replacing what was there.
    pub(crate) async fn put(
        &self,
        store: &str,
        key: &str,
        value: &JsValue,
    ) -> Result<(), BrowserError> {
        let request = self
            .store(store, IdbTransactionMode::Readwrite)?
            .put_with_key(value, &JsValue::from_str(key))
            .map_err(|e| BrowserError::js("IndexedDB put", &e))?;
        finished("IndexedDB put", &request).await.map(drop)
    }

    /// Removes `key`; returns what was there. Both requests go in one transaction, queued
    /// before either is awaited, so nothing comes between the read and the delete.
    pub(crate) async fn take(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<JsValue>, BrowserError> {
        let objects = self.store(store, IdbTransactionMode::Readwrite)?;
        let key = JsValue::from_str(key);
        let read = objects
            .get(&key)
            .map_err(|e| BrowserError::js("IndexedDB get", &e))?;
        let delete = objects
            .delete(&key)
            .map_err(|e| BrowserError::js("IndexedDB delete", &e))?;
        let value = finished("IndexedDB get", &read).await?;
        finished("IndexedDB delete", &delete).await?;
        Ok((!value.is_undefined()).then_some(value))
    }

    /// Every key and value of `store`, in key order.
    pub(crate) async fn all(&self, store: &str) -> Result<Vec<(String, JsValue)>, BrowserError> {
        let objects = self.store(store, IdbTransactionMode::Readonly)?;
        let keys = objects
            .get_all_keys()
            .map_err(|e| BrowserError::js("IndexedDB getAllKeys", &e))?;
        let values = objects
            .get_all()
            .map_err(|e| BrowserError::js("IndexedDB getAll", &e))?;
        let keys: Array = finished("IndexedDB getAllKeys", &keys)
            .await?
            .unchecked_into();
        let values: Array = finished("IndexedDB getAll", &values)
            .await?
            .unchecked_into();
        Ok(keys
            .iter()
            .zip(values.iter())
            .filter_map(|(key, value)| Some((key.as_string()?, value)))
            .collect())
    }
}
