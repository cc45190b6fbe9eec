//! # atoauth-xrpc
//!
//! The typed AT Protocol API crates people already use, over an atoauth
//! [`OAuthSession`](atoauth::OAuthSession): the whole Bluesky API in one line.
//!
//! - [`atrium`] (feature `atrium`, on by default): `atrium_api::agent::Agent`
//!   (atrium-xrpc 0.12, atrium-api 0.26).
//! - [`jacquard`] (feature `jacquard`): jacquard-common 0.12's `HttpClient` and `XrpcClient`.
//!
//! Everything OAuth stays inside atoauth: the adapters hand each request to
//! [`OAuthSession::send`](atoauth::OAuthSession::send), which adds the DPoP-bound access token
//! and proof, retries once on a new DPoP nonce, refreshes when the token expires or is refused
//! (once across every process sharing the store), and keeps the request on the session's PDS.
//! The adapters never set `Authorization` and never see a token.
//!
//! A missing permission stays distinguishable: it comes back as
//! [`OAuthError::ScopeMissing`](atoauth::OAuthError::ScopeMissing) inside each crate's
//! transport error (see [`atrium::oauth_error`] and [`jacquard::oauth_error`]), so an app can
//! offer the permission upgrade. Other XRPC errors keep the crate's own typed form.

#[cfg(feature = "atrium")]
pub mod atrium;
#[cfg(feature = "jacquard")]
pub mod jacquard;
mod transport;
