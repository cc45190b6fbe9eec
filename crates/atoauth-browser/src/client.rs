//! The browser client: sign-in by redirect or popup, the callback, restoring the last session,
//! sign-out, and notices from other tabs.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use atoauth::client_metadata::LoopbackClient;
use atoauth::protocol::client_auth::remote::RemoteClientAssertions;
use atoauth::{
    AuthorizeOptions, CallbackParams, ClientMetadata, Did, OAuthClient, OAuthSession, SessionEvent,
    SessionId, TargetPolicy, Url,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::channel::{Channel, Notice};
use crate::error::BrowserError;
use crate::fetch::FetchClient;
use crate::idb::{Database, META};
use crate::keys::WebCryptoKeyStore;
use crate::listeners::Listeners;
use crate::locks::WebLocks;
use crate::page::{sleep, subtle, window};
use crate::stores::IndexedDbStore;

/// Which OAuth client the app is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientChoice {
    /// The development client (`client_id` `http://localhost`), for a page served from
    /// `http://127.0.0.1:<port>` (or `localhost`): the redirect is this page's URL on
    /// `127.0.0.1`, since the PDS redirects loopback clients only there.
    Loopback {
        /// The scope to ask for (with `atproto`).
        scope: String,
    },
    /// A published client: its metadata, served at its `client_id`.
    Published(Box<ClientMetadata>),
}

/// What [`BrowserOAuthClient::new`] needs.
#[derive(Clone, Debug)]
pub struct BrowserOptions {
    /// The client.
    pub client: ClientChoice,
    /// The service that resolves handles (`com.atproto.identity.resolveHandle`): required, a
    /// browser has no DNS. A PDS or an app view, such as `https://bsky.social`.
    pub handle_resolver: Option<Url>,
    /// The PLC directory (default `https://plc.directory`).
    pub plc_directory: Option<Url>,
    /// Allow plain http to loopback servers (a PDS on this machine). Development only.
    pub insecure_allow_loopback_http: bool,
    /// The IndexedDB database (and channel, and lock) name; one per app on an origin.
    pub database: String,
    /// The app's client-assertion backend (`https://app.example/oauth/client-assertion`): a
    /// published confidential client then gets every assertion from it, just in time
    /// (section U). `None`: the client is public.
    pub client_assertion_backend: Option<Url>,
    /// Accept a port in a published client's `client_id` (B1 forbids it; the official PDS
    /// accepts it). Only for a client host on a test machine.
    pub insecure_allow_client_id_port: bool,
}

impl BrowserOptions {
    /// Options for `client`, resolving handles through `handle_resolver`.
    #[must_use]
    pub fn new(client: ClientChoice, handle_resolver: Url) -> Self {
        Self {
            client,
            handle_resolver: Some(handle_resolver),
            plc_directory: None,
            insecure_allow_loopback_http: false,
            database: "atoauth".to_owned(),
            client_assertion_backend: None,
            insecure_allow_client_id_port: false,
        }
    }
}

/// What [`BrowserOAuthClient::init`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitOutcome {
    /// The page was the sign-in's callback: the new session.
    SignedIn {
        /// The session.
        session: OAuthSession,
        /// The app state given at sign-in.
        app_state: Option<String>,
    },
    /// The last session of this browser, restored.
    Restored(OAuthSession),
    /// Nobody is signed in.
    SignedOut,
}

/// What the page learns from other tabs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TabNotice {
    /// Another tab stored new tokens for this account (a sign-in or a refresh).
    Updated(String),
    /// Another tab signed this account out, or its session ended.
    Deleted(String),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LastSession {
    did: String,
    session_id: String,
}

const LAST: &str = "last-session";
const POPUP_STATE: &str = "atoauth:popup:";

