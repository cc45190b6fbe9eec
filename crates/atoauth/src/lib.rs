//! # atoauth
//!
//! Sign people in with their AT Protocol (Bluesky) account through OAuth, and act for them on
//! their PDS.
//!
//! ## Contents
//! - [`syntax`]: self-validating identifiers: [`syntax::Did`], [`syntax::Handle`], [`syntax::Nsid`].
//! - [`identity`]: handle → DID → DID document → PDS, verified both ways, cached.
//! - [`scope`]: permission scopes: parse, normalise, check what was granted, build requests.
//! - [`http`]: the one hardened HTTP path every external URL goes through (S1, S2).
//!
//! ## Security
//! Defaults are the strict ones of the atproto OAuth profile. Whatever weakens them carries
//! `insecure` or `danger` in its name, for example
//! [`http::TargetPolicy::InsecureAllowLoopbackHttp`], which local development against a PDS on
//! this machine needs and production never does.

pub mod client;
pub mod client_auth;
pub mod client_metadata;
pub mod crypto;
pub mod dpop;
mod error;
pub mod http;
pub mod identity;
pub mod metadata;
pub mod pkce;
pub mod rules;
pub mod scope;
pub mod secret;
pub mod session;
pub mod store;
pub mod syntax;
pub mod testing;
mod token;
mod transport;

pub use error::{Endpoint, OAuthError, SessionEndCause};
