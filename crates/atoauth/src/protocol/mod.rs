//! The protocol's building blocks, lower-level: DPoP proofs ([`dpop`]), PKCE ([`pkce`]),
//! authorization-server discovery and its checks ([`metadata`]), confidential-client keys and
//! assertions ([`client_auth`]), keys, JWTs and randomness ([`crypto`]), and rule violations
//! ([`rules`]). [`OAuthClient`](crate::OAuthClient) and [`OAuthSession`](crate::OAuthSession)
//! drive all of them; reach for these only to build something the client does not do.

pub mod client_auth;
pub mod crypto;
pub mod dpop;
pub mod metadata;
pub mod pkce;
pub mod rules;
