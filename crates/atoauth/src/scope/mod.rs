//! Permission scopes: parse, normalise, match, explain (atproto permission spec).
//!
//! - [`Scope`]: a whole `scope` string. Parsing never fails: a bad token is kept as invalid and
//!   grants nothing (§1.5). Its `Display` is the canonical string (§6.39).
//! - [`Permission`]: one token, normalised, compared structurally — never as strings (§6.40).
//! - [`Permissions`]: what a granted scope allows, with the transition-scope overlay (§4, §7),
//!   and [`ScopeDiff`]: what was requested but not granted.
//! - [`PermissionSet`]: `include:` expansion with the authority rules and `inheritAud` (§5).
//!
//! Build a request instead of writing strings:
//!
//! ```
//! use atoauth::scope::{RepoAction, Scope};
//! let scope = Scope::new()
//!     .repo("app.bsky.feed.post", [RepoAction::Create])?
//!     .rpc("app.bsky.actor.getProfile", "did:web:api.bsky.app#bsky_appview")?
//!     .blob("image/*")?;
//! assert_eq!(
//!     scope.to_string(),
//!     "atproto blob:image/* repo:app.bsky.feed.post?action=create \
//!      rpc:app.bsky.actor.getProfile?aud=did:web:api.bsky.app%23bsky_appview"
//! );
//! # Ok::<(), atoauth::scope::ScopeError>(())
//! ```
//!
//! Check what the user actually granted (they may decline any part):
//!
//! ```
//! use atoauth::scope::{AccountAction, AccountAttribute, Permissions, RepoAction, Scope};
//! use atoauth::syntax::Nsid;
//! let granted = Permissions::from(&Scope::parse("atproto repo:app.bsky.feed.post?action=create"));
//! let post: Nsid = "app.bsky.feed.post".parse()?;
//! assert!(granted.allows_repo(&post, RepoAction::Create));
//! assert!(!granted.allows_repo(&post, RepoAction::Delete));
//! assert!(!granted.allows_account(AccountAttribute::Email, AccountAction::Read));
//! // The token to request in an upgrade flow:
//! assert_eq!(
//!     Permissions::required_for_repo(&post, RepoAction::Delete).to_string(),
//!     "repo:app.bsky.feed.post?action=delete"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod audience;
pub(crate) use audience::service_ref_problem;
mod describe;
mod generic;
mod include;
mod mime;
mod permission;
mod permissions;
mod scope_string;

pub use generic::GenericToken;
pub(crate) use generic::malformed_escape;
pub use include::{
    PermissionSet, PermissionSetResolver, SharedPermissionSets, StaticPermissionSets,
};
pub use permission::{
    AccountAction, AccountAttribute, AccountPermission, Audience, BlobPermission,
    IdentityAttribute, IdentityPermission, IncludePermission, NsidSet, Permission, RepoAction,
    RepoPermission, RpcPermission,
};
pub use permissions::{Permissions, ScopeDiff};
pub use scope_string::{Scope, ScopeToken};

/// A scope token that grants nothing, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {token:?}: {reason}")]
pub struct ScopeError {
    /// The token as written.
    pub token: String,
    /// Why it is invalid.
    pub reason: String,
}

impl ScopeError {
    pub(crate) fn syntax(token: &str, reason: &str) -> Self {
        Self::invalid(token, reason)
    }

    pub(crate) fn invalid(token: &str, reason: &str) -> Self {
        Self::invalid_owned(token, reason.to_owned())
    }

    pub(crate) fn invalid_owned(token: &str, reason: String) -> Self {
        Self {
            token: token.chars().take(200).collect(),
            reason,
        }
    }
}
