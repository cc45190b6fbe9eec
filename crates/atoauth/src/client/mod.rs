//! The app-wide [`OAuthClient`]: configuration, resolver, discovery, stores, HTTP, clock and
//! randomness; the two calls of the flow (`start_authorization`, `complete_authorization`); and
//! session lookup.

mod authorize;
mod builder;
mod callback;

use std::sync::Arc;

pub use authorize::{AuthorizeOptions, Prompt};
pub use builder::{DEFAULT_STATE_TTL, OAuthClientBuilder};
pub use callback::CallbackParams;

use crate::client_auth::Keyset;
pub use crate::engine::ClientKind;
use crate::engine::Engine;
use crate::error::OAuthError;
use crate::identity::IdentityResolver;
use crate::store::SessionData;
use crate::syntax::Did;

/// An OAuth client for one `client_id`, shared by the whole app (cheap to clone).
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), atoauth::OAuthError> {
/// use atoauth::client::{AuthorizeOptions, CallbackParams, OAuthClient};
/// use atoauth::client_metadata::LoopbackClient;
///
/// // Violations and syntax errors convert into OAuthError with `?`.
/// let loopback = LoopbackClient::new(["http://127.0.0.1/callback"], Some("atproto"))?;
/// let client = OAuthClient::builder().loopback(loopback).build()?;
/// let url = client
///     .start_authorization("alice.bsky.social", AuthorizeOptions::default())
///     .await?;
/// println!("open {url}");
/// // … the browser comes back to the redirect URI with `?code=…&state=…&iss=…`:
/// let callback = CallbackParams::from_query("code=…&state=…&iss=…");
/// let done = client.complete_authorization(callback).await?;
/// println!("signed in as {}", done.session.did());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub(crate) inner: Arc<Engine>,
}

impl OAuthClient {
    /// Starts configuring a client.
    pub fn builder() -> OAuthClientBuilder {
        OAuthClientBuilder::default()
    }

    /// The `client_id`.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.config().client_id
    }

    /// The client's kind and metadata.
    #[must_use]
    pub fn kind(&self) -> &ClientKind {
        &self.inner.config().kind
    }

    /// The public JWKS a confidential client publishes (`None` for public clients).
    #[must_use]
    pub fn public_jwks(&self) -> Option<crate::crypto::JwkSet> {
        self.inner.config().keyset.as_ref().map(Keyset::public_jwks)
    }

    /// The identity resolver the client uses.
    #[must_use]
    pub fn resolver(&self) -> &IdentityResolver {
        &self.inner.config().resolver
    }

    /// The sessions stored for `did`.
    ///
    /// # Errors
    /// A store failure.
    pub async fn sessions_of(&self, did: &Did) -> Result<Vec<SessionData>, OAuthError> {
        Ok(self.inner.config().sessions.list_by_did(did).await?)
    }

    /// Every stored session.
    ///
    /// # Errors
    /// A store failure.
    pub async fn all_sessions(&self) -> Result<Vec<SessionData>, OAuthError> {
        Ok(self.inner.config().sessions.list_all().await?)
    }
}
