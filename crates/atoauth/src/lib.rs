//! # atoauth
//!
//! Sign people in with their AT Protocol (Bluesky) account through OAuth, and act for them on
//! their PDS.
//!
//! ## Quickstart
//! One app-wide [`OAuthClient`]; two calls for the flow; an [`OAuthSession`] per signed-in
//! account, which refreshes itself and survives restarts in a persistent store (for example
//! `atoauth_sqlx::SqliteStore`).
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use atoauth::{AuthorizeOptions, CallbackParams, LoopbackClient, MemoryStore, OAuthClient};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // The development client needs no hosting; publish a ClientMetadata document in production.
//! // One store for everything: MemoryStore here, atoauth_sqlx::SqliteStore to survive restarts.
//! let client = OAuthClient::builder()
//!     .loopback(LoopbackClient::with_scope("atproto repo:app.bsky.feed.post?action=create")?)
//!     .store(Arc::new(MemoryStore::default()))
//!     .build()?;
//!
//! // 1. Send the user's browser to the authorization server.
//! let url = client
//!     .start_authorization("alice.bsky.social", AuthorizeOptions::default())
//!     .await?;
//! println!("open {url}");
//!
//! // 2. The browser comes back to the redirect URI; hand over its query string.
//! let query = "state=…&iss=…&code=…";
//! let session = client
//!     .complete_authorization(CallbackParams::from_query(query))
//!     .await?
//!     .session;
//!
//! // Act for the user on their PDS, within what they granted (results as your own types or
//! // serde_json::Value).
//! let me: serde_json::Value = session.query("com.atproto.server.getSession", &[]).await?;
//! println!("signed in as {} ({})", me["handle"], session.did());
//!
//! // Later, after a restart: the same session from the store, by DID and session id.
//! let again = client.restore(session.did(), session.session_id()).await?;
//! again.sign_out().await?;
//! # Ok(()) }
//! ```
//!
//! A command-line app catches the redirect with [`loopback::CallbackServer`]; a web app uses
//! `atoauth-axum`. Both are in the `examples/` directories.
//!
//! ## Contents
//! The crate root re-exports the paved path: the types above, [`ClientMetadata`], [`Keyset`],
//! [`Store`], the identifiers, the errors. The modules below hold the rest; [`protocol`] has
//! the lower-level building blocks (DPoP, PKCE, discovery, client assertions, keys, rules), for
//! advanced use: the client and session drive them for you.
//!
//! - [`client`]: [`OAuthClient`], `start_authorization` and `complete_authorization`
//!   (PAR, PKCE, DPoP, callback and token checks: sections G–L of the atproto OAuth profile).
//! - [`session`]: [`OAuthSession`]: PDS requests, refresh, sign-out, granted permissions.
//! - [`client_metadata`]: the client metadata document, its builder and validator (B–D), and
//!   the `http://localhost` development client.
//! - [`protocol`]: lower-level building blocks: confidential-client keysets and assertions (J),
//!   authorization-server discovery and validation (F), DPoP, PKCE and keys (H, I), rules.
//! - [`store`]: `StateStore` and `SessionStore` with their contracts, and in-memory stores.
//! - [`syntax`]: self-validating identifiers: [`syntax::Did`], [`syntax::Handle`], [`syntax::Nsid`].
//! - [`identity`]: handle → DID → DID document → PDS, verified both ways, cached.
//! - [`scope`]: permission scopes: parse, normalise, check what was granted, build requests.
//! - [`http`]: the one hardened HTTP path every external URL goes through (S1, S2).
//! - [`loopback`]: the loopback redirect of a command-line or desktop app.
//! - [`reexports`]: the `url` and `http` crates, as atoauth's types use them.
//! - `testing` (feature `test-util`): a fixed clock and seeded randomness for deterministic
//!   tests.
//!
//! ## Security
//! Defaults are the strict ones of the atproto OAuth profile. Whatever weakens them carries
//! `insecure` or `danger` in its name, for example
//! [`http::TargetPolicy::InsecureAllowLoopbackHttp`], which local development against a PDS on
//! this machine needs and production never does. Secrets (tokens, codes, keys, `state`) are
//! newtypes whose `Debug` output is redacted ([`secret`]).

pub mod client;
pub mod client_metadata;
mod connect;
mod engine;
mod error;
pub mod events;
pub mod http;
pub mod identity;
#[cfg(not(target_arch = "wasm32"))]
pub mod lexicon;
#[cfg(not(target_arch = "wasm32"))]
pub mod loopback;
pub mod platform;
pub mod protocol;
pub mod scope;
pub mod secret;
pub mod session;
pub mod store;
pub mod syntax;
mod task;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod time;

// The building blocks under their short names inside the crate.
use protocol::{client_auth, crypto, dpop, metadata, pkce, rules};

// The paved path: what the common programs name, importable from the root.
pub use client::{AuthorizeOptions, CallbackParams, OAuthClient, OAuthClientBuilder, Prompt};
pub use client_auth::Keyset;
pub use client_metadata::{ClientMetadata, LoopbackClient};
pub use error::{ConfigError, Endpoint, OAuthError, SessionEndCause, XrpcError};
pub use events::SessionEvent;
pub use http::TargetPolicy;
pub use scope::{Permission, Permissions, Scope};
pub use secret::SessionId;
pub use session::{CompletedAuthorization, OAuthSession, Revocation};
pub use store::{MemoryStore, SessionStore, Store};
pub use syntax::{AtIdentifier, Did, Handle, Nsid};
pub use url::Url;

/// What atoauth's macros expand to. Not part of the API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    use crate::syntax::Nsid;

    /// The [`Nsid`] of a literal that `nsid!` has already checked at compile time.
    #[must_use]
    pub fn nsid_checked_at_compile_time(nsid: &'static str) -> Nsid {
        Nsid::new(nsid).unwrap_or_else(|_| unreachable!("nsid! checked {nsid} at compile time"))
    }
}

/// The crates whose types appear in atoauth's API, so that an app names them without adding
/// its own dependency (and always at the same version).
pub mod reexports {
    pub use http;
    pub use url;
}
