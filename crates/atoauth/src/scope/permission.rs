//! One permission: a fixed token or a granular resource with its parameters (permission spec §3),
//! in a normalised form, so equality is structural (§6) and `Display` is the canonical string.

use std::collections::BTreeSet;
use std::fmt;

use super::ScopeError;
use super::audience::service_ref_problem;
use super::generic::{GenericToken, encode, encode_positional};
use super::mime::{accepts, is_accept};
use crate::syntax::Nsid;

/// A parsed, normalised permission.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Permission {
    /// `atproto`: required in every request; alone, an identity-only login.
    Atproto,
    /// `transition:generic`: App-Password-like access (§4.21).
    TransitionGeneric,
    /// `transition:chat.bsky`: `chat.bsky.*` methods (§4.22).
    TransitionChatBsky,
    /// `transition:email`: read the account email (§4.23).
    TransitionEmail,
    /// `repo`: write records.
    Repo(RepoPermission),
    /// `rpc`: call methods on a remote service.
    Rpc(RpcPermission),
    /// `blob`: upload media.
    Blob(BlobPermission),
    /// `account`: the account email, repository import and hosting status.
    Account(AccountPermission),
    /// `identity`: handle and DID document control.
    Identity(IdentityPermission),
    /// `include`: a permission set, expanded by the authorization server.
    Include(IncludePermission),
}

/// `*` or a set of names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsidSet {
    /// Every collection or method.
    All,
    /// These, sorted and de-duplicated.
    Only(BTreeSet<Nsid>),
}

impl NsidSet {
    /// Whether `nsid` is in the set.
    #[must_use]
    pub fn contains(&self, nsid: &Nsid) -> bool {
        match self {
            Self::All => true,
            Self::Only(set) => set.contains(nsid),
        }
    }
}

/// A record operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepoAction {
    /// Create records.
    Create,
    /// Update records.
    Update,
    /// Delete records.
    Delete,
}

impl RepoAction {
    /// All three, in canonical order.
    pub const ALL: [Self; 3] = [Self::Create, Self::Update, Self::Delete];

    /// `create`, `update` or `delete`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// `repo`: collections and the actions allowed on them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPermission {
    /// The collections.
    pub collections: NsidSet,
    /// The actions (never empty; all three by default).
    pub actions: BTreeSet<RepoAction>,
}

/// Who an `rpc` permission may call: any service, or one service reference `did#id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// `*`.
    Any,
    /// A DID service reference such as `did:web:api.bsky.app#bsky_appview`.
    Service(String),
}

/// `rpc`: methods and their audience.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RpcPermission {
    /// The methods.
    pub methods: NsidSet,
    /// The service.
    pub audience: Audience,
}

/// `blob`: accepted MIME patterns.
///
/// The patterns keep their case, because the official PDS matches them as written,
/// case-sensitively (§9.46): `blob:IMAGE/PNG` admits only `IMAGE/PNG`. So the canonical form
/// simplifies them as §6.37 says (`*/*` absorbs everything, an exact type covered by a `type/*`
/// goes) but does not lowercase them, which would change what they grant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobPermission {
    /// `*/*`, `type/*` or `type/subtype`, as written, simplified.
    pub accept: BTreeSet<String>,
}

/// What an `account` permission is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountAttribute {
    /// The account email and its confirmation status.
    Email,
    /// The whole repository (import, for migration).
    Repo,
    /// The hosting status: activate or deactivate the account. Not in the written spec; the
    /// official PDS requires `account:status?action=manage` for
    /// `com.atproto.server.deactivateAccount` (§3.17).
    Status,
}

/// `read` or `manage` (which includes read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountAction {
    /// See it.
    Read,
    /// See and change it.
    Manage,
}

/// `account`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountPermission {
    /// What.
    pub attribute: AccountAttribute,
    /// How.
    pub action: AccountAction,
}

/// What an `identity` permission controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityAttribute {
    /// The handle.
    Handle,
    /// `*`: the whole DID document and the handle.
    All,
}

/// `identity`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityPermission {
    /// What.
    pub attribute: IdentityAttribute,
}

/// `include`: a permission set and the audience its `inheritAud` members take.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncludePermission {
    /// The permission-set lexicon.
    pub nsid: Nsid,
    /// The service reference passed to members with `inheritAud`.
    pub audience: Option<String>,
}

