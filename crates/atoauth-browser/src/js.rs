//! The JavaScript API: `AtoauthClient`, exported by the ES module that `wasm-bindgen --target
//! web` makes of this crate. Every method returns a promise; errors are `Error`s whose message
//! says what went wrong.
//!
//! ```js
//! import init, { AtoauthClient } from './pkg/atoauth_browser.js';
//! await init();
//! const client = await AtoauthClient.create({ handleResolver: 'https://bsky.social' });
//! const session = await client.init();          // null, or { did, handle, state }
//! await client.signIn('alice.bsky.social');      // leaves the page for the PDS
//! await client.procedure('com.atproto.repo.createRecord', { repo: session.did, ... });
//! await client.signOut();
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use atoauth::{AuthorizeOptions, ClientMetadata, OAuthSession, SessionEndCause, SessionEvent, Url};
use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::client::{BrowserOAuthClient, BrowserOptions, ClientChoice, InitOutcome, TabNotice};
use crate::error::{BrowserError, describe};

/// The sign-in state a page shows.
struct State {
    client: BrowserOAuthClient,
    session: RefCell<Option<OAuthSession>>,
}

/// atoauth's browser client, for JavaScript.
#[wasm_bindgen(js_name = AtoauthClient)]
pub struct JsClient {
    state: Rc<State>,
}

impl std::fmt::Debug for JsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtoauthClient")
            .field("client", &self.state.client)
            .finish_non_exhaustive()
    }
}

fn error(error: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&error.to_string()).into()
}

fn option(options: &JsValue, name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(options, &JsValue::from_str(name))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn url_option(options: &JsValue, name: &str) -> Result<Option<Url>, JsValue> {
    option(options, name)
        .map(|v| {
            let text = v
                .as_string()
                .ok_or_else(|| error(format!("{name} must be a URL string")))?;
            Url::parse(&text).map_err(|e| error(format!("{name}: {e}")))
        })
        .transpose()
}

/// A URL option that may be relative to the page.
fn page_url_option(options: &JsValue, name: &str) -> Result<Option<Url>, JsValue> {
    let Some(value) = option(options, name) else {
        return Ok(None);
    };
    let text = value
        .as_string()
        .ok_or_else(|| error(format!("{name} must be a URL string")))?;
    let page = crate::page::window()
        .map_err(error)?
        .location()
        .href()
        .map_err(|_| error("the page has no URL"))?;
    let base = Url::parse(&page).map_err(|e| error(format!("the page's URL: {e}")))?;
    base.join(&text)
        .map(Some)
        .map_err(|e| error(format!("{name}: {e}")))
}

/// `{ did, handle, state }` for the page.
fn describe_session(session: &OAuthSession, state: &str) -> JsValue {
    let object = Object::new();
    let set = |name: &str, value: JsValue| {
        let _ = js_sys::Reflect::set(&object, &JsValue::from_str(name), &value);
    };
    set("did", JsValue::from_str(session.did().as_str()));
    set(
        "handle",
        session
            .handle()
            .map_or(JsValue::NULL, |h| JsValue::from_str(h.as_str())),
    );
    set("state", JsValue::from_str(state));
    object.into()
}

/// A short, stable name for why a session ended, for pages to branch on.
fn cause_code(cause: &SessionEndCause) -> &'static str {
    match cause {
        SessionEndCause::SignedOut => "signed-out",
        SessionEndCause::RefreshRejected { .. } => "refresh-rejected",
        SessionEndCause::TokenRejected => "token-rejected",
        SessionEndCause::Expired => "expired",
        SessionEndCause::AuthorizationServerChanged { .. } => "authorization-server-changed",
        SessionEndCause::KeyRemoved { .. } => "key-removed",
        SessionEndCause::ClientChanged => "client-changed",
        SessionEndCause::DpopKeyMissing => "dpop-key-missing",
        SessionEndCause::AssertionRefused { .. } => "assertion-refused",
        _ => "other",
    }
}

/// `{ kind, did, … }` for a session event; see [`JsClient::on_session`].
fn describe_event(event: &SessionEvent) -> Option<Object> {
    let object = Object::new();
    let set = |name: &str, value: &str| {
        let _ = js_sys::Reflect::set(&object, &JsValue::from_str(name), &value.into());
    };
    let did = match event {
        SessionEvent::Created { did, .. } => {
            set("kind", "created");
            did
        }
        SessionEvent::Updated { did, .. } => {
            set("kind", "updated");
            did
        }
        SessionEvent::RefreshFailed { did, error, .. } => {
            set("kind", "refresh-failed");
            set("error", error);
            did
        }
        SessionEvent::ScopeChanged {
            did, before, after, ..
        } => {
            set("kind", "scope-changed");
            set("before", before);
            set("after", after);
            did
        }
        SessionEvent::Deleted { did, cause, .. } => {
            set("kind", "ended");
            set("cause", cause_code(cause));
            set("message", &cause.to_string());
            did
        }
        _ => return None,
    };
    set("did", did.as_str());
    Some(object)
}