/// atoauth in a single-page app.
pub struct BrowserOAuthClient {
    client: OAuthClient,
    db: Database,
    channel: Channel,
    redirect_uri: String,
    listeners: Listeners<TabNotice>,
    session_listeners: Listeners<SessionEvent>,
    // Keeps the channel's message handler alive as long as the client.
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl std::fmt::Debug for BrowserOAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserOAuthClient")
            .field("client_id", &self.client.client_id())
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// This page's URL on `127.0.0.1` when it is on `localhost`, without query or fragment: the
/// loopback redirect (browsers treat the two hosts as different origins, and the PDS sends
/// loopback clients back to `127.0.0.1` only).
fn loopback_redirect(href: &str) -> Result<String, BrowserError> {
    let mut url =
        Url::parse(href).map_err(|e| BrowserError::Options(format!("the page's URL: {e}")))?;
    if url.scheme() != "http" {
        return Err(BrowserError::Options(
            "the development (loopback) client needs a page on http://127.0.0.1".to_owned(),
        ));
    }
    match url.host_str() {
        Some("127.0.0.1" | "[::1]") => {}
        Some("localhost") => {
            url.set_host(Some("127.0.0.1"))
                .map_err(|e| BrowserError::Options(e.to_string()))?;
        }
        _ => {
            return Err(BrowserError::Options(
                "the development (loopback) client needs a page on 127.0.0.1 or localhost"
                    .to_owned(),
            ));
        }
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.into())
}

fn href() -> Result<String, BrowserError> {
    window()?
        .location()
        .href()
        .map_err(|e| BrowserError::js("location.href", &e))
}

/// The callback parameters in this page's URL (query, or fragment for
/// `response_mode=fragment`), if it is a callback.
fn callback_in(href: &str) -> Option<CallbackParams> {
    let url = Url::parse(href).ok()?;
    let is_callback = |query: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(name, _)| name == "state" || name == "code" || name == "error")
    };
    if url.query().is_some_and(is_callback) {
        return Some(CallbackParams::from_url(&url));
    }
    url.fragment()
        .filter(|fragment| is_callback(fragment))
        .map(CallbackParams::from_query)
}

