//! DPoP keys that no script can read: WebCrypto ECDSA P-256 key pairs made with
//! `extractable: false`, kept in IndexedDB as the `CryptoKeyPair` object itself, signing through
//! `crypto.subtle.sign` (a promise, hence atoauth's async [`DpopSigner`]).

use std::sync::Arc;

use atoauth::platform::BoxFuture;
use atoauth::protocol::crypto::{Jwk, KeyError};
use atoauth::protocol::dpop::{DpopKeyStore, DpopSigner};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CryptoKey, CryptoKeyPair, EcKeyGenParams, EcdsaParams};

use crate::error::describe;
use crate::idb::{Database, KEYS};
use crate::page::{settle, subtle};

/// A WebCrypto key pair whose private key cannot be exported.
#[derive(Debug)]
pub struct WebCryptoKey {
    private: CryptoKey,
    public: Jwk,
}

impl WebCryptoKey {
    /// Whether the browser would let anyone export the private key (never, for keys made
    /// here): what the tests assert from the page.
    #[must_use]
    pub fn extractable(&self) -> bool {
        self.private.extractable()
    }
}

fn failed(what: &str, error: &impl std::fmt::Display) -> KeyError {
    KeyError::External(format!("{what}: {error}"))
}

impl DpopSigner for WebCryptoKey {
    fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, KeyError>> {
        Box::pin(async move {
            let subtle = subtle().map_err(|e| failed("WebCrypto", &e))?;
            let params = EcdsaParams::new_with_str("ECDSA", "SHA-256");
            // WebCrypto's ECDSA signature is already the JWS form: r || s, 32 bytes each.
            let promise = subtle
                .sign_with_object_and_u8_array(&params, &self.private, message)
                .map_err(|e| failed("crypto.subtle.sign", &describe(&e)))?;
            let signature = settle("crypto.subtle.sign", promise)
                .await
                .map_err(|e| failed("crypto.subtle.sign", &e))?;
            Ok(Uint8Array::new(&signature).to_vec())
        })
    }
}

/// Makes non-extractable WebCrypto keys and keeps them in IndexedDB, by thumbprint.
#[derive(Clone, Debug)]
pub struct WebCryptoKeyStore {
    db: Database,
}

impl WebCryptoKeyStore {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }

    /// The key store in the IndexedDB database `database` (created if needed).
    ///
    /// # Errors
    /// When IndexedDB is unavailable.
    pub async fn open(database: &str) -> Result<Self, crate::BrowserError> {
        Ok(Self::new(Database::open(database).await?))
    }

    async fn public_of(pair: &CryptoKeyPair) -> Result<Jwk, KeyError> {
        let subtle = subtle().map_err(|e| failed("WebCrypto", &e))?;
        // Only the public half is exported; the private one cannot be.
        let promise = subtle
            .export_key("jwk", &pair.get_public_key())
            .map_err(|e| failed("crypto.subtle.exportKey", &describe(&e)))?;
        let exported = settle("crypto.subtle.exportKey", promise)
            .await
            .map_err(|e| failed("crypto.subtle.exportKey", &e))?;
        let member = |name: &str| {
            js_sys::Reflect::get(&exported, &JsValue::from_str(name))
                .ok()
                .and_then(|v| v.as_string())
                .ok_or_else(|| failed("the exported public key", &format!("no {name}")))
        };
        Ok(Jwk::public_p256(member("x")?, member("y")?))
    }

    fn key_of(pair: &CryptoKeyPair, public: Jwk) -> Arc<dyn DpopSigner> {
        Arc::new(WebCryptoKey {
            private: pair.get_private_key(),
            public,
        })
    }
}

#[async_trait::async_trait(?Send)]
impl DpopKeyStore for WebCryptoKeyStore {
    async fn generate(&self) -> Result<Arc<dyn DpopSigner>, KeyError> {
        let subtle = subtle().map_err(|e| failed("WebCrypto", &e))?;
        let usages = Array::of2(&JsValue::from_str("sign"), &JsValue::from_str("verify"));
        let promise = subtle
            .generate_key_with_object(&EcKeyGenParams::new("ECDSA", "P-256"), false, &usages)
            .map_err(|e| failed("crypto.subtle.generateKey", &describe(&e)))?;
        let pair: CryptoKeyPair = settle("crypto.subtle.generateKey", promise)
            .await
            .map_err(|e| failed("crypto.subtle.generateKey", &e))?
            .unchecked_into();
        let public = Self::public_of(&pair).await?;
        self.db
            .put(KEYS, &public.thumbprint(), &pair)
            .await
            .map_err(|e| failed("keeping the DPoP key in IndexedDB", &e))?;
        Ok(Self::key_of(&pair, public))
    }

    async fn load(&self, public: &Jwk) -> Result<Option<Arc<dyn DpopSigner>>, KeyError> {
        let stored = self
            .db
            .get(KEYS, &public.thumbprint())
            .await
            .map_err(|e| failed("reading the DPoP key from IndexedDB", &e))?;
        let Some(pair) = stored else {
            return Ok(None);
        };
        let pair: CryptoKeyPair = pair.unchecked_into();
        let found = Self::public_of(&pair).await?;
        Ok(Some(Self::key_of(&pair, found)))
    }

    async fn delete(&self, public: &Jwk) -> Result<(), KeyError> {
        self.db
            .take(KEYS, &public.thumbprint())
            .await
            .map(drop)
            .map_err(|e| failed("deleting the DPoP key from IndexedDB", &e))
    }
}
