//! Permission sets behind `include:` (permission spec §5).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;

use super::ScopeError;
use super::permission::{
    Audience, IncludePermission, NsidSet, Permission, RepoAction, RepoPermission, RpcPermission,
};
use crate::syntax::Nsid;

/// A `permission-set` lexicon: its NSID and member permissions as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct PermissionSet {
    /// The set's NSID (the `include:` target).
    pub nsid: Nsid,
    /// `title`, for consent screens.
    pub title: Option<String>,
    /// `detail`, for consent screens.
    pub detail: Option<String>,
    members: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Lexicon {
    id: String,
    defs: HashMap<String, serde_json::Value>,
}

impl PermissionSet {
    /// Reads a lexicon document whose `main` def has `type: "permission-set"`.
    ///
    /// # Errors
    /// When the document is not such a lexicon.
    pub fn from_lexicon(document: &serde_json::Value) -> Result<Self, ScopeError> {
        let invalid = |reason: &str| ScopeError::invalid("include", reason);
        let lexicon: Lexicon = serde_json::from_value(document.clone())
            .map_err(|_| invalid("not a lexicon document"))?;
        let nsid = Nsid::new(&lexicon.id).map_err(|_| invalid("the lexicon id is not an NSID"))?;
        let main = lexicon
            .defs
            .get("main")
            .ok_or_else(|| invalid("the lexicon has no main def"))?;
        if main["type"] != "permission-set" {
            return Err(invalid("the main def is not a permission-set"));
        }
        Ok(Self {
            nsid,
            title: main["title"].as_str().map(str::to_owned),
            detail: main["detail"].as_str().map(str::to_owned),
            members: main["permissions"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// The granular permissions `include` grants (§5.27–§5.30): only `repo` and `rpc` members,
    /// no wildcards, inside the set's namespace authority, `inheritAud` resolved from the
    /// `include` token. Invalid members are dropped whole, never partly granted.
    #[must_use]
    pub fn expand(&self, include: &IncludePermission) -> Vec<Permission> {
        // §5.29: the group is the set's NSID minus its last segment.
        let group = format!("{}.", self.nsid.authority());
        let in_authority = |nsid: &Nsid| nsid.as_str().starts_with(&group);
        let mut out = Vec::new();
        for member in &self.members {
            if member["type"] != "permission" {
                continue;
            }
            let names = |field: &str| -> Option<BTreeSet<Nsid>> {
                let values = member[field].as_array()?;
                let set: Option<BTreeSet<Nsid>> = values
                    .iter()
                    .map(|v| v.as_str().and_then(|s| Nsid::new(s).ok()))
                    .collect();
                set.filter(|s| !s.is_empty() && s.iter().all(in_authority))
            };
            let known_fields = |allowed: &[&str]| {
                member
                    .as_object()
                    .is_some_and(|o| o.keys().all(|k| allowed.contains(&k.as_str())))
            };
            let permission = match member["resource"].as_str() {
                Some("repo") if known_fields(&["type", "resource", "collection", "action"]) => {
                    let Some(collections) = names("collection") else {
                        continue;
                    };
                    let actions: Option<BTreeSet<RepoAction>> = match member.get("action") {
                        None => Some(RepoAction::ALL.into_iter().collect()),
                        Some(list) => list.as_array().and_then(|list| {
                            list.iter()
                                .map(|a| match a.as_str() {
                                    Some("create") => Some(RepoAction::Create),
                                    Some("update") => Some(RepoAction::Update),
                                    Some("delete") => Some(RepoAction::Delete),
                                    _ => None,
                                })
                                .collect()
                        }),
                    };
                    let Some(actions) = actions.filter(|a| !a.is_empty()) else {
                        continue;
                    };
                    Permission::Repo(RepoPermission {
                        collections: NsidSet::Only(collections),
                        actions,
                    })
                }
                Some("rpc") if known_fields(&["type", "resource", "lxm", "aud", "inheritAud"]) => {
                    let Some(methods) = names("lxm") else {
                        continue;
                    };
                    let inherit = member["inheritAud"] == true;
                    // §5.27/§5.28: aud is "*" or inherited; a fixed reference is not allowed.
                    let audience = match (member.get("aud"), inherit, &include.audience) {
                        (Some(aud), false, _) if aud == "*" => Audience::Any,
                        (None, true, Some(audience)) => Audience::Service(audience.clone()),
                        _ => continue,
                    };
                    Permission::Rpc(RpcPermission {
                        methods: NsidSet::Only(methods),
                        audience,
                    })
                }
                _ => continue,
            };
            out.push(permission);
        }
        out
    }
}

/// Finds permission sets by NSID. Network lexicon resolution can implement it later; the built-in
/// [`StaticPermissionSets`] serves given documents.
pub trait PermissionSetResolver: Send + Sync {
    /// The set named `nsid`, or `None` when it is unknown.
    fn resolve(
        &self,
        nsid: &Nsid,
    ) -> impl Future<Output = Result<Option<PermissionSet>, ScopeError>> + Send;
}

/// Any [`PermissionSetResolver`], shared: what a client holds
/// ([`OAuthClientBuilder::permission_sets`](crate::OAuthClientBuilder::permission_sets)).
#[derive(Clone)]
pub struct SharedPermissionSets(Arc<dyn DynPermissionSets>);

impl std::fmt::Debug for SharedPermissionSets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedPermissionSets")
    }
}

impl SharedPermissionSets {
    /// Shares `resolver`.
    pub fn new(resolver: impl PermissionSetResolver + 'static) -> Self {
        Self(Arc::new(resolver))
    }
}

type SetFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<PermissionSet>, ScopeError>> + Send + 'a>>;

/// The object-safe form of [`PermissionSetResolver`].
trait DynPermissionSets: Send + Sync + 'static {
    fn resolve_boxed<'a>(&'a self, nsid: &'a Nsid) -> SetFuture<'a>;
}

impl<R: PermissionSetResolver + 'static> DynPermissionSets for R {
    fn resolve_boxed<'a>(&'a self, nsid: &'a Nsid) -> SetFuture<'a> {
        Box::pin(self.resolve(nsid))
    }
}

