//! What a granted scope allows (§7), with the transition overlay (§4.25), and requested-vs-granted
//! diffs that compare permissions semantically (§6.40).

use std::collections::BTreeSet;

use super::Scope;
use super::mime::{accepts, accepts_some_type, is_mime};
use super::permission::{
    AccountAction, AccountAttribute, AccountPermission, Audience, BlobPermission,
    IdentityAttribute, IdentityPermission, NsidSet, Permission, RepoAction, RepoPermission,
    RpcPermission,
};
use crate::syntax::Nsid;

/// The rights a granted scope carries. Build it from the token response's `scope`, never from
/// what was requested (§7.41).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    granted: BTreeSet<Permission>,
}

impl From<&Scope> for Permissions {
    /// Each token read as the official PDS reads a granted one
    /// ([`Permission::parse_as_granted`]), so that what is allowed here is what the PDS allows.
    fn from(scope: &Scope) -> Self {
        Self {
            granted: scope
                .tokens()
                .iter()
                .filter_map(|token| match &token.parsed {
                    Ok(permission) => Some(permission.clone()),
                    Err(_) => Permission::parse_as_granted(&token.raw).ok(),
                })
                .collect(),
        }
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self {
            granted: iter.into_iter().collect(),
        }
    }
}

impl Permissions {
    /// The granted permissions.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.granted.iter()
    }

    /// Whether `atproto` was granted (a token response without it is invalid).
    #[must_use]
    pub fn has_atproto(&self) -> bool {
        self.granted.contains(&Permission::Atproto)
    }

    fn has(&self, permission: &Permission) -> bool {
        self.granted.contains(permission)
    }

    /// May the session `action` records of `collection`? (`createRecord` → create,
    /// `deleteRecord` → delete, `putRecord` → both create and update.)
    #[must_use]
    pub fn allows_repo(&self, collection: &Nsid, action: RepoAction) -> bool {
        self.has(&Permission::TransitionGeneric)
            || self.granted.iter().any(|p| match p {
                Permission::Repo(repo) => {
                    repo.actions.contains(&action) && repo.collections.contains(collection)
                }
                _ => false,
            })
    }

    /// May the session call `method` on `audience` (a `did#service` reference, matched exactly)?
    #[must_use]
    pub fn allows_rpc(&self, method: &Nsid, audience: &str) -> bool {
        let chat = method.as_str().starts_with("chat.bsky.");
        (!chat && self.has(&Permission::TransitionGeneric))
            || (chat && self.has(&Permission::TransitionChatBsky))
            || self.granted.iter().any(|p| match p {
                Permission::Rpc(rpc) => {
                    rpc.methods.contains(method)
                        && match &rpc.audience {
                            Audience::Any => true,
                            Audience::Service(service) => service == audience,
                        }
                }
                _ => false,
            })
    }

    /// Whether the session may call `method` on the service `proxy` (`did#service_id`, as
    /// given to `OAuthSession::with_proxy`); when not, the permission to ask for in an upgrade
    /// (what the PDS's missing-scope error names).
    ///
    /// # Errors
    /// The missing [`Permission`] (`rpc:<method>?aud=<proxy>`).
    pub fn check_rpc(&self, method: &Nsid, proxy: &str) -> Result<(), Permission> {
        if self.allows_rpc(method, proxy) {
            Ok(())
        } else {
            Err(Self::required_for_rpc(method, proxy))
        }
    }

    /// May the session upload a blob of this concrete MIME type (`type/subtype`)? Compared as
    /// the official PDS compares it: with the Content-Type as sent, case-sensitively (§9.46).
    #[must_use]
    pub fn allows_blob(&self, mime: &str) -> bool {
        if self.has(&Permission::TransitionGeneric) {
            return true;
        }
        is_mime(mime)
            && self.granted.iter().any(|p| match p {
                Permission::Blob(blob) => blob.accept.iter().any(|pattern| accepts(pattern, mime)),
                _ => false,
            })
    }

    /// May the session mint a service-auth token (`com.atproto.server.getServiceAuth`) for
    /// `audience` (the `aud` parameter: a bare DID) and `method` (the `lxm` parameter)? The
    /// official PDS checks `rpc` with that bare DID, so only `aud=*` grants match, and a missing
    /// `lxm` is checked as `lxm=*`, which no granular scope can grant (§7.43, §9.46).
    #[must_use]
    pub fn allows_service_auth(&self, audience: &str, method: Option<&Nsid>) -> bool {
        match method {
            Some(method) => self.allows_rpc(method, audience),
            None => {
                self.has(&Permission::TransitionGeneric)
                    || self.granted.iter().any(|p| match p {
                        Permission::Rpc(rpc) => {
                            rpc.methods == NsidSet::All
                                && match &rpc.audience {
                                    Audience::Any => true,
                                    Audience::Service(service) => service == audience,
                                }
                        }
                        _ => false,
                    })
            }
        }
    }

    /// May the session `action` the account `attribute`? (`manage` includes `read`.)
    #[must_use]
    pub fn allows_account(&self, attribute: AccountAttribute, action: AccountAction) -> bool {
        (attribute == AccountAttribute::Email
            && action == AccountAction::Read
            && self.has(&Permission::TransitionEmail))
            || self.granted.iter().any(|p| match p {
                Permission::Account(account) => {
                    account.attribute == attribute
                        && (account.action == AccountAction::Manage || account.action == action)
                }
                _ => false,
            })
    }

    /// May the session control `attribute` of its identity? (`*` covers the handle.)
    #[must_use]
    pub fn allows_identity(&self, attribute: IdentityAttribute) -> bool {
        self.granted.iter().any(|p| match p {
            Permission::Identity(identity) => {
                identity.attribute == IdentityAttribute::All || identity.attribute == attribute
            }
            _ => false,
        })
    }

    /// Whether everything `permission` would allow is allowed here: how a requested permission
    /// is judged granted, whatever spelling the server used.
    #[must_use]
    pub fn covers(&self, permission: &Permission) -> bool {
        match permission {
            Permission::Repo(repo) => repo.actions.iter().all(|action| match &repo.collections {
                NsidSet::Only(set) => set.iter().all(|c| self.allows_repo(c, *action)),
                NsidSet::All => {
                    self.has(&Permission::TransitionGeneric)
                        || self.granted.iter().any(|p| {
                            matches!(p, Permission::Repo(g) if g.collections == NsidSet::All && g.actions.contains(action))
                        })
                }
            }),
            Permission::Rpc(rpc) => {
                let audience_covered = |granted: &Audience| match (granted, &rpc.audience) {
                    (Audience::Any, _) => true,
                    (Audience::Service(g), Audience::Service(r)) => g == r,
                    (Audience::Service(_), Audience::Any) => false,
                };
                let granted_all = self.granted.iter().any(|p| {
                    matches!(p, Permission::Rpc(g) if g.methods == NsidSet::All && audience_covered(&g.audience))
                });
                match &rpc.methods {
                    NsidSet::All => {
                        granted_all
                            || (self.has(&Permission::TransitionGeneric)
                                && self.has(&Permission::TransitionChatBsky))
                    }
                    NsidSet::Only(methods) => methods.iter().all(|method| {
                        let chat = method.as_str().starts_with("chat.bsky.");
                        granted_all
                            || (!chat && self.has(&Permission::TransitionGeneric))
                            || (chat && self.has(&Permission::TransitionChatBsky))
                            || self.granted.iter().any(|p| {
                                matches!(p, Permission::Rpc(g) if g.methods.contains(method) && audience_covered(&g.audience))
                            })
                    }),
                }
            }
            Permission::Blob(blob) => blob.accept.iter().all(|pattern| self.covers_blob_pattern(pattern)),
            Permission::Account(AccountPermission { attribute, action }) => self.allows_account(*attribute, *action),
            Permission::Identity(IdentityPermission { attribute }) => self.allows_identity(*attribute),
            // Fixed tokens and permission sets are granted as such (the server expands sets; see
            // PermissionSet::expand to judge their members).
            other => self.has(other),
        }
    }

    fn covers_blob_pattern(&self, pattern: &str) -> bool {
        if self.has(&Permission::TransitionGeneric) {
            return true;
        }
        // A pattern no concrete type can match (`**/*`: a type is never `*`) allows nothing,
        // so anything covers it.
        if pattern != "*/*" && !accepts_some_type(pattern) {
            return true;
        }
        // A concrete pattern is covered when it is allowed; a `type/*` only by the same or `*/*`.
        self.granted.iter().any(|p| match p {
            Permission::Blob(BlobPermission { accept }) => accept.iter().any(|granted| {
                granted == "*/*"
                    || granted == pattern
                    || (is_mime(pattern) && accepts(granted, pattern))
            }),
            _ => false,
        })
    }

    /// The minimal permission to request for writing records (the token for an upgrade flow).
    #[must_use]
    pub fn required_for_repo(collection: &Nsid, action: RepoAction) -> Permission {
        Permission::Repo(RepoPermission {
            collections: NsidSet::Only(BTreeSet::from([collection.clone()])),
            actions: BTreeSet::from([action]),
        })
    }

    /// The minimal permission to request for calling `method` on `audience`. A bare DID (what
    /// `getServiceAuth` is checked with) can only be granted through `aud=*`, so that is what
    /// this names then (§9.46), never a token the server would drop.
    #[must_use]
    pub fn required_for_rpc(method: &Nsid, audience: &str) -> Permission {
        let audience = if audience.contains('#') {
            Audience::Service(audience.to_owned())
        } else {
            Audience::Any
        };
        Permission::Rpc(RpcPermission {
            methods: NsidSet::Only(BTreeSet::from([method.clone()])),
            audience,
        })
    }

    /// The minimal permission for [`allows_service_auth`](Self::allows_service_auth): the
    /// method on any audience, or, without a method, `transition:generic` (the only grant
    /// the official PDS accepts for `lxm=*`).
    #[must_use]
    pub fn required_for_service_auth(method: Option<&Nsid>) -> Permission {
        match method {
            Some(method) => Self::required_for_rpc(method, "*"),
            None => Permission::TransitionGeneric,
        }
    }

    /// The minimal permission to request for uploading `mime` blobs.
    #[must_use]
    pub fn required_for_blob(mime: &str) -> Permission {
        Permission::Blob(BlobPermission {
            accept: BTreeSet::from([mime.to_owned()]),
        })
    }

    /// The minimal permission for an account operation.
    #[must_use]
    pub fn required_for_account(attribute: AccountAttribute, action: AccountAction) -> Permission {
        Permission::Account(AccountPermission { attribute, action })
    }

    /// The minimal permission for an identity operation.
    #[must_use]
    pub fn required_for_identity(attribute: IdentityAttribute) -> Permission {
        Permission::Identity(IdentityPermission { attribute })
    }
}