impl Permission {
    /// Parses one token.
    ///
    /// # Errors
    /// When the token breaks the grammar or a resource's rules; unknown resources included.
    pub fn parse(token: &str) -> Result<Self, ScopeError> {
        match Self::fixed(token) {
            Some(fixed) => Ok(fixed),
            None => Self::from_generic(token, &GenericToken::parse(token)?, Reading::Request),
        }
    }

    /// Reads one token of a *granted* scope exactly as the official PDS reads it when it checks
    /// a request (§9.45): also the tokens [`parse`](Self::parse) refuses to request although the
    /// PDS keeps them — a malformed escape in a query (taken literally), a value that decodes to
    /// non-ASCII, a repeated account `action` (the strongest counts). What the PDS grants is
    /// what [`Permissions`](super::Permissions) allows, whoever asked for it.
    ///
    /// # Errors
    /// When the PDS's own reading gives the token no meaning.
    pub fn parse_as_granted(token: &str) -> Result<Self, ScopeError> {
        match Self::fixed(token) {
            Some(fixed) => Ok(fixed),
            None => Self::from_generic(
                token,
                &GenericToken::split_as_the_pds_does(token)?,
                Reading::Granted,
            ),
        }
    }

    fn fixed(token: &str) -> Option<Self> {
        match token {
            "atproto" => Some(Self::Atproto),
            "transition:generic" => Some(Self::TransitionGeneric),
            "transition:chat.bsky" => Some(Self::TransitionChatBsky),
            "transition:email" => Some(Self::TransitionEmail),
            _ => None,
        }
    }

