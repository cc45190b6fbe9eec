//! jacquard: its `HttpClient` and `XrpcClient` over an OAuth session, so every typed request of
//! `jacquard-api` (and jacquard-common's own `com.atproto.repo` types) can be sent with it.
//!
//! ```no_run
//! # async fn demo(session: atoauth::OAuthSession) -> Result<(), Box<dyn std::error::Error>> {
//! use jacquard_common::xrpc::XrpcClient;
//! use jacquard_common::xrpc::atproto::ListRecords;
//!
//! let client = atoauth_xrpc::jacquard::OAuthXrpc::new(session.clone());
//! let request: ListRecords = ListRecords {
//!     repo: session.did().as_str().parse()?,
//!     collection: "app.bsky.feed.post".parse()?,
//!     limit: Some(10),
//!     cursor: None,
//!     reverse: None,
//! };
//! match client.send(request).await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(error) => match atoauth_xrpc::jacquard::oauth_error(&error) {
//!         Some(atoauth::OAuthError::ScopeMissing { permission, .. }) => {
//!             println!("ask for {permission}")
//!         }
//!         _ => return Err(error.into()),
//!     },
//! }
//! # Ok(()) }
//! ```
//!
//! Implemented: jacquard-common's `HttpClient` (its `Error` is [`OAuthError`]) and
//! `XrpcClient` (`base_uri`, `opts`/`set_opts` for per-client options, `send`,
//! `send_with_opts`). Not implemented: jacquard's `AgentSession`, which hands out the access
//! token (`access_token()`) and would let an app or jacquard put it in a request by itself;
//! atoauth keeps tokens inside the session. Options that carry an `Authorization` are ignored:
//! the session authenticates. `set_base_uri` is ignored too: the session only talks to its PDS.

use std::sync::{Arc, Mutex, PoisonError};

use atoauth::{OAuthError, OAuthSession};
use jacquard_common::deps::fluent_uri::Uri;
use jacquard_common::error::{ClientError, XrpcResult};
use jacquard_common::http_client::HttpClient;
use jacquard_common::xrpc::{CallOptions, XrpcClient, XrpcExt, XrpcRequest, XrpcResponse};

use crate::transport;

/// An OAuth session as jacquard's transport.
#[derive(Clone, Debug)]
pub struct OAuthXrpc {
    session: OAuthSession,
    base: Uri<String>,
    opts: Arc<Mutex<CallOptions>>,
}

impl OAuthXrpc {
    /// The client for `session`.
    ///
    /// # Panics
    /// Never: a session's PDS is an absolute http(s) URL, which is always a valid URI.
    #[must_use]
    pub fn new(session: OAuthSession) -> Self {
        let base = Uri::parse(transport::base_uri(&session))
            .unwrap_or_else(|_| unreachable!("a PDS URL is a valid URI"));
        Self {
            session,
            base,
            opts: Arc::default(),
        }
    }

    /// The same, with every call sent through the PDS to the service `did#service_id`.
    ///
    /// # Errors
    /// As [`OAuthSession::with_proxy`].
    pub fn with_proxy(
        session: &OAuthSession,
        did: &atoauth::Did,
        service_id: &str,
    ) -> Result<Self, OAuthError> {
        Ok(Self::new(session.with_proxy(did, service_id)?))
    }

    /// The session it sends with.
    #[must_use]
    pub fn session(&self) -> &OAuthSession {
        &self.session
    }
}

/// The atoauth error inside a jacquard error, if that is what it is: a missing permission
/// ([`OAuthError::ScopeMissing`]), an ended session ([`OAuthError::requires_sign_in`]), a
/// network failure. `None` for an error jacquard found itself (an XRPC error body, a decoding
/// failure).
#[must_use]
pub fn oauth_error(error: &ClientError) -> Option<&OAuthError> {
    error.source_err()?.downcast_ref::<OAuthError>()
}

impl HttpClient for OAuthXrpc {
    type Error = OAuthError;

    async fn send_http(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, OAuthError> {
        transport::send(&self.session, request).await
    }
}

impl XrpcClient for OAuthXrpc {
    async fn base_uri(&self) -> Uri<String> {
        self.base.clone()
    }

    async fn opts(&self) -> CallOptions {
        self.opts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn set_opts(&self, opts: CallOptions) {
        *self.opts.lock().unwrap_or_else(PoisonError::into_inner) = opts;
    }

    async fn send<R>(&self, request: R) -> XrpcResult<XrpcResponse<R>>
    where
        R: XrpcRequest + Send + Sync + serde::Serialize,
        <R as XrpcRequest>::Response: Send + Sync,
    {
        let opts = self.opts().await;
        self.send_with_opts(request, opts).await
    }

    async fn send_with_opts<R>(
        &self,
        request: R,
        mut opts: CallOptions,
    ) -> XrpcResult<XrpcResponse<R>>
    where
        R: XrpcRequest + Send + Sync + serde::Serialize,
        <R as XrpcRequest>::Response: Send + Sync,
    {
        // The session authenticates; a token in the options never goes out.
        opts.auth = None;
        self.xrpc(self.base.borrow())
            .with_options(opts)
            .send(&request)
            .await
    }
}
