//! A whole `scope` value (§1, §6.39) and the builder apps use instead of strings.

use std::collections::BTreeSet;
use std::fmt;

use super::ScopeError;
use super::mime::is_accept;
use super::permission::{
    AccountAction, AccountAttribute, AccountPermission, Audience, BlobPermission,
    IdentityAttribute, IdentityPermission, NsidSet, Permission, RepoAction, RepoPermission,
    RpcPermission,
};
use crate::syntax::Nsid;

/// One token of a scope string as written, with what it parsed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeToken {
    /// The token as written.
    pub raw: String,
    /// The permission, or why it grants nothing.
    pub parsed: Result<Permission, ScopeError>,
}

/// A `scope` value: space-separated tokens. Parsing never fails; invalid tokens are kept and grant
/// nothing. `Display` gives the canonical string: valid tokens normalised, de-duplicated, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    tokens: Vec<ScopeToken>,
}

impl Scope {
    /// `atproto` alone: the start of every request (identity-only login).
    #[must_use]
    pub fn new() -> Self {
        Self::from_permissions([Permission::Atproto])
    }

    /// Parses a scope string (tokens separated by spaces).
    #[must_use]
    pub fn parse(scope: &str) -> Self {
        Self {
            tokens: scope
                .split(' ')
                .filter(|t| !t.is_empty())
                .map(|raw| ScopeToken {
                    raw: raw.to_owned(),
                    parsed: Permission::parse(raw),
                })
                .collect(),
        }
    }

    /// A scope of these permissions.
    pub fn from_permissions(permissions: impl IntoIterator<Item = Permission>) -> Self {
        let mut scope = Self::default();
        for permission in permissions {
            scope = scope.with(permission);
        }
        scope
    }

    /// Every token as written.
    pub fn tokens(&self) -> &[ScopeToken] {
        &self.tokens
    }

    /// The valid permissions, de-duplicated and sorted.
    #[must_use]
    pub fn permissions(&self) -> BTreeSet<Permission> {
        self.tokens
            .iter()
            .filter_map(|t| t.parsed.as_ref().ok().cloned())
            .collect()
    }

    /// This scope with each `include:` token replaced by the permissions its set grants
    /// (§5.26–§5.30), resolved with `resolver`: what the authorization server will grant when
    /// the user accepts everything. Other tokens, invalid ones included, are kept.
    ///
    /// # Errors
    /// The first set that cannot be resolved, named by its token; a set the resolver does not
    /// know is an error too.
    pub async fn expand_includes<R: super::PermissionSetResolver>(
        &self,
        resolver: &R,
    ) -> Result<Self, ScopeError> {
        let mut expanded = Self::default();
        for token in &self.tokens {
            match &token.parsed {
                Ok(Permission::Include(include)) => {
                    let set = resolver.resolve(&include.nsid).await?.ok_or_else(|| {
                        ScopeError::invalid(&token.raw, "the permission set could not be found")
                    })?;
                    for permission in set.expand(include) {
                        expanded = expanded.with(permission);
                    }
                }
                _ => expanded.tokens.push(token.clone()),
            }
        }
        Ok(expanded)
    }