    fn from_generic(
        token: &str,
        generic: &GenericToken,
        reading: Reading,
    ) -> Result<Self, ScopeError> {
        let params = Params::new(token, generic)?;
        let permission = match generic.resource.as_str() {
            "repo" => {
                params.allow(&["collection", "action"])?;
                let collections =
                    nsid_set(token, params.positional_many("collection")?, "collection")?;
                let actions = match params.many("action") {
                    values if values.is_empty() => RepoAction::ALL.into_iter().collect(),
                    values => values
                        .iter()
                        .map(|v| match v.as_str() {
                            "create" => Ok(RepoAction::Create),
                            "update" => Ok(RepoAction::Update),
                            "delete" => Ok(RepoAction::Delete),
                            _ => Err(ScopeError::invalid(
                                token,
                                "action must be create, update or delete",
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                };
                Self::Repo(RepoPermission {
                    collections,
                    actions,
                })
            }
            "rpc" => {
                params.allow(&["lxm", "aud"])?;
                let methods = nsid_set(token, params.positional_many("lxm")?, "lxm")?;
                let audience = match params.one("aud")? {
                    None => return Err(ScopeError::invalid(token, "aud is required")),
                    Some(aud) if aud == "*" => Audience::Any,
                    Some(aud) => Audience::Service(service_reference(token, &aud)?),
                };
                if methods == NsidSet::All && audience == Audience::Any {
                    return Err(ScopeError::invalid(
                        token,
                        "lxm=* together with aud=* is not allowed",
                    ));
                }
                Self::Rpc(RpcPermission { methods, audience })
            }
            "blob" => {
                params.allow(&["accept"])?;
                let values = params.positional_many("accept")?;
                if values.is_empty() {
                    return Err(ScopeError::invalid(token, "accept is required"));
                }
                Self::Blob(BlobPermission::checked(token, values)?)
            }
            "account" => {
                params.allow(&["attr", "action"])?;
                let attribute = match params.positional_one("attr")?.as_deref() {
                    Some("email") => AccountAttribute::Email,
                    Some("repo") => AccountAttribute::Repo,
                    Some("status") => AccountAttribute::Status,
                    Some(_) => {
                        return Err(ScopeError::invalid(
                            token,
                            "attr must be email, repo or status",
                        ));
                    }
                    None => return Err(ScopeError::invalid(token, "attr is required")),
                };
                let actions = match reading {
                    // §3.17 [DIFF]: the spec makes `action` single-valued; ask only that way.
                    Reading::Request => params.one("action")?.into_iter().collect(),
                    // The PDS reads a list and allows what any of its values allows.
                    Reading::Granted => params.many("action"),
                };
                let mut action = AccountAction::Read;
                for value in &actions {
                    match value.as_str() {
                        "read" => {}
                        "manage" => action = AccountAction::Manage,
                        _ => {
                            return Err(ScopeError::invalid(
                                token,
                                "action must be read or manage",
                            ));
                        }
                    }
                }
                Self::Account(AccountPermission { attribute, action })
            }
            "identity" => {
                params.allow(&["attr"])?;
                let attribute = match params.positional_one("attr")?.as_deref() {
                    Some("handle") => IdentityAttribute::Handle,
                    Some("*") => IdentityAttribute::All,
                    Some(_) => return Err(ScopeError::invalid(token, "attr must be handle or *")),
                    None => return Err(ScopeError::invalid(token, "attr is required")),
                };
                Self::Identity(IdentityPermission { attribute })
            }
            "include" => {
                params.allow(&["nsid", "aud"])?;
                let nsid = params
                    .positional_one("nsid")?
                    .ok_or_else(|| ScopeError::invalid(token, "nsid is required"))?;
                let nsid = Nsid::new(&nsid).map_err(|e| ScopeError::invalid(token, e.reason))?;
                let audience = match params.one("aud")? {
                    None => None,
                    Some(aud) => Some(service_reference(token, &aud)?),
                };
                Self::Include(IncludePermission { nsid, audience })
            }
            _ => return Err(ScopeError::invalid(token, "unknown resource")),
        };
        Ok(permission)
    }
}

/// What a token is read for: a request atoauth sends, or a scope a server granted.
#[derive(Clone, Copy)]
enum Reading {
    Request,
    Granted,
}

/// Resource parameters with the rules of §2.10–§2.11 applied as they are read.
struct Params<'a> {
    token: &'a str,
    positional: Option<String>,
    named: Vec<(String, String)>,
}

impl<'a> Params<'a> {
    fn new(token: &'a str, generic: &GenericToken) -> Result<Self, ScopeError> {
        if generic.params.iter().any(|(_, value)| value.is_empty()) {
            return Err(ScopeError::invalid(token, "empty parameter value"));
        }
        // §9.46: `repo:?collection=*` names an empty positional value; the PDS drops the token.
        if generic.positional.as_deref() == Some("") {
            return Err(ScopeError::invalid(
                token,
                "empty positional value after ':' (the official PDS drops this token)",
            ));
        }
        Ok(Self {
            token,
            positional: generic.positional.clone(),
            named: generic.params.clone(),
        })
    }

    fn allow(&self, names: &[&str]) -> Result<(), ScopeError> {
        match self
            .named
            .iter()
            .find(|(name, _)| !names.contains(&name.as_str()))
        {
            Some((name, _)) => Err(ScopeError::invalid_owned(
                self.token,
                format!("unknown parameter {name:?}"),
            )),
            None => Ok(()),
        }
    }

    fn many(&self, name: &str) -> Vec<String> {
        self.named
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn one(&self, name: &str) -> Result<Option<String>, ScopeError> {
        let mut values = self.many(name);
        if values.len() > 1 {
            return Err(ScopeError::invalid_owned(
                self.token,
                format!("{name} may be given only once"),
            ));
        }
        Ok(values.pop())
    }

    /// The positional parameter, given either positionally or by name, never both.
    fn positional_many(&self, name: &str) -> Result<Vec<String>, ScopeError> {
        let named = self.many(name);
        match (&self.positional, named.is_empty()) {
            (Some(_), false) => Err(ScopeError::invalid_owned(
                self.token,
                format!("{name} is given both positionally and as a parameter"),
            )),
            (Some(value), true) => Ok(vec![value.clone()]),
            (None, _) => Ok(named),
        }
    }

    fn positional_one(&self, name: &str) -> Result<Option<String>, ScopeError> {
        let mut values = self.positional_many(name)?;
        if values.len() > 1 {
            return Err(ScopeError::invalid_owned(
                self.token,
                format!("{name} may be given only once"),
            ));
        }
        Ok(values.pop())
    }
}

fn nsid_set(token: &str, values: Vec<String>, name: &str) -> Result<NsidSet, ScopeError> {
    if values.is_empty() {
        return Err(ScopeError::invalid_owned(
            token,
            format!("{name} is required"),
        ));
    }
    let mut set = BTreeSet::new();
    let mut all = false;
    for value in values {
        if value == "*" {
            all = true;
        } else {
            // §3.13: partial wildcards such as app.bsky.* are not NSIDs.
            set.insert(
                Nsid::new(&value).map_err(|e| {
                    ScopeError::invalid_owned(token, format!("{name}: {}", e.reason))
                })?,
            );
        }
    }
    Ok(if all {
        NsidSet::All
    } else {
        NsidSet::Only(set)
    })
}

/// §3.15, §9.46: a `did:plc` or `did:web` service reference, exactly as the official PDS
/// accepts it ([DIFF] §3.15: indigo accepts any DID; the PDS is the enforcer).
fn service_reference(token: &str, value: &str) -> Result<String, ScopeError> {
    match service_ref_problem(value) {
        Some(reason) => Err(ScopeError::invalid(token, reason)),
        None => Ok(value.to_owned()),
    }
}

impl BlobPermission {
    fn checked(token: &str, values: Vec<String>) -> Result<Self, ScopeError> {
        if let Some(bad) = values.iter().find(|v| !is_accept(v)) {
            return Err(ScopeError::invalid_owned(
                token,
                format!("accept: {bad:?} is not type/subtype, type/* or */*"),
            ));
        }
        Ok(Self::simplified(&values.into_iter().collect()))
    }

    /// §6.37 without lowercasing: `*/*` absorbs everything; an exact type that a `type/*` of
    /// the same spelling covers goes. What it grants does not change.
    fn simplified(accept: &BTreeSet<String>) -> Self {
        if accept.contains("*/*") {
            return Self {
                accept: BTreeSet::from(["*/*".to_owned()]),
            };
        }
        let covered = |p: &String| {
            !p.ends_with("/*")
                && accept
                    .iter()
                    .any(|w| w.ends_with("/*") && w != p && accepts(w, p))
        };
        let kept = accept.iter().filter(|p| !covered(p)).cloned().collect();
        Self { accept: kept }
    }
}

impl fmt::Display for Permission {
    /// The canonical form (§6): positional when one value, defaults dropped, values sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Atproto => f.write_str("atproto"),
            Self::TransitionGeneric => f.write_str("transition:generic"),
            Self::TransitionChatBsky => f.write_str("transition:chat.bsky"),
            Self::TransitionEmail => f.write_str("transition:email"),
            Self::Repo(repo) => {
                let mut query = Vec::new();
                let head = positional_or_named(
                    "repo",
                    "collection",
                    &names(&repo.collections),
                    &mut query,
                );
                if repo.actions.len() < 3 {
                    query.extend(
                        repo.actions
                            .iter()
                            .map(|a| format!("action={}", a.as_str())),
                    );
                }
                write_token(f, &head, &query)
            }
            Self::Rpc(rpc) => {
                let mut query = Vec::new();
                let head = positional_or_named("rpc", "lxm", &names(&rpc.methods), &mut query);
                query.push(match &rpc.audience {
                    Audience::Any => "aud=*".to_owned(),
                    Audience::Service(service) => format!("aud={}", encode(service)),
                });
                write_token(f, &head, &query)
            }
            Self::Blob(blob) => {
                let mut query = Vec::new();
                let values: Vec<String> = blob.accept.iter().cloned().collect();
                let head = positional_or_named("blob", "accept", &values, &mut query);
                write_token(f, &head, &query)
            }
            Self::Account(account) => {
                let attribute = match account.attribute {
                    AccountAttribute::Email => "email",
                    AccountAttribute::Repo => "repo",
                    AccountAttribute::Status => "status",
                };
                let query = match account.action {
                    AccountAction::Read => vec![],
                    AccountAction::Manage => vec!["action=manage".to_owned()],
                };
                write_token(f, &format!("account:{attribute}"), &query)
            }
            Self::Identity(identity) => match identity.attribute {
                IdentityAttribute::Handle => f.write_str("identity:handle"),
                IdentityAttribute::All => f.write_str("identity:*"),
            },
            Self::Include(include) => {
                let query: Vec<String> = include
                    .audience
                    .iter()
                    .map(|aud| format!("aud={}", encode(aud)))
                    .collect();
                write_token(f, &format!("include:{}", include.nsid), &query)
            }
        }
    }
}

fn names(set: &NsidSet) -> Vec<String> {
    match set {
        NsidSet::All => vec!["*".to_owned()],
        NsidSet::Only(set) => set.iter().map(ToString::to_string).collect(),
    }
}

fn positional_or_named(
    resource: &str,
    name: &str,
    values: &[String],
    query: &mut Vec<String>,
) -> String {
    match values {
        [one] => format!("{resource}:{}", encode_positional(one)),
        many => {
            query.extend(many.iter().map(|v| format!("{name}={}", encode(v))));
            resource.to_owned()
        }
    }
}

fn write_token(f: &mut fmt::Formatter<'_>, head: &str, query: &[String]) -> fmt::Result {
    f.write_str(head)?;
    if !query.is_empty() {
        write!(f, "?{}", query.join("&"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(token: &str) -> String {
        Permission::parse(token).unwrap().to_string()
    }

    fn lines(file: &str) -> Vec<String> {
        std::fs::read_to_string(format!(
            "{}/testdata/scopes/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .split('\n')
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
    }

    #[test]
    fn every_valid_vector_parses_and_every_invalid_one_is_refused() {
        let valid = lines("permission_scopes_valid.txt");
        assert!(valid.len() > 40);
        for line in valid {
            let permission = Permission::parse(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            // The canonical form parses back to the same permission.
            assert_eq!(
                Permission::parse(&permission.to_string()).unwrap(),
                permission,
                "{line}"
            );
        }
        let invalid = lines("permission_scopes_invalid.txt");
        assert!(invalid.len() > 80);
        // indigo refuses account:status; the official PDS requires it (§3.17, §9.45).
        let accepted_as_the_pds_does = ["account:status", "account:status?action=manage"];
        for line in &accepted_as_the_pds_does {
            assert!(
                invalid.iter().any(|l| l == line),
                "{line} is in the indigo vectors"
            );
            assert!(Permission::parse(line).is_ok(), "{line}");
        }
        for line in invalid
            .into_iter()
            .filter(|l| !accepted_as_the_pds_does.contains(&l.as_str()))
        {
            assert!(
                Permission::parse(&line).is_err(),
                "must be refused: {line:?}"
            );
        }
    }

    #[test]
    fn section_8_worked_examples_normalise_as_the_spec_says() {
        for (input, expected) in [
            (
                "repo:app.example.post?action=create&action=update&action=delete",
                "repo:app.example.post",
            ),
            (
                "repo?action=create&collection=app.example.b&collection=app.example.a",
                "repo?collection=app.example.a&collection=app.example.b&action=create",
            ),
            ("repo?collection=*&collection=app.example.a", "repo:*"),
            ("repo:*?action=delete", "repo:*?action=delete"),
            (
                "repo:a.b.c?action=delete&action=create",
                "repo:a.b.c?action=create&action=delete",
            ),
            (
                "rpc:app.bsky.actor.getProfile?aud=did:web:api.bsky.app#bsky_appview",
                "rpc:app.bsky.actor.getProfile?aud=did:web:api.bsky.app%23bsky_appview",
            ),
            (
                "rpc:app.example.moderation.createReport?aud=*",
                "rpc:app.example.moderation.createReport?aud=*",
            ),
            (
                "rpc?lxm=*&aud=did:web:api.example.com%23svc_appview",
                "rpc:*?aud=did:web:api.example.com%23svc_appview",
            ),
            ("blob:*/*", "blob:*/*"),
            ("blob?accept=image/*&accept=image/png", "blob:image/*"),
            // §6.37 lowercases; atoauth keeps the case, because the PDS matches it (§9.46).
            (
                "blob?accept=video/*&accept=image/png&accept=IMAGE/JPEG",
                "blob?accept=IMAGE/JPEG&accept=image/png&accept=video/*",
            ),
            ("blob?accept=image/png&accept=*/*", "blob:*/*"),
            ("account:email", "account:email"),
            ("account:email?action=read", "account:email"),
            ("account:email?action=manage", "account:email?action=manage"),
            (
                "account?attr=repo&action=manage",
                "account:repo?action=manage",
            ),
            ("identity:*?", "identity:*"),
            ("identity?attr=handle", "identity:handle"),
            (
                "include:app.example.authFull?aud=did:web:api.example.com%23svc_chat",
                "include:app.example.authFull?aud=did:web:api.example.com%23svc_chat",
            ),
            ("include?nsid=com.example.baz", "include:com.example.baz"),
        ] {
            assert_eq!(canonical(input), expected, "{input}");
        }
    }

    #[test]
    fn structural_equality_ignores_spelling() {
        assert_eq!(
            Permission::parse("repo?collection=a.b.c&action=create").unwrap(),
            Permission::parse("repo:a.b.c?action=create").unwrap()
        );
        assert_eq!(
            Permission::parse("rpc?aud=did%3Aweb%3Aapi.example.com%23frag&lxm=com.example.q")
                .unwrap(),
            Permission::parse("rpc:com.example.q?aud=did:web:api.example.com#frag").unwrap()
        );
        assert_ne!(
            Permission::parse("repo:a.b.c").unwrap(),
            Permission::parse("repo:a.b.c?action=create").unwrap()
        );
    }

    #[test]
    fn diff_notes_follow_the_spec() {
        // [DIFF] §3.15: indigo accepts any valid DID as aud; the official PDS only plc and web,
        // and it is the enforcer (§9.45).
        assert!(Permission::parse("rpc:a.b.c?aud=did:key:zabc%23svc").is_err());
        // [DIFF] §3.17: the spec makes account action single-valued (indigo); TypeScript does not.
        assert!(Permission::parse("account:email?action=read&action=manage").is_err());
        // [DIFF] §3.17/T6: account:status is not in the written spec and indigo rejects it; the
        // official PDS requires it for deactivateAccount, so it parses (§9.45).
        assert_eq!(
            Permission::parse("account:status?action=manage")
                .unwrap()
                .to_string(),
            "account:status?action=manage"
        );
        // [DIFF] §3.19: include aud must be a service reference (TypeScript); indigo also takes *.
        assert!(Permission::parse("include:com.example.set?aud=*").is_err());
    }

    #[test]
    fn a_granted_scope_is_read_as_the_pds_reads_it() {
        // §9.45: what atoauth refuses to ask for, the PDS may still grant (another client asked);
        // what it grants, atoauth reads with the PDS's meaning.
        for (token, meaning) in [
            // A list of account actions: the strongest counts.
            (
                "account:email?action=read&action=manage",
                "account:email?action=manage",
            ),
            ("account?attr=repo&action=read&action=read", "account:repo"),
            // A malformed escape in a query is taken literally.
            ("blob?accept=image/p%zz", "blob:image/p%25zz"),
            // A value that decodes to non-ASCII is kept.
            ("blob:image/%C3%A9", "blob:image/%C3%A9"),
            // A second '?' is dropped by the form parser.
            (
                "include:a.b.c??aud=did:web:x.com%23s",
                "include:a.b.c?aud=did:web:x.com%23s",
            ),
        ] {
            assert!(
                Permission::parse(token).is_err(),
                "never requested: {token}"
            );
            let granted = Permission::parse_as_granted(token).unwrap();
            assert_eq!(granted.to_string(), meaning, "{token}");
        }
        // A malformed escape in a positional part makes the PDS fail: no meaning.
        assert!(Permission::parse_as_granted("repo:%zz").is_err());
        // Everything a request may carry means the same when granted.
        let token = "rpc:app.bsky.actor.getProfile?aud=did:web:api.bsky.app%23bsky_appview";
        assert_eq!(
            Permission::parse_as_granted(token).unwrap(),
            Permission::parse(token).unwrap()
        );
    }

    #[test]
    fn plus_signs_never_turn_into_spaces_in_canonical_form() {
        // Positional parts are not form-decoded, so `+` is literal there (as the reference
        // writes it); in a query it stays `%2B` (§2.12, §6.38).
        let permission = Permission::parse("blob:application/vnd.api%2Bjson").unwrap();
        assert_eq!(permission.to_string(), "blob:application/vnd.api+json");
        let two =
            Permission::parse("blob?accept=application/vnd.api%2Bjson&accept=text/plain").unwrap();
        assert_eq!(
            two.to_string(),
            "blob?accept=application/vnd.api%2Bjson&accept=text/plain"
        );
        assert_eq!(Permission::parse(&two.to_string()).unwrap(), two);
        assert_eq!(
            Permission::parse(&permission.to_string()).unwrap(),
            permission
        );
    }
}
