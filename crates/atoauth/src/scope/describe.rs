//! Permissions in words, for consent previews and `atoauth scope explain`.

use super::permission::{
    AccountAction, AccountAttribute, Audience, IdentityAttribute, NsidSet, Permission, RepoAction,
};

impl Permission {
    /// What this permission allows, as one English sentence without a final period.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Atproto => {
                "identify the account (required in every request; alone, sign-in only)".to_owned()
            }
            Self::TransitionGeneric => {
                "broad access like an App Password: create, update and delete any record, \
                upload any blob, call any service except chat.bsky.*; no account management, no DMs"
                    .to_owned()
            }
            Self::TransitionChatBsky => {
                "call chat.bsky.* methods (direct messages), together with transition:generic"
                    .to_owned()
            }
            Self::TransitionEmail => {
                "read the account's email address and whether it is confirmed".to_owned()
            }
            Self::Repo(repo) => {
                let actions: Vec<&str> = repo.actions.iter().map(|a| a.as_str()).collect();
                let verbs = if repo.actions.len() == RepoAction::ALL.len() {
                    "create, update and delete".to_owned()
                } else {
                    actions.join(" and ")
                };
                format!(
                    "{verbs} records in {}",
                    collections(&repo.collections, "any collection")
                )
            }
            Self::Rpc(rpc) => {
                let service = match &rpc.audience {
                    Audience::Any => "any service".to_owned(),
                    Audience::Service(service) => service.clone(),
                };
                format!(
                    "call {} on {service}",
                    collections(&rpc.methods, "any method")
                )
            }
            Self::Blob(blob) => {
                let accept: Vec<&str> = blob.accept.iter().map(String::as_str).collect();
                if accept == ["*/*"] {
                    "upload blobs of any type".to_owned()
                } else {
                    format!("upload blobs of type {}", accept.join(", "))
                }
            }
            Self::Account(account) => match (account.attribute, account.action) {
                (AccountAttribute::Email, AccountAction::Read) => {
                    "read the account's email address and whether it is confirmed".to_owned()
                }
                (AccountAttribute::Email, AccountAction::Manage) => {
                    "read and change the account's email address".to_owned()
                }
                (AccountAttribute::Repo, AccountAction::Manage) => {
                    "import a whole repository into the account (migration)".to_owned()
                }
                (AccountAttribute::Repo, AccountAction::Read) => {
                    "nothing: account:repo grants rights only with action=manage".to_owned()
                }
                (AccountAttribute::Status, AccountAction::Read) => {
                    "nothing: account:status grants rights only with action=manage".to_owned()
                }
                (AccountAttribute::Status, AccountAction::Manage) => {
                    "activate or deactivate the account".to_owned()
                }
            },
            Self::Identity(identity) => match identity.attribute {
                IdentityAttribute::Handle => "change the account's handle".to_owned(),
                IdentityAttribute::All => {
                    "full control of the account's DID document and handle".to_owned()
                }
            },
            Self::Include(include) => {
                let audience = include
                    .audience
                    .as_ref()
                    .map(|aud| format!(", its service calls bound to {aud}"))
                    .unwrap_or_default();
                format!(
                    "the permission set {} (expanded by the authorization server{audience})",
                    include.nsid
                )
            }
        }
    }
}

fn collections(set: &NsidSet, all: &str) -> String {
    match set {
        NsidSet::All => all.to_owned(),
        NsidSet::Only(names) => names
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}
