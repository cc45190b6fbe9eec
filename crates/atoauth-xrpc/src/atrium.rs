//! atrium: `atrium_api::agent::Agent` over an OAuth session.
//!
//! ```no_run
//! # async fn demo(session: atoauth::OAuthSession) -> Result<(), Box<dyn std::error::Error>> {
//! use atrium_api::app::bsky::feed::post::RecordData;
//! use atrium_api::types::string::Datetime;
//! use atrium_api::types::TryIntoUnknown;
//!
//! let agent = atoauth_xrpc::atrium::agent(session.clone());
//! let post = RecordData {
//!     created_at: Datetime::now(),
//!     text: "Hello from atrium over atoauth".into(),
//!     embed: None, entities: None, facets: None, labels: None, langs: None, reply: None, tags: None,
//! };
//! let output = agent
//!     .api
//!     .com
//!     .atproto
//!     .repo
//!     .create_record(
//!         atrium_api::com::atproto::repo::create_record::InputData {
//!             collection: "app.bsky.feed.post".parse()?,
//!             record: post.try_into_unknown()?,
//!             repo: session.did().as_str().parse()?,
//!             rkey: None, swap_commit: None, validate: None,
//!         }
//!         .into(),
//!     )
//!     .await;
//! match output {
//!     Ok(created) => println!("{}", created.uri),
//!     // A missing permission: offer the upgrade.
//!     Err(error) => match atoauth_xrpc::atrium::oauth_error(&error) {
//!         Some(atoauth::OAuthError::ScopeMissing { permission, .. }) => {
//!             println!("ask for {permission}")
//!         }
//!         _ => return Err(error.into()),
//!     },
//! }
//! # Ok(()) }
//! ```
//!
//! Implemented: atrium-xrpc's `HttpClient` and `XrpcClient`, atrium-api's `SessionManager`
//! (so `Agent::new` takes it) and `CloneWithProxy` (so `Agent::api_with_proxy` works). Not
//! implemented: `Configure`, whose setters mutate a shared client in place; use
//! [`agent_with_proxy`] or `api_with_proxy` instead.

use atoauth::{OAuthError, OAuthSession};
use atrium_api::agent::{Agent, CloneWithProxy, SessionManager};
use atrium_xrpc::{HttpClient, XrpcClient};

use crate::transport;

/// An OAuth session as atrium's transport: give it to `atrium_api::agent::Agent::new`, or
/// use [`agent`].
#[derive(Clone, Debug)]
pub struct OAuthXrpc {
    session: OAuthSession,
    /// Why a proxy asked of [`CloneWithProxy`] was refused, reported on every call (the trait
    /// cannot fail).
    refused_proxy: Option<(String, String)>,
}

impl OAuthXrpc {
    /// The transport for `session`.
    #[must_use]
    pub fn new(session: OAuthSession) -> Self {
        Self {
            session,
            refused_proxy: None,
        }
    }

    /// The session it sends with.
    #[must_use]
    pub fn session(&self) -> &OAuthSession {
        &self.session
    }
}

/// The typed API over `session`: `agent(session).api.app.bsky…`.
#[must_use]
pub fn agent(session: OAuthSession) -> Agent<OAuthXrpc> {
    Agent::new(OAuthXrpc::new(session))
}

/// The typed API over `session`, with every call sent through the PDS to the service
/// `did#service_id` (for example `did:web:api.bsky.app`, `bsky_appview`).
///
/// # Errors
/// As [`OAuthSession::with_proxy`].
pub fn agent_with_proxy(
    session: &OAuthSession,
    did: &atoauth::Did,
    service_id: &str,
) -> Result<Agent<OAuthXrpc>, OAuthError> {
    Ok(agent(session.with_proxy(did, service_id)?))
}

/// The atoauth error inside an atrium error, if that is what it is: a missing permission
/// ([`OAuthError::ScopeMissing`], to offer an upgrade), an ended session
/// ([`OAuthError::requires_sign_in`]), a network failure. `None` for an XRPC error that atrium
/// typed itself (for example `RecordNotFound`).
#[must_use]
pub fn oauth_error<E: std::fmt::Debug>(error: &atrium_xrpc::Error<E>) -> Option<&OAuthError> {
    match error {
        atrium_xrpc::Error::HttpClient(inner) => inner.downcast_ref::<OAuthError>(),
        _ => None,
    }
}

impl HttpClient for OAuthXrpc {
    async fn send_http(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        if let Some((input, reason)) = &self.refused_proxy {
            return Err(Box::new(OAuthError::InvalidInput {
                input: input.clone(),
                reason: reason.clone(),
            }));
        }
        Ok(transport::send(&self.session, request).await?)
    }
}

impl XrpcClient for OAuthXrpc {
    fn base_uri(&self) -> String {
        transport::base_uri(&self.session)
    }
}

impl SessionManager for OAuthXrpc {
    async fn did(&self) -> Option<atrium_api::types::string::Did> {
        self.session.did().as_str().parse().ok()
    }
}

impl CloneWithProxy for OAuthXrpc {
    fn clone_with_proxy(
        &self,
        did: atrium_api::types::string::Did,
        service_type: impl AsRef<str>,
    ) -> Self {
        let proxied = did
            .as_str()
            .parse::<atoauth::Did>()
            .map_err(OAuthError::from)
            .and_then(|did| self.session.with_proxy(&did, service_type.as_ref()));
        match proxied {
            Ok(session) => Self::new(session),
            Err(error) => Self {
                session: self.session.clone(),
                refused_proxy: Some((
                    format!("{}#{}", did.as_str(), service_type.as_ref()),
                    error.to_string(),
                )),
            },
        }
    }
}