impl PermissionSetResolver for SharedPermissionSets {
    fn resolve(
        &self,
        nsid: &Nsid,
    ) -> impl Future<Output = Result<Option<PermissionSet>, ScopeError>> + Send {
        let (resolver, nsid) = (Arc::clone(&self.0), nsid.clone());
        async move { resolver.resolve_boxed(&nsid).await }
    }
}

/// Permission sets given up front.
#[derive(Clone, Debug, Default)]
pub struct StaticPermissionSets {
    sets: HashMap<Nsid, PermissionSet>,
}

impl StaticPermissionSets {
    /// Adds a set.
    #[must_use]
    pub fn with(mut self, set: PermissionSet) -> Self {
        self.sets.insert(set.nsid.clone(), set);
        self
    }
}

impl PermissionSetResolver for StaticPermissionSets {
    fn resolve(
        &self,
        nsid: &Nsid,
    ) -> impl Future<Output = Result<Option<PermissionSet>, ScopeError>> + Send {
        let found = self.sets.get(nsid).cloned();
        async move { Ok(found) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PermissionSet {
        let text = std::fs::read_to_string(format!(
            "{}/testdata/lexicon/permission-set.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        PermissionSet::from_lexicon(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    fn include(token: &str) -> IncludePermission {
        match Permission::parse(token).unwrap() {
            Permission::Include(include) => include,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_example_set_expands_within_its_authority() {
        // The example set is `example.lexicon.permissionset`: its group is `example.lexicon.`,
        // so none of its com.example.* / app.bsky.* members are within authority (§5.29).
        let set = example();
        assert_eq!(set.title.as_deref(), Some("Example for Moderation"));
        assert!(
            set.expand(&include("include:example.lexicon.permissionset"))
                .is_empty()
        );

        // The same members under a set in the com.example.calendar group.
        let mut moved = set.clone();
        moved.nsid = Nsid::new("com.example.calendar.auth").unwrap();
        let aud = "include:com.example.calendar.auth?aud=did:web:cal.example.com%23calendar";
        let expanded: Vec<String> = moved
            .expand(&include(aud))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            expanded,
            vec![
                // member 1: both collections in the group; actions sorted.
                "repo?collection=com.example.calendar.event&collection=com.example.calendar.rsvp&action=create&action=delete",
                // member 2 dropped whole: app.bsky.feed.post is outside the authority.
                "repo:com.example.calendar.eventV2?action=create",
                "rpc:com.example.calendar.listEvents?aud=*",
                // member 5 dropped: lxm "*" is not allowed in a set.
                "rpc:com.example.calendar.listEvents?aud=did:web:cal.example.com%23calendar",
            ]
        );
        // Without an aud on the include, inheritAud members are dropped (§5.28).
        let without: Vec<String> = moved
            .expand(&include("include:com.example.calendar.auth"))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(without.len(), 3);

        let resolver = StaticPermissionSets::default().with(moved);
        let nsid = Nsid::new("com.example.calendar.auth").unwrap();
        assert!(resolver.resolve(&nsid).await.unwrap().is_some());
        assert!(
            resolver
                .resolve(&Nsid::new("com.example.other.set").unwrap())
                .await
                .unwrap()
                .is_none()
        );
    }
}