/// Requested versus granted, compared semantically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeDiff {
    /// Requested permissions the grant covers.
    pub granted: Vec<Permission>,
    /// Requested permissions the grant does not cover: declined by the user or refused.
    pub missing: Vec<Permission>,
    /// Granted permissions that were not requested (e.g. expanded `include:` members).
    pub unrequested: Vec<Permission>,
}

impl ScopeDiff {
    /// Compares a requested scope with a granted one.
    #[must_use]
    pub fn between(requested: &Scope, granted: &Scope) -> Self {
        let grant = Permissions::from(granted);
        let asked = Permissions::from(requested);
        let (covered, missing) = requested
            .permissions()
            .into_iter()
            .partition(|p| grant.covers(p));
        Self {
            granted: covered,
            missing,
            unrequested: granted
                .permissions()
                .into_iter()
                .filter(|p| !asked.covers(p))
                .collect(),
        }
    }

    /// True when everything requested was granted.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scope: &str) -> Permissions {
        Permissions::from(&Scope::parse(scope))
    }

    fn nsid(s: &str) -> Nsid {
        Nsid::new(s).unwrap()
    }

    #[test]
    fn repo_table() {
        let p = grant("atproto repo:app.bsky.feed.post?action=create repo:*?action=delete");
        let post = nsid("app.bsky.feed.post");
        let like = nsid("app.bsky.feed.like");
        assert!(p.allows_repo(&post, RepoAction::Create));
        assert!(!p.allows_repo(&post, RepoAction::Update));
        assert!(p.allows_repo(&post, RepoAction::Delete));
        assert!(p.allows_repo(&like, RepoAction::Delete));
        assert!(!p.allows_repo(&like, RepoAction::Create));
    }

    #[test]
    fn rpc_table_audiences_match_exactly() {
        let p = grant(
            "rpc:app.bsky.actor.getProfile?aud=did:web:api.bsky.app%23bsky_appview rpc:com.example.report?aud=*",
        );
        let profile = nsid("app.bsky.actor.getProfile");
        assert!(p.allows_rpc(&profile, "did:web:api.bsky.app#bsky_appview"));
        assert!(
            !p.allows_rpc(&profile, "did:web:api.bsky.app"),
            "a bare DID does not match did#svc"
        );
        assert!(!p.allows_rpc(&profile, "did:web:other.example#bsky_appview"));
        assert!(p.allows_rpc(&nsid("com.example.report"), "did:web:anything.example#x"));
        assert!(!p.allows_rpc(&nsid("com.example.other"), "did:web:anything.example#x"));
    }

    #[test]
    fn blob_table() {
        let p = grant("blob:image/* blob:video/mp4");
        assert!(p.allows_blob("image/png"));
        assert!(
            !p.allows_blob("IMAGE/JPEG"),
            "case-sensitive, as the official PDS (§9.46)"
        );
        assert!(!p.allows_blob("image/png/x"), "more than one slash");
        assert!(p.allows_blob("video/mp4"));
        assert!(!p.allows_blob("video/webm"));
        assert!(
            !p.allows_blob("image/*"),
            "the checked type must be concrete"
        );
        assert!(!p.allows_blob("imagepng"));
        assert!(grant("blob:*/*").allows_blob("application/octet-stream"));
    }

    #[test]
    fn account_and_identity_tables() {
        let p = grant("account:email?action=manage account:repo identity:handle");
        assert!(p.allows_account(AccountAttribute::Email, AccountAction::Read));
        assert!(p.allows_account(AccountAttribute::Email, AccountAction::Manage));
        assert!(p.allows_account(AccountAttribute::Repo, AccountAction::Read));
        assert!(!p.allows_account(AccountAttribute::Repo, AccountAction::Manage));
        assert!(p.allows_identity(IdentityAttribute::Handle));
        assert!(!p.allows_identity(IdentityAttribute::All));
        assert!(grant("identity:*").allows_identity(IdentityAttribute::Handle));
    }

    #[test]
    fn transition_overlay() {
        let generic = grant("atproto transition:generic");
        assert!(generic.allows_repo(&nsid("any.thing.record"), RepoAction::Delete));
        assert!(generic.allows_blob("video/mp4"));
        assert!(generic.allows_rpc(&nsid("app.bsky.actor.getProfile"), "did:web:x.example#y"));
        assert!(!generic.allows_rpc(&nsid("chat.bsky.convo.sendMessage"), "did:web:x.example#y"));
        assert!(!generic.allows_account(AccountAttribute::Email, AccountAction::Read));
        assert!(!generic.allows_identity(IdentityAttribute::Handle));
        let chat = grant("atproto transition:generic transition:chat.bsky");
        assert!(chat.allows_rpc(
            &nsid("chat.bsky.convo.sendMessage"),
            "did:web:api.bsky.chat#bsky_chat"
        ));
        let email = grant("atproto transition:email");
        assert!(email.allows_account(AccountAttribute::Email, AccountAction::Read));
        assert!(!email.allows_account(AccountAttribute::Email, AccountAction::Manage));
    }

    #[test]
    fn partial_consent_diff_names_what_is_missing() {
        let requested = Scope::parse("atproto repo:app.bsky.feed.post?action=create account:email");
        let granted = Scope::parse("atproto repo:app.bsky.feed.post?action=create");
        let diff = ScopeDiff::between(&requested, &granted);
        assert!(!diff.is_complete());
        assert_eq!(
            diff.missing,
            vec![Permission::parse("account:email").unwrap()]
        );
        assert_eq!(diff.granted.len(), 2);
        assert!(diff.unrequested.is_empty());
    }

    #[test]
    fn diff_is_semantic_not_textual() {
        // Granted in another spelling, or by a broader token, still counts.
        let requested = Scope::parse(
            "atproto repo:app.bsky.feed.post?action=create blob:image/png rpc:a.b.c?aud=did:web:x.com%23s",
        );
        let granted = Scope::parse(
            "atproto repo?collection=*&action=create&action=update blob:image/* rpc:*?aud=did:web:x.com#s",
        );
        assert!(ScopeDiff::between(&requested, &granted).is_complete());
        let narrower = Scope::parse("atproto repo:app.bsky.feed.post?action=create");
        let diff = ScopeDiff::between(&Scope::parse("atproto repo:*?action=create"), &narrower);
        assert_eq!(
            diff.missing.len(),
            1,
            "a wildcard request is not covered by one collection"
        );
    }

    #[test]
    fn a_grant_allows_what_the_pds_allows_in_any_spelling_it_keeps() {
        // §9.45: a repeated account action grants the strongest (the PDS reads a list).
        let p = grant("atproto account:email?action=read&action=manage");
        assert!(p.allows_account(AccountAttribute::Email, AccountAction::Manage));
        // A malformed escape in a query keeps the rest of the token meaningful, as on the PDS.
        let p = grant("atproto blob?accept=*/*&accept=text/p%zz");
        assert!(p.allows_blob("video/mp4"));
    }

    #[test]
    fn a_pattern_no_type_can_match_is_covered_by_anything() {
        // `**/*` allows no concrete type (a type is never `*`), so nothing is missing.
        let requested = Permission::parse("blob:**/*").unwrap();
        assert!(grant("atproto").covers(&requested));
        assert!(!grant("atproto").covers(&Permission::parse("blob:image/*").unwrap()));
    }

    #[test]
    fn required_tokens_for_an_upgrade() {
        let post = nsid("app.bsky.feed.post");
        let needed = Permissions::required_for_repo(&post, RepoAction::Delete);
        assert_eq!(needed.to_string(), "repo:app.bsky.feed.post?action=delete");
        assert!(!grant("repo:app.bsky.feed.post?action=create").covers(&needed));
        assert_eq!(
            Permissions::required_for_rpc(
                &nsid("app.bsky.actor.getProfile"),
                "did:web:api.bsky.app#bsky_appview"
            )
            .to_string(),
            "rpc:app.bsky.actor.getProfile?aud=did:web:api.bsky.app%23bsky_appview"
        );
        assert_eq!(
            Permissions::required_for_blob("image/png").to_string(),
            "blob:image/png"
        );
        // getServiceAuth is checked with a bare DID: only aud=* can grant it (§9.46).
        let feed = nsid("app.bsky.feed.getFeedSkeleton");
        let needed = Permissions::required_for_rpc(&feed, "did:web:feed.example.com");
        assert_eq!(
            needed.to_string(),
            "rpc:app.bsky.feed.getFeedSkeleton?aud=*"
        );
        assert!(
            grant(&format!("atproto {needed}"))
                .allows_service_auth("did:web:feed.example.com", Some(&feed))
        );
        // Without lxm the PDS checks lxm=*, which only transition:generic grants.
        assert!(
            !grant("atproto rpc:*?aud=did:web:x.com%23s")
                .allows_service_auth("did:web:x.com", None)
        );
        assert!(grant("atproto transition:generic").allows_service_auth("did:web:x.com", None));
        assert_eq!(
            Permissions::required_for_service_auth(None),
            Permission::TransitionGeneric
        );
        // account:status?action=manage, which deactivateAccount needs.
        let status =
            Permissions::required_for_account(AccountAttribute::Status, AccountAction::Manage);
        assert_eq!(status.to_string(), "account:status?action=manage");
        assert!(grant("atproto account:status?action=manage").covers(&status));
        assert!(!grant("atproto account:status").covers(&status));
    }
}