fn to_js(value: &serde_json::Value) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(&value.to_string())
}

fn from_js(value: &JsValue) -> Result<serde_json::Value, JsValue> {
    if value.is_undefined() {
        return Ok(serde_json::Value::Null);
    }
    let text = js_sys::JSON::stringify(value)?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| error(format!("not JSON: {e}")))
}

impl State {
    fn session(&self) -> Result<OAuthSession, JsValue> {
        self.session
            .borrow()
            .clone()
            .ok_or_else(|| error("nobody is signed in"))
    }
}

#[wasm_bindgen(js_class = AtoauthClient)]
impl JsClient {
    /// Creates the client. `options`:
    /// - `handleResolver` (required): a URL answering `com.atproto.identity.resolveHandle`;
    /// - `scope`: for the development client (default `atproto transition:generic`);
    /// - `clientMetadata`: a published client's metadata object (default: the development
    ///   client, for a page on `http://127.0.0.1`);
    /// - `plcDirectory`: default `https://plc.directory`;
    /// - `insecureAllowLoopbackHttp`: reach a PDS on this machine over http (development);
    /// - `insecureAllowClientIdPort`: accept a port in `clientMetadata.client_id` (a test
    ///   machine's client host);
    /// - `database`: the IndexedDB name (default `atoauth`);
    /// - `clientAssertionBackend`: with a confidential `clientMetadata`, the URL (absolute, or
    ///   relative to the page) of the app's client-assertion backend, such as
    ///   `/oauth/client-assertion` under `atoauth serve --spa <dir> --keys …`.
    pub fn create(options: JsValue) -> Promise {
        future_to_promise(async move {
            let client = match option(&options, "clientMetadata") {
                Some(metadata) => {
                    let metadata: ClientMetadata = serde_json::from_value(from_js(&metadata)?)
                        .map_err(|e| error(format!("clientMetadata: {e}")))?;
                    ClientChoice::Published(Box::new(metadata))
                }
                None => ClientChoice::Loopback {
                    scope: option(&options, "scope")
                        .and_then(|s| s.as_string())
                        .unwrap_or_else(|| "atproto transition:generic".to_owned()),
                },
            };
            let options = BrowserOptions {
                client,
                handle_resolver: url_option(&options, "handleResolver")?,
                plc_directory: url_option(&options, "plcDirectory")?,
                insecure_allow_loopback_http: option(&options, "insecureAllowLoopbackHttp")
                    .is_some_and(|v| v.is_truthy()),
                database: option(&options, "database")
                    .and_then(|s| s.as_string())
                    .unwrap_or_else(|| "atoauth".to_owned()),
                client_assertion_backend: page_url_option(&options, "clientAssertionBackend")?,
                insecure_allow_client_id_port: option(&options, "insecureAllowClientIdPort")
                    .is_some_and(|v| v.is_truthy()),
            };
            let client = BrowserOAuthClient::new(options).await.map_err(error)?;
            Ok(JsClient {
                state: Rc::new(State {
                    client,
                    session: RefCell::new(None),
                }),
            }
            .into())
        })
    }

    /// Processes a sign-in callback, or restores the last session. Resolves to
    /// `{ did, handle, state: 'signed-in' | 'restored' }`, or `null` when nobody is signed in.
    pub fn init(&self) -> Promise {
        let state = Rc::clone(&self.state);
        future_to_promise(async move {
            let (session, label) = match state.client.init().await.map_err(error)? {
                InitOutcome::SignedIn { session, .. } => (session, "signed-in"),
                InitOutcome::Restored(session) => (session, "restored"),
                _ => return Ok(JsValue::NULL),
            };
            let described = describe_session(&session, label);
            *state.session.borrow_mut() = Some(session);
            Ok(described)
        })
    }