    /// Whether any token is an `include:` of a permission set.
    #[must_use]
    pub fn has_includes(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| matches!(t.parsed, Ok(Permission::Include(_))))
    }

    /// The invalid tokens.
    pub fn invalid(&self) -> impl Iterator<Item = &ScopeError> {
        self.tokens.iter().filter_map(|t| t.parsed.as_ref().err())
    }

    /// Whether `atproto` is present (required in every request and token response).
    #[must_use]
    pub fn has_atproto(&self) -> bool {
        self.permissions().contains(&Permission::Atproto)
    }

    /// Adds a permission.
    #[must_use]
    pub fn with(mut self, permission: Permission) -> Self {
        if !self
            .tokens
            .iter()
            .any(|t| t.parsed.as_ref() == Ok(&permission))
        {
            self.tokens.push(ScopeToken {
                raw: permission.to_string(),
                parsed: Ok(permission),
            });
        }
        self
    }

    /// Adds `repo:<collection>` limited to `actions` (all three when empty). `*` means every
    /// collection.
    ///
    /// # Errors
    /// When `collection` is neither `*` nor an NSID.
    pub fn repo(
        self,
        collection: &str,
        actions: impl IntoIterator<Item = RepoAction>,
    ) -> Result<Self, ScopeError> {
        let collections = nsid_or_all(collection, "repo")?;
        let mut actions: BTreeSet<RepoAction> = actions.into_iter().collect();
        if actions.is_empty() {
            actions = RepoAction::ALL.into_iter().collect();
        }
        Ok(self.with(Permission::Repo(RepoPermission {
            collections,
            actions,
        })))
    }

    /// Adds `rpc:<method>?aud=<audience>`; `audience` is `*` or a `did:…#service` reference.
    ///
    /// # Errors
    /// When either is malformed, or both are `*`.
    pub fn rpc(self, method: &str, audience: &str) -> Result<Self, ScopeError> {
        let methods = nsid_or_all(method, "rpc")?;
        let audience = if audience == "*" {
            Audience::Any
        } else {
            match Permission::parse(&format!(
                "rpc:a.b.c?aud={}",
                super::generic::encode(audience)
            ))? {
                Permission::Rpc(RpcPermission { audience, .. }) => audience,
                _ => Audience::Service(audience.to_owned()),
            }
        };
        if methods == NsidSet::All && audience == Audience::Any {
            return Err(ScopeError::invalid(
                "rpc:*?aud=*",
                "lxm=* together with aud=* is not allowed",
            ));
        }
        Ok(self.with(Permission::Rpc(RpcPermission { methods, audience })))
    }

    /// Adds `blob:<mime pattern>` (`type/subtype`, `type/*` or `*/*`).
    ///
    /// # Errors
    /// When the pattern is malformed.
    pub fn blob(self, accept: &str) -> Result<Self, ScopeError> {
        if !is_accept(accept) {
            return Err(ScopeError::invalid(
                &format!("blob:{accept}"),
                "not type/subtype, type/* or */*",
            ));
        }
        Ok(self.with(Permission::Blob(BlobPermission {
            accept: BTreeSet::from([accept.to_owned()]),
        })))
    }

    /// Adds `account:<attribute>` with `action`.
    #[must_use]
    pub fn account(self, attribute: AccountAttribute, action: AccountAction) -> Self {
        self.with(Permission::Account(AccountPermission { attribute, action }))
    }

    /// Adds `identity:<attribute>`.
    #[must_use]
    pub fn identity(self, attribute: IdentityAttribute) -> Self {
        self.with(Permission::Identity(IdentityPermission { attribute }))
    }

    /// Adds `transition:generic`.
    #[must_use]
    pub fn transition_generic(self) -> Self {
        self.with(Permission::TransitionGeneric)
    }

    /// Adds `transition:chat.bsky`.
    #[must_use]
    pub fn transition_chat_bsky(self) -> Self {
        self.with(Permission::TransitionChatBsky)
    }

    /// Adds `transition:email`.
    #[must_use]
    pub fn transition_email(self) -> Self {
        self.with(Permission::TransitionEmail)
    }
}

fn nsid_or_all(value: &str, resource: &str) -> Result<NsidSet, ScopeError> {
    if value == "*" {
        return Ok(NsidSet::All);
    }
    let nsid = Nsid::new(value)
        .map_err(|e| ScopeError::invalid(&format!("{resource}:{value}"), e.reason))?;
    Ok(NsidSet::Only(BTreeSet::from([nsid])))
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let canonical: BTreeSet<String> =
            self.permissions().iter().map(ToString::to_string).collect();
        let joined: Vec<&str> = canonical.iter().map(String::as_str).collect();
        f.write_str(&joined.join(" "))
    }
}

impl std::str::FromStr for Scope {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_token_never_spoils_the_rest() {
        let scope =
            Scope::parse("atproto Repo:x.y.z  repo:app.bsky.feed.post?action=create foo:bar");
        assert_eq!(scope.tokens().len(), 4);
        assert_eq!(scope.invalid().count(), 2);
        assert!(scope.has_atproto());
        assert_eq!(
            scope.to_string(),
            "atproto repo:app.bsky.feed.post?action=create"
        );
    }

    #[test]
    fn canonical_string_is_sorted_and_deduplicated() {
        let scope =
            Scope::parse("repo:a.b.c?action=create repo?collection=a.b.c&action=create atproto");
        assert_eq!(scope.to_string(), "atproto repo:a.b.c?action=create");
    }

    #[test]
    fn builders_refuse_bad_values() {
        assert!(Scope::new().repo("app.bsky.*", []).is_err());
        assert!(Scope::new().rpc("*", "*").is_err());
        assert!(Scope::new().rpc("a.b.c", "did:web:x.com").is_err());
        assert!(Scope::new().blob("*/png").is_err());
        let scope = Scope::new()
            .repo("*", [])
            .unwrap()
            .account(AccountAttribute::Email, AccountAction::Read)
            .identity(IdentityAttribute::Handle)
            .transition_generic();
        assert_eq!(
            scope.to_string(),
            "account:email atproto identity:handle repo:* transition:generic"
        );
    }
}
