//! Permission sets behind `include:` (permission spec §5).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::ScopeError;
use super::permission::{IncludePermission, Permission};
use crate::syntax::Nsid;

mod document;
mod members;

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

impl PermissionSet {
    /// Reads a lexicon document whose `main` def has `type: "permission-set"`, checked as the
    /// official PDS checks it before it grants anything from it (a document it refuses fails
    /// the whole authorization): the lexicon's version and `id`, and the set's members, texts
    /// and localized texts.
    ///
    /// # Errors
    /// When the document is not such a lexicon, with the reason.
    pub fn from_lexicon(document: &serde_json::Value) -> Result<Self, ScopeError> {
        let main = document::permission_set_main(document)
            .map_err(|reason| ScopeError::invalid("include", reason))?;
        let id = document["id"].as_str().unwrap_or_default();
        let nsid = Nsid::new(id).map_err(|e| ScopeError::invalid("include", e.reason))?;
        let text = |key: &str| main.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(Self {
            nsid,
            title: text("title"),
            detail: text("detail"),
            members: main
                .get("permissions")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// The granular permissions `include` grants (§5.27–§5.30), as the official PDS grants
    /// them: only `repo` and `rpc` members, no wildcards, inside the set's namespace authority,
    /// `inheritAud` resolved from the `include` token. A member with any field the PDS does not
    /// expect is dropped whole, never partly granted.
    #[must_use]
    pub fn expand(&self, include: &IncludePermission) -> Vec<Permission> {
        self.members
            .iter()
            .filter_map(|member| members::granted(&self.nsid, member, include))
            .collect()
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

#[cfg(test)]
mod pds_reading_tests {
    use serde_json::json;

    use super::*;

    fn set(permissions: &serde_json::Value) -> PermissionSet {
        PermissionSet::from_lexicon(&json!({
            "lexicon": 1,
            "id": "app.example.authFull",
            "defs": {"main": {"type": "permission-set", "permissions": permissions}},
        }))
        .unwrap()
    }

    fn expanded(set: &PermissionSet, token: &str) -> Vec<String> {
        let Ok(Permission::Include(include)) = Permission::parse(token) else {
            panic!("{token}");
        };
        set.expand(&include)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn members_with_fields_the_pds_does_not_expect_are_dropped() {
        let set = set(&json!([
            {"type": "permission", "resource": "rpc", "lxm": ["app.example.get"], "aud": "*"},
            // `inheritAud` next to `aud` is a field the PDS reads as unknown.
            {"type": "permission", "resource": "rpc", "lxm": ["app.example.one"], "aud": "*", "inheritAud": false},
            {"type": "permission", "resource": "rpc", "lxm": ["app.example.two"], "inheritAud": true},
            {"type": "permission", "resource": "repo", "collection": ["app.example.post"], "note": "x"},
        ]));
        assert_eq!(
            expanded(&set, "include:app.example.authFull?aud=did:web:x.com%23svc"),
            vec![
                "rpc:app.example.get?aud=*",
                "rpc:app.example.two?aud=did:web:x.com%23svc"
            ]
        );
        // Without an audience to inherit, the inheriting member is dropped (§5.28).
        assert_eq!(
            expanded(&set, "include:app.example.authFull"),
            vec!["rpc:app.example.get?aud=*"]
        );
    }

    #[test]
    fn an_inherited_audience_the_pds_writes_back_wrongly_grants_nothing() {
        // The PDS writes `did:web:localhost%3A8443#svc` into the token as `%3A`, and reads it back
        // as `did:web:localhost:8443#svc`, which is no service reference (§6.38).
        let set = set(&json!([
            {"type": "permission", "resource": "rpc", "lxm": ["app.example.get"], "inheritAud": true},
        ]));
        let port = "include:app.example.authFull?aud=did:web:localhost%253A8443%23svc";
        assert!(expanded(&set, port).is_empty());
        // A `+` in the service id comes back as a space.
        assert!(
            expanded(
                &set,
                "include:app.example.authFull?aud=did:web:x.com%23a%2Bb"
            )
            .is_empty()
        );
        assert_eq!(
            expanded(
                &set,
                "include:app.example.authFull?aud=did:web:localhost%23svc"
            ),
            vec!["rpc:app.example.get?aud=did:web:localhost%23svc"]
        );
    }

    #[test]
    fn documents_the_pds_refuses_are_refused() {
        let with_main = |main: serde_json::Value| json!({"lexicon": 1, "id": "app.example.authFull", "defs": {"main": main}});
        let refused = [
            with_main(json!({"type": "permission-set", "permissions": [], "title": 5})),
            with_main(
                json!({"type": "permission-set", "permissions": [], "title:lang": {"EN": "x"}}),
            ),
            with_main(json!({"type": "permission-set", "permissions": [], "detail": null})),
            with_main(json!({"type": "permission-set"})),
            with_main(json!({"type": "permission-set", "permissions": [
                {"type": "permission", "resource": "repo", "collection": ["app.example.post"], "n": 1.5}
            ]})),
            with_main(json!({"type": "permission-set", "permissions": [
                {"type": "permission", "resource": "repo", "collection": ["app.example.post", 1]}
            ]})),
            with_main(
                json!({"type": "permission-set", "permissions": [{"type": "permission", "resource": ""}]}),
            ),
            with_main(json!({"type": "query"})),
            json!({"lexicon": 2, "id": "app.example.authFull", "defs": {"main": {"type": "permission-set", "permissions": []}}}),
            json!({"lexicon": 1, "id": "app.example.authFull", "revision": 1.5, "defs": {"main": {"type": "permission-set", "permissions": []}}}),
            json!({"lexicon": 1, "id": "app.example.authFull", "defs": {
                "main": {"type": "permission-set", "permissions": []},
                "other": {"type": "permission-set", "permissions": []},
            }}),
        ];
        for document in refused {
            assert!(
                PermissionSet::from_lexicon(&document).is_err(),
                "{document}"
            );
        }
        let accepted = json!({"lexicon": 1, "id": "app.example.authFull", "revision": 3, "defs": {
            "main": {"type": "permission-set", "permissions": [
                {"type": "permission", "resource": "repo", "collection": ["app.example.post"], "n": -3},
            ], "title:lang": {"pt-BR": "Tudo"}, "extra": {"ignored": true}},
            "thing": {"type": "token"},
        }});
        assert!(PermissionSet::from_lexicon(&accepted).is_ok());
    }
}