    /// Signs `identifier` (a handle, DID or PDS URL) in by sending this page to the PDS.
    #[wasm_bindgen(js_name = signIn)]
    pub fn sign_in(&self, identifier: String) -> Promise {
        let state = Rc::clone(&self.state);
        future_to_promise(async move {
            state
                .client
                .sign_in_redirect(&identifier, AuthorizeOptions::default())
                .await
                .map_err(error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Signs `identifier` in through a popup; resolves to `{ did, handle, state: 'signed-in' }`.
    #[wasm_bindgen(js_name = signInPopup)]
    pub fn sign_in_popup(&self, identifier: String) -> Promise {
        let state = Rc::clone(&self.state);
        future_to_promise(async move {
            let session = state
                .client
                .sign_in_popup(&identifier, AuthorizeOptions::default(), 300_000)
                .await
                .map_err(error)?;
            let described = describe_session(&session, "signed-in");
            *state.session.borrow_mut() = Some(session);
            Ok(described)
        })
    }

    /// Signs out: revokes the tokens at the PDS and forgets the session and its key.
    #[wasm_bindgen(js_name = signOut)]
    pub fn sign_out(&self) -> Promise {
        let state = Rc::clone(&self.state);
        future_to_promise(async move {
            let session = state.session()?;
            state.client.sign_out(&session).await.map_err(error)?;
            *state.session.borrow_mut() = None;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// An XRPC query (GET) with `params` (an object of strings); resolves to its JSON.
    pub fn query(&self, nsid: String, params: JsValue) -> Promise {
        let state = Rc::clone(&self.state);
        future_to_promise(async move {
            let session = state.session()?;
            let params: Vec<(String, String)> = if params.is_undefined() || params.is_null() {
                Vec::new()
            } else {
                Object::entries(params.unchecked_ref())
                    .iter()
                    .filter_map(|entry| {
                        let pair: js_sys::Array = entry.unchecked_into();
                        let value = pair.get(1);
                        Some((
                            pair.get(0).as_string()?,
                            // XRPC query parameters are strings; numbers and booleans are
                            // written as JSON writes them.
                            value
                                .as_string()
                                .or_else(|| value.as_f64().map(|n| n.to_string()))
                                .or_else(|| value.as_bool().map(|b| b.to_string()))?,
                        ))
                    })
                    .collect()
            };
            let pairs: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let answer: serde_json::Value = session
                .query(nsid.as_str(), &pairs)
                .await
                .map_err(|e| error(BrowserError::from(e)))?;
            to_js(&answer)
        })
    }

    /// An XRPC procedure (POST) with `input` as its JSON body; resolves to its JSON answer.
    pub fn procedure(&self, nsid: String, input: JsValue) -> Promise {
        let state = Rc::clone(&self.state);
        future_to_promise(async move {
            let session = state.session()?;
            let input = from_js(&input)?;
            let answer: serde_json::Value = session
                .procedure(nsid.as_str(), &input)
                .await
                .map_err(|e| error(BrowserError::from(e)))?;
            to_js(&answer)
        })
    }

    /// The signed-in account's DID, or `null`.
    #[wasm_bindgen(getter)]
    pub fn did(&self) -> Option<String> {
        self.state
            .session
            .borrow()
            .as_ref()
            .map(|s| s.did().as_str().to_owned())
    }

    /// Calls `callback(event)` for each event of this tab's sessions, where `event` is
    /// `{ kind, did }` and `kind` is `'created'`, `'updated'` (refreshed), `'refresh-failed'`
    /// (with `error`; the session stays and the next call tries again), `'scope-changed'` (with
    /// `before` and `after`), or `'ended'` with `cause` (`'signed-out'`, `'refresh-rejected'`,
    /// `'expired'`, `'assertion-refused'`, …) and a readable `message`.
    #[wasm_bindgen(js_name = onSession)]
    pub fn on_session(&self, callback: Function) {
        self.state.client.on_session_event(move |event| {
            let Some(object) = describe_event(event) else {
                return;
            };
            if let Err(e) = callback.call1(&JsValue::NULL, &object) {
                web_sys::console::warn_1(&JsValue::from_str(&describe(&e)));
            }
        });
    }

    /// Calls `callback({ kind: 'updated' | 'deleted', did })` when another tab refreshes or
    /// ends a session of this app.
    #[wasm_bindgen(js_name = onOtherTab)]
    pub fn on_other_tab(&self, callback: Function) {
        self.state.client.on_tab_notice(move |notice| {
            let (kind, did) = match notice {
                TabNotice::Updated(did) => ("updated", did),
                TabNotice::Deleted(did) => ("deleted", did),
            };
            let object = Object::new();
            let _ = js_sys::Reflect::set(&object, &"kind".into(), &kind.into());
            let _ = js_sys::Reflect::set(&object, &"did".into(), &did.as_str().into());
            if let Err(e) = callback.call1(&JsValue::NULL, &object) {
                web_sys::console::warn_1(&JsValue::from_str(&describe(&e)));
            }
        });
    }
}