impl BrowserOAuthClient {
    /// A client with its IndexedDB stores, WebCrypto keys, Web Locks and channel.
    ///
    /// # Errors
    /// [`BrowserError::NotSecureContext`], [`BrowserError::NoIndexedDb`], missing options
    /// (the handle resolver), or an invalid client.
    pub async fn new(options: BrowserOptions) -> Result<Self, BrowserError> {
        subtle()?;
        let handle_resolver = options.handle_resolver.ok_or_else(|| {
            BrowserError::Options(
                "handle_resolver is required in a browser (there is no DNS): give a service \
                 that answers com.atproto.identity.resolveHandle, such as your PDS"
                    .to_owned(),
            )
        })?;
        let db = Database::open(&options.database).await?;
        let channel = Channel::open(&format!("{}:sessions", options.database))?;
        let store = Arc::new(IndexedDbStore::new(db.clone(), Some(channel.clone())));
        let policy = if options.insecure_allow_loopback_http {
            TargetPolicy::InsecureAllowLoopbackHttp
        } else {
            TargetPolicy::PublicHttpsOnly
        };
        let mut builder = OAuthClient::builder()
            .http_client(Arc::new(FetchClient::new(policy)))
            .target_policy(policy)
            .handle_resolver(handle_resolver)
            .state_store(store.clone())
            .session_store(store)
            .refresh_lock(Arc::new(WebLocks::new(
                &format!("{}:refresh:", options.database),
                20_000,
            )))
            .dpop_key_store(Arc::new(WebCryptoKeyStore::new(db.clone())));
        if let Some(plc) = options.plc_directory {
            builder = builder.plc_directory(plc);
        }
        let client_is_loopback = matches!(options.client, ClientChoice::Loopback { .. });
        let redirect_uri = match options.client {
            ClientChoice::Loopback { scope } => {
                let href = href()?;
                let redirect = loopback_redirect(&href)?;
                // A sign-in started on `localhost` would come back to `127.0.0.1`, another
                // origin with another IndexedDB: move the page first, as the TS client does.
                if let Ok(mut here) = Url::parse(&href)
                    && here.host_str() == Some("localhost")
                {
                    here.set_host(Some("127.0.0.1"))
                        .map_err(|e| BrowserError::Options(e.to_string()))?;
                    window()?
                        .location()
                        .replace(here.as_str())
                        .map_err(|e| BrowserError::js("location.replace", &e))?;
                    return Err(BrowserError::MovingToLoopbackIp(here.into()));
                }
                let client = LoopbackClient::new([redirect.clone()], Some(&scope))
                    .map_err(|v| BrowserError::Options(v.to_string()))?;
                builder = builder.loopback(client);
                redirect
            }
            ClientChoice::Published(metadata) => {
                let redirect = metadata.redirect_uris.first().cloned().ok_or_else(|| {
                    BrowserError::Options("the client metadata has no redirect_uris".to_owned())
                })?;
                builder = builder.metadata(*metadata);
                if options.insecure_allow_client_id_port {
                    builder = builder.insecure_allow_client_id_port();
                }
                if let Some(backend) = options.client_assertion_backend.clone() {
                    let http = Arc::new(FetchClient::new(policy).with_app_cookies());
                    builder = builder
                        .client_assertions(Arc::new(RemoteClientAssertions::new(backend, http)));
                }
                redirect
            }
        };
        if options.client_assertion_backend.is_some() && client_is_loopback {
            return Err(BrowserError::Options(
                "a client-assertion backend serves a published confidential client, not the \
                 development (loopback) client"
                    .to_owned(),
            ));
        }
        let session_listeners = Listeners::<SessionEvent>::default();
        let told = session_listeners.clone();
        builder =
            builder.on_session_event(Arc::new(move |event: &SessionEvent| told.notify(event)));
        let client = builder.build()?;

        let listeners = Listeners::<TabNotice>::default();
        let heard = listeners.clone();
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let notice = match Channel::read(&event.data()) {
                    Some(Notice::Updated { did }) => TabNotice::Updated(did),
                    Some(Notice::Deleted { did }) => TabNotice::Deleted(did),
                    Some(Notice::PopupDone { .. }) | None => return,
                };
                heard.notify(&notice);
            },
        );
        channel
            .inner()
            .add_event_listener_with_callback("message", on_message.as_ref().unchecked_ref())
            .map_err(|e| BrowserError::js("BroadcastChannel", &e))?;
        Ok(Self {
            client,
            db,
            channel,
            redirect_uri,
            listeners,
            session_listeners,
            _on_message: on_message,
        })
    }

    /// The core client, for everything else.
    #[must_use]
    pub fn oauth_client(&self) -> &OAuthClient {
        &self.client
    }

    /// The redirect URI sign-ins come back to.
    #[must_use]
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Calls `listener` when another tab updates or ends a session.
    pub fn on_tab_notice(&self, listener: impl Fn(&TabNotice) + 'static) {
        self.listeners.add(listener);
    }

    /// Calls `listener` with each event of this tab's sessions (Q4): created, refreshed, a
    /// refresh that failed and will be tried again, a changed grant, and the end of a session
    /// with its cause — so the page can say why someone was signed out.
    pub fn on_session_event(&self, listener: impl Fn(&SessionEvent) + 'static) {
        self.session_listeners.add(listener);
    }

    /// Call once when the page loads. If the page is a sign-in's callback (query or fragment),
    /// completes it with the core's `state` and `iss` checks, removes the parameters from the
    /// address bar, and returns the new session; otherwise restores the last session of this
    /// browser, or reports that nobody is signed in.
    ///
    /// # Errors
    /// A refused or failed callback, or a store failure. A session that ended is not an error:
    /// it is [`InitOutcome::SignedOut`].
    pub async fn init(&self) -> Result<InitOutcome, BrowserError> {
        let href = href()?;
        if let Some(params) = callback_in(&href) {
            // The parameters go from the address bar (and from history) before anything else,
            // so a reload never replays them.
            let mut clean = Url::parse(&href).map_err(|e| BrowserError::Options(e.to_string()))?;
            clean.set_query(None);
            clean.set_fragment(None);
            window()?
                .history()
                .and_then(|h| h.replace_state_with_url(&JsValue::NULL, "", Some(clean.as_str())))
                .map_err(|e| BrowserError::js("history.replaceState", &e))?;
            let completed = self.client.complete_authorization(params).await?;
            self.remember(&completed.session).await?;
            if let Some(nonce) = completed
                .app_state
                .as_deref()
                .and_then(|s| s.strip_prefix(POPUP_STATE))
            {
                self.channel.tell(&Notice::PopupDone {
                    nonce: nonce.to_owned(),
                });
                let _ = window()?.close();
            }
            return Ok(InitOutcome::SignedIn {
                session: completed.session,
                app_state: completed.app_state,
            });
        }
        match self.last().await? {
            Some(session) => Ok(InitOutcome::Restored(session)),
            None => Ok(InitOutcome::SignedOut),
        }
    }

    /// Starts signing in `identifier` (a handle, a DID or a PDS URL) and sends this page to the
    /// authorization server; [`init`](Self::init) finishes it when the browser comes back.
    ///
    /// # Errors
    /// Resolution, discovery or PAR failures.
    pub async fn sign_in_redirect(
        &self,
        identifier: &str,
        options: AuthorizeOptions,
    ) -> Result<(), BrowserError> {
        let url = self
            .client
            .start_authorization(identifier, options.redirect_uri(self.redirect_uri.clone()))
            .await?;
        window()?
            .location()
            .assign(url.as_str())
            .map_err(|e| BrowserError::js("location.assign", &e))
    }

    /// Signs `identifier` in through a popup window, which comes back to this app's page; that
    /// page's [`init`](Self::init) completes the sign-in, tells this tab over the
    /// `BroadcastChannel` and closes. Waits at most `timeout_ms` (a popup the user closed is
    /// noticed only then: the PDS's opener policy hides it from this page).
    ///
    /// # Errors
    /// A blocked popup, a timeout, or what the sign-in failed with.
    pub async fn sign_in_popup(
        &self,
        identifier: &str,
        options: AuthorizeOptions,
        timeout_ms: u32,
    ) -> Result<OAuthSession, BrowserError> {
        let nonce = format!("{:x}", js_sys::Math::random().to_bits());
        let url = self
            .client
            .start_authorization(
                identifier,
                options
                    .redirect_uri(self.redirect_uri.clone())
                    .app_state(format!("{POPUP_STATE}{nonce}")),
            )
            .await?;
        let popup = window()?
            .open_with_url_and_target_and_features(url.as_str(), "atoauth-sign-in", "popup")
            .map_err(|e| BrowserError::js("window.open", &e))?
            .ok_or_else(|| BrowserError::Options("the sign-in popup was blocked".to_owned()))?;
        let done = Rc::new(RefCell::new(false));
        let seen = Rc::clone(&done);
        let expected = nonce.clone();
        let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if Channel::read(&event.data())
                    == Some(Notice::PopupDone {
                        nonce: expected.clone(),
                    })
                {
                    *seen.borrow_mut() = true;
                }
            },
        );
        self.channel
            .inner()
            .add_event_listener_with_callback("message", listener.as_ref().unchecked_ref())
            .map_err(|e| BrowserError::js("BroadcastChannel", &e))?;
        let started = js_sys::Date::now();
        let outcome = loop {
            if *done.borrow() {
                break self.last().await?.ok_or_else(|| {
                    BrowserError::Options("the popup signed in but no session is stored".into())
                });
            }
            // `popup.closed` is no signal: the PDS's pages send `Cross-Origin-Opener-Policy:
            // same-origin`, which cuts the popup off from this page as soon as it gets there.
            if js_sys::Date::now() - started > f64::from(timeout_ms) {
                let _ = popup.close();
                break Err(BrowserError::Options(
                    "the sign-in popup timed out".to_owned(),
                ));
            }
            sleep(100).await;
        };
        let _ = self
            .channel
            .inner()
            .remove_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
        outcome
    }

    /// The newest session of `did` in this browser, if any.
    ///
    /// # Errors
    /// A store failure, or a session that cannot be resumed for a reason other than having
    /// ended.
    pub async fn restore(&self, did: &Did) -> Result<Option<OAuthSession>, BrowserError> {
        let mut sessions = self.client.sessions_of(did).await?;
        sessions.sort_by_key(|s| std::cmp::Reverse(s.updated_at));
        for data in sessions {
            match self.client.restore(&data.did, &data.session_id).await {
                Ok(session) => {
                    self.remember(&session).await?;
                    return Ok(Some(session));
                }
                Err(error) if error.requires_sign_in() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(None)
    }

    /// Signs `session` out: revokes its tokens at the server, deletes it here (and its DPoP
    /// key), and tells the other tabs.
    ///
    /// # Errors
    /// Only when the local deletion fails; a failed revocation is logged by the core.
    pub async fn sign_out(&self, session: &OAuthSession) -> Result<(), BrowserError> {
        session.sign_out().await?;
        self.db.take(META, LAST).await.map(drop)
    }

    async fn remember(&self, session: &OAuthSession) -> Result<(), BrowserError> {
        let last = LastSession {
            did: session.did().as_str().to_owned(),
            session_id: session.session_id().secret().to_owned(),
        };
        let text =
            serde_json::to_string(&last).map_err(|e| BrowserError::Options(e.to_string()))?;
        self.db.put(META, LAST, &JsValue::from_str(&text)).await
    }

    /// The last session signed in or restored in this browser, if it is still usable.
    async fn last(&self) -> Result<Option<OAuthSession>, BrowserError> {
        let Some(value) = self.db.get(META, LAST).await? else {
            return Ok(None);
        };
        let Some(last) = value
            .as_string()
            .and_then(|text| serde_json::from_str::<LastSession>(&text).ok())
        else {
            return Ok(None);
        };
        let (Ok(did), id) = (Did::new(&last.did), SessionId::new(last.session_id)) else {
            return Ok(None);
        };
        match self.client.restore(&did, &id).await {
            Ok(session) => Ok(Some(session)),
            Err(error) if error.requires_sign_in() => {
                self.db.take(META, LAST).await?;
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }
}
