//! One member of a permission set, read as the official PDS reads it (§5.27–§5.30,
//! `IncludeScope.buildPermissions` of `@atproto/oauth-scopes`): a `repo` or `rpc` permission
//! whose fields are exactly the resource's parameters, and then the token the PDS writes into
//! the granted scope, read back as the PDS reads that scope.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::scope::audience::service_ref_problem;
use crate::scope::permission::{
    Audience, IncludePermission, NsidSet, Permission, RepoAction, RepoPermission, RpcPermission,
};
use crate::syntax::Nsid;

/// What `member` of the set `set` grants through `include`, if anything.
pub(super) fn granted(
    set: &Nsid,
    member: &Value,
    include: &IncludePermission,
) -> Option<Permission> {
    let member = member.as_object()?;
    let permission = match member.get("resource").and_then(Value::as_str)? {
        "repo" => repo(member)?,
        "rpc" => rpc(member, include)?,
        // §5.20: blob, account and identity never come through a set.
        _ => return None,
    };
    within_authority(set, &permission).then_some(())?;
    as_the_pds_grants_it(permission)
}

/// The member's own fields, without `type` and `resource`; `None` when one is not in `allowed`.
fn fields<'a>(
    member: &'a Map<String, Value>,
    allowed: &[&str],
) -> Option<Vec<(&'a str, &'a Value)>> {
    let fields: Vec<(&str, &Value)> = member
        .iter()
        .map(|(key, value)| (key.as_str(), value))
        .filter(|(key, _)| *key != "type" && *key != "resource")
        .collect();
    fields
        .iter()
        .all(|(key, _)| allowed.contains(key))
        .then_some(fields)
}

/// A non-empty list of `*` or NSIDs; `*` means all.
fn names(value: Option<&Value>) -> Option<NsidSet> {
    let values = value?.as_array().filter(|v| !v.is_empty())?;
    let mut set = BTreeSet::new();
    let mut all = false;
    for value in values {
        match value.as_str()? {
            "*" => all = true,
            name => {
                set.insert(Nsid::new(name).ok()?);
            }
        }
    }
    Some(if all {
        NsidSet::All
    } else {
        NsidSet::Only(set)
    })
}

fn repo(member: &Map<String, Value>) -> Option<Permission> {
    fields(member, &["collection", "action"])?;
    let collections = names(member.get("collection"))?;
    let actions = match member.get("action") {
        None => RepoAction::ALL.into_iter().collect(),
        Some(list) => {
            let list = list.as_array().filter(|l| !l.is_empty())?;
            list.iter()
                .map(|a| match a.as_str()? {
                    "create" => Some(RepoAction::Create),
                    "update" => Some(RepoAction::Update),
                    "delete" => Some(RepoAction::Delete),
                    _ => None,
                })
                .collect::<Option<BTreeSet<_>>>()?
        }
    };
    Some(Permission::Repo(RepoPermission {
        collections,
        actions,
    }))
}

/// §5.27/§5.28: `aud` is `*`, or absent with `inheritAud: true` and an `include` audience. Any
/// other field, `inheritAud` included where it is not used, drops the member (the PDS reads it
/// as an unknown parameter).
fn rpc(member: &Map<String, Value>, include: &IncludePermission) -> Option<Permission> {
    let aud = member.get("aud");
    let inherits = member.get("inheritAud") == Some(&Value::Bool(true));
    let audience = match (aud, inherits, &include.audience) {
        (None, true, Some(inherited)) => {
            fields(member, &["lxm", "inheritAud"])?;
            Audience::Service(inherited.clone())
        }
        (Some(Value::String(any)), _, _) if any == "*" => {
            fields(member, &["lxm", "aud"])?;
            Audience::Any
        }
        _ => return None,
    };
    let methods = names(member.get("lxm"))?;
    if methods == NsidSet::All && audience == Audience::Any {
        return None;
    }
    Some(Permission::Rpc(RpcPermission { methods, audience }))
}

/// §5.29: every name starts with the set's group (its NSID without the last segment) and a dot;
/// `*` never does.
fn within_authority(set: &Nsid, permission: &Permission) -> bool {
    let group = format!("{}.", set.authority());
    let inside = |names: &NsidSet| match names {
        NsidSet::All => false,
        NsidSet::Only(names) => names.iter().all(|n| n.as_str().starts_with(&group)),
    };
    match permission {
        Permission::Repo(repo) => inside(&repo.collections),
        Permission::Rpc(rpc) => inside(&rpc.methods),
        _ => false,
    }
}

/// The PDS writes each granted member into the token's scope in its normal form, which puts `%`
/// and `+` back into query values (permission spec §6.38), and then reads that scope like any
/// other. An inherited audience such as `did:web:localhost%3A8443#svc` comes back as
/// `did:web:localhost:8443#svc`, which is no service reference, so the member grants nothing;
/// a `+` comes back as a space. Predict what the PDS will allow, not what the set says.
fn as_the_pds_grants_it(permission: Permission) -> Option<Permission> {
    let Permission::Rpc(RpcPermission {
        audience: Audience::Service(service),
        methods,
    }) = &permission
    else {
        return Some(permission);
    };
    if !service.contains(['%', '+']) {
        return Some(permission);
    }
    // One form decoding of the value, as the PDS's URLSearchParams does (an `&` in it was
    // escaped when written, so it is no separator).
    let written = format!("a={}", service.replace('&', "%26"));
    let read_back: String = url::form_urlencoded::parse(written.as_bytes())
        .map(|(_, value)| value.into_owned())
        .next()
        .unwrap_or_default();
    service_ref_problem(&read_back).is_none().then(|| {
        Permission::Rpc(RpcPermission {
            methods: methods.clone(),
            audience: Audience::Service(read_back),
        })
    })
}
