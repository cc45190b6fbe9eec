//! Differential test of scopes against the official PDS's own code (permission spec §9):
//! `@atproto/oauth-scopes` 0.5.12 from `interop/pds/node_modules`, run by node.
//!
//! A seeded generator writes scope tokens from the grammar (every resource, positional and named
//! forms, encodings, good and bad values) and mutates them. For each token:
//! - if atoauth accepts it, the PDS keeps it (never drops it, never fails on it) — no exception;
//! - if the PDS keeps it and atoauth refuses it, the reason is a row of [`JUSTIFIED`];
//! - atoauth's canonical string means to the PDS what the token means, and equals the PDS's own
//!   normal form except where that form is not stable (§6.38: the reference puts `%` and `+`
//!   back).
//!
//! Then random grants (of tokens the PDS keeps, in any spelling, with transition scopes) are
//! checked against random requests with the PDS's `ScopePermissionsTransition`: every answer
//! must be the same. Requested-versus-granted matching (`Permissions::covers`, behind
//! `ScopeDiff`) must say "covered" exactly when the PDS allows every request the requested
//! permission would allow. Permission sets are compared in `sets.rs`.
//!
//! Every run prints its seed; `ATOAUTH_DIFFERENTIAL_SEED=<seed> cargo test -p atoauth --test
//! scope_differential` replays it, and any other seed explores a new corpus.
// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use atoauth::scope::{
    AccountAction, AccountAttribute, IdentityAttribute, Permission, Permissions, RepoAction, Scope,
};
use atoauth::syntax::Nsid;
use serde_json::{Value, json};

mod corpus;
mod sets;

use corpus::{AUDIENCES, MIMES, NSIDS, Rng};

/// Where atoauth refuses a token the PDS keeps, and the spec rule that makes it stricter.
const JUSTIFIED: &[(&str, &str)] = &[
    (
        "outside the RFC 6749 scope grammar",
        "B6.1 / §1.1: the PDS refuses the whole PAR for `\"`, `\\` or non-ASCII (oauthScopeSchema), \
         though its scope library would keep the token",
    ),
    (
        "malformed percent-encoding",
        "§9.47: the PDS fails with HTTP 500 on a malformed escape in a positional part and keeps \
         one in a query literally; atoauth refuses both",
    ),
    (
        "decodes to non-ASCII",
        "§2.8: non-ASCII anywhere is a syntax error, also behind a percent-escape",
    ),
    (
        "blob pattern case kept",
        "§9.46 over §6.37: the PDS matches blob patterns case-sensitively, so atoauth's canonical \
         form keeps their case where the reference normal form lowercases them",
    ),
    (
        "account action given twice",
        "§3.17 [DIFF]: the spec makes account `action` single-valued; the reference takes a list",
    ),
    (
        "a second '?' opens the query",
        "§2.6: only the first `?` is a delimiter, so `include:a.b.c??aud=…` names a parameter \
         `?aud`; the PDS's form parser strips the second `?`, indigo's does not",
    ),
];

/// Which row of [`JUSTIFIED`] explains atoauth refusing `token` where the PDS keeps it.
fn justification(token: &str) -> Option<&'static str> {
    let outside_grammar = token
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b'"' || b == b'\\');
    let malformed = token.char_indices().any(|(i, c)| {
        c == '%'
            && !token
                .get(i + 1..i + 3)
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    let decodes_non_ascii = {
        let decoded: Vec<u8> = percent_decode(token);
        decoded.iter().any(|b| !b.is_ascii())
    };
    let account_actions = token.starts_with("account")
        && token
            .split(['?', '&'])
            .filter(|p| p.starts_with("action="))
            .count()
            > 1;
    let double_question = token
        .find('?')
        .is_some_and(|at| token[at..].starts_with("??"));
    let row = if outside_grammar {
        0
    } else if malformed {
        1
    } else if decodes_non_ascii {
        2
    } else if account_actions {
        4
    } else if double_question {
        5
    } else {
        return None;
    };
    Some(JUSTIFIED[row].0)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

struct Verdict {
    kept: bool,
    normal: Option<String>,
    /// The PDS's parsed permission, fields as its classes hold them.
    meaning: Value,
    error: Option<String>,
}

/// The PDS's parsed permission with its lists read as what they allow: `*` absorbs a name list,
/// `*/*` an accept list, a `type/*` the exact types it covers, `manage` an account's `read`.
fn allowed(meaning: &Value) -> Value {
    let Some(object) = meaning.as_object() else {
        return meaning.clone();
    };
    let mut out = serde_json::Map::new();
    for (field, value) in object {
        let Some(list) = value.as_array() else {
            out.insert(field.clone(), value.clone());
            continue;
        };
        let mut set: std::collections::BTreeSet<String> = list
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let any = |set: &std::collections::BTreeSet<String>, v: &str| set.contains(v);
        match field.as_str() {
            "collection" | "lxm" if any(&set, "*") => set = ["*".to_owned()].into(),
            "accept" if any(&set, "*/*") => set = ["*/*".to_owned()].into(),
            "accept" => {
                let wildcards: Vec<String> =
                    set.iter().filter(|p| p.ends_with("/*")).cloned().collect();
                set.retain(|p| {
                    p.ends_with("/*") || !wildcards.iter().any(|w| p.starts_with(&w[..w.len() - 1]))
                });
            }
            "action" if object["resource"] == "account" => {
                let strongest = if any(&set, "manage") {
                    "manage"
                } else {
                    "read"
                };
                set = [strongest.to_owned()].into();
            }
            _ => {}
        }
        out.insert(field.clone(), json!(set));
    }
    Value::Object(out)
}

fn ask_tokens(tokens: &[String]) -> Vec<Verdict> {
    let answer =
        atoauth_testkit::oracle::ask("scopes.mjs", &json!({ "tokens": tokens, "checks": [] }));
    answer["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Verdict {
            kept: v["kept"].as_bool().unwrap(),
            normal: v["normal"].as_str().map(str::to_owned),
            meaning: v["meaning"].clone(),
            error: v["error"].as_str().map(str::to_owned),
        })
        .collect()
}

/// The PDS's answers to `checks` (`{grant, resource, options}` each).
fn ask_checks(checks: &[Value]) -> Vec<bool> {
    let answer =
        atoauth_testkit::oracle::ask("scopes.mjs", &json!({ "tokens": [], "checks": checks }));
    answer["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect()
}

/// The corpus of one run, with its seed printed for replay.
fn seeded_corpus(test: &str, default_seed: u64) -> (u64, Vec<String>) {
    let seed = corpus::seed(default_seed);
    eprintln!("{test}: seed {seed:#x} (replay with ATOAUTH_DIFFERENTIAL_SEED={seed:#x})");
    (seed, corpus::corpus(seed, 9000, 4000))
}

fn report(failures: &[String], seed: u64) {
    assert!(
        failures.is_empty(),
        "{} differences (seed {seed:#x}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn scope_tokens_are_judged_as_the_pds_judges_them() {
    let (seed, tokens) = seeded_corpus("scope differential", 0x5eed_0001);
    assert!(tokens.len() >= 9000, "only {} tokens", tokens.len());
    let verdicts = ask_tokens(&tokens);

    let mut failures = Vec::new();
    let mut justified: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut both_valid = Vec::new();
    let (mut pds_failures, mut both_invalid) = (0, 0);
    for (token, pds) in tokens.iter().zip(&verdicts) {
        let ours = Permission::parse(token);
        pds_failures += usize::from(pds.error.is_some());
        match (&ours, pds.kept) {
            (Ok(permission), true) => both_valid.push((token, permission.to_string(), pds)),
            (Ok(_), false) => failures.push(format!(
                "{token:?}: atoauth accepts it, the PDS {}",
                pds.error
                    .as_deref()
                    .map_or("drops it".to_owned(), |e| format!("fails on it ({e})"))
            )),
            (Err(error), true) => match justification(token) {
                Some(row) => *justified.entry(row).or_default() += 1,
                None => failures.push(format!(
                    "{token:?}: the PDS keeps it (as {:?}), atoauth refuses it: {}",
                    pds.normal, error.reason
                )),
            },
            (Err(_), false) => both_invalid += 1,
        }
    }

    // Our canonical strings, and the PDS's own normal forms, read back by the PDS.
    let second: Vec<String> = both_valid
        .iter()
        .flat_map(|(_, canonical, pds)| [canonical.clone(), pds.normal.clone().unwrap()])
        .collect();
    let reread = ask_tokens(&second);
    let mut unstable_reference_forms = 0;
    for ((token, canonical, pds), pair) in both_valid.iter().zip(reread.chunks(2)) {
        let normal = pds.normal.as_deref().unwrap();
        // The reference's normal form is not always stable: it puts `%` and `+` back, which
        // changes the value when read again (§6.38), and it picks the named form before
        // removing duplicates (`blob?accept=a/b&accept=a/b` → `blob?accept=a/b` → `blob:a/b`).
        let renormal = pair[1].normal.as_deref();
        let reference_stable = renormal == Some(normal);
        unstable_reference_forms += usize::from(!reference_stable);
        // What matters first: the PDS reads atoauth's canonical string as it reads the token.
        let (ours_read_by_pds, token_read_by_pds) =
            (allowed(&pair[0].meaning), allowed(&pds.meaning));
        if ours_read_by_pds != token_read_by_pds {
            failures.push(format!(
                "{token:?}: atoauth writes {canonical:?}, which the PDS reads as {ours_read_by_pds}, \
                 not {token_read_by_pds}"
            ));
        }
        if canonical == normal || Some(canonical.as_str()) == renormal {
            let ours_of_theirs = Permission::parse(normal).map(|p| p.to_string());
            if reference_stable && ours_of_theirs.as_deref() != Ok(canonical.as_str()) {
                failures.push(format!(
                    "{token:?}: atoauth reads the PDS's {normal:?} as {ours_of_theirs:?}"
                ));
            }
        } else if token.to_ascii_lowercase().starts_with("blob")
            && Permission::parse(&canonical.to_ascii_lowercase()).map(|p| p.to_string())
                == Ok(normal.to_owned())
        {
            *justified.entry(JUSTIFIED[3].0).or_default() += 1;
        } else if let Some(row) = justification(normal) {
            // The PDS writes a value with a bare `%` it reads literally; atoauth escapes it.
            *justified.entry(row).or_default() += 1;
        } else if reference_stable {
            failures.push(format!(
                "{token:?}: atoauth writes {canonical:?}, the PDS {normal:?}"
            ));
        }
    }

    eprintln!(
        "scope differential: {} tokens: {} valid for both, {both_invalid} invalid for both, \
         {pds_failures} on which the PDS throws, {unstable_reference_forms} unstable reference \
         normal forms, refused by atoauth only (justified): {justified:?}",
        tokens.len(),
        both_valid.len(),
    );
    assert!(
        both_valid.len() >= 2000,
        "the corpus must exercise valid tokens"
    );
    assert!(
        pds_failures > 0,
        "the corpus must reach the PDS's HTTP 500 path (§9.47)"
    );
    report(&failures, seed);
}

/// The same question to atoauth.
type Check = Box<dyn Fn(&Permissions) -> bool>;

fn nsid(s: &str) -> Nsid {
    Nsid::new(s).unwrap()
}

/// Valid names for checks: the pool's (the PDS checks concrete names, never `*`), and some no
/// grant can name, so that only wildcards and transition scopes allow them.
fn check_nsids() -> Vec<&'static str> {
    NSIDS.0[..NSIDS.1]
        .iter()
        .copied()
        .filter(|n| *n != "*")
        .chain(["zz.unlisted.record", "chat.bsky.unlisted.method"])
        .collect()
}

/// A request as the PDS checks it, and the same question to atoauth.
fn random_check(rng: &mut Rng) -> (Value, Check) {
    let names = check_nsids();
    match rng.below(5) {
        0 => {
            let collection = rng.pick(&names);
            let action = rng.pick(&["create", "update", "delete"]);
            let ours = match action {
                "create" => RepoAction::Create,
                "update" => RepoAction::Update,
                _ => RepoAction::Delete,
            };
            let c = nsid(collection);
            (
                json!({"resource": "repo", "options": {"collection": collection, "action": action}}),
                Box::new(move |p: &Permissions| p.allows_repo(&c, ours)),
            )
        }
        1 => {
            // As the proxy header or getServiceAuth's `aud` names it: decoded, maybe bare.
            let aud: String = if rng.chance(80) {
                let value = AUDIENCES.0[1 + rng.below(AUDIENCES.0.len() - 1)];
                if rng.chance(20) {
                    value.split('#').next().unwrap().to_owned()
                } else {
                    value.to_owned()
                }
            } else {
                rng.pick(&[
                    "did:web:other.example#svc",
                    "did:web:api.bsky.app#bsky_appvieW",
                    "did:web:localhost:8443#svc",
                ])
                .to_owned()
            };
            let lxm = if rng.chance(15) {
                "*"
            } else {
                rng.pick(&names)
            };
            let check: Check = if lxm == "*" {
                let aud = aud.clone();
                Box::new(move |p: &Permissions| p.allows_service_auth(&aud, None))
            } else {
                let (method, aud) = (nsid(lxm), aud.clone());
                Box::new(move |p: &Permissions| p.allows_rpc(&method, &aud))
            };
            (
                json!({"resource": "rpc", "options": {"aud": aud, "lxm": lxm}}),
                check,
            )
        }
        2 => {
            let mime: String = if rng.chance(60) {
                let pattern = rng.pick(MIMES.0);
                pattern.replace('*', "x")
            } else {
                rng.pick(&[
                    "image/png",
                    "IMAGE/PNG",
                    "Image/png",
                    "image/png/x",
                    "image/*",
                    "*/*",
                    "image",
                    "imagepng",
                    "image/ png",
                    "unlisted/type",
                ])
                .to_owned()
            };
            (
                json!({"resource": "blob", "options": {"mime": mime}}),
                Box::new(move |p: &Permissions| p.allows_blob(&mime)),
            )
        }
        3 => {
            let attr = rng.pick(&["email", "repo", "status"]);
            let action = rng.pick(&["read", "manage"]);
            let ours_attr = match attr {
                "email" => AccountAttribute::Email,
                "repo" => AccountAttribute::Repo,
                _ => AccountAttribute::Status,
            };
            let ours_action = if action == "read" {
                AccountAction::Read
            } else {
                AccountAction::Manage
            };
            (
                json!({"resource": "account", "options": {"attr": attr, "action": action}}),
                Box::new(move |p: &Permissions| p.allows_account(ours_attr, ours_action)),
            )
        }
        _ => {
            let attr = rng.pick(&["handle", "*"]);
            let ours = if attr == "handle" {
                IdentityAttribute::Handle
            } else {
                IdentityAttribute::All
            };
            (
                json!({"resource": "identity", "options": {"attr": attr}}),
                Box::new(move |p: &Permissions| p.allows_identity(ours)),
            )
        }
    }
}

/// Tokens a PDS can grant: those it keeps from a request it accepts (not the ones outside the
/// OAuth grammar, for which it refuses the whole PAR).
fn grantable(tokens: &[String]) -> Vec<String> {
    let verdicts = ask_tokens(tokens);
    tokens
        .iter()
        .zip(&verdicts)
        .filter(|(t, v)| {
            v.kept
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        })
        .map(|(t, _)| t.clone())
        .collect()
}

/// A random grant: `atproto`, one to five kept tokens, and now and then transition scopes.
fn random_grant(rng: &mut Rng, kept: &[String]) -> String {
    let mut grant = vec!["atproto".to_owned()];
    for _ in 0..=rng.below(5) {
        grant.push(kept[rng.below(kept.len())].clone());
    }
    for transition in [
        "transition:generic",
        "transition:chat.bsky",
        "transition:email",
    ] {
        if rng.chance(8) {
            grant.push(transition.to_owned());
        }
    }
    grant.join(" ")
}

#[test]
fn granted_scopes_allow_exactly_what_the_pds_allows() {
    let (seed, tokens) = seeded_corpus("scope matching differential", 0x5eed_0002);
    let kept = grantable(&tokens);
    let mut rng = Rng(seed ^ 0x00c4_ec45);
    let mut cases = Vec::new();
    let mut checks = Vec::new();
    for _ in 0..6000 {
        let grant = random_grant(&mut rng, &kept);
        let (mut request, ours) = random_check(&mut rng);
        request["grant"] = grant.clone().into();
        cases.push(request);
        checks.push((grant, ours));
    }
    let pds = ask_checks(&cases);
    let mut failures = Vec::new();
    let mut allowed = 0;
    for (((grant, ours), case), pds) in checks.iter().zip(&cases).zip(&pds) {
        let ours = ours(&Permissions::from(&Scope::parse(grant)));
        allowed += usize::from(*pds);
        if ours != *pds {
            failures.push(format!(
                "{grant:?} {} {}: atoauth {ours}, the PDS {pds}",
                case["resource"], case["options"]
            ));
        }
    }
    eprintln!(
        "scope matching differential: {} cases from {} grantable tokens, {allowed} allowed by \
         the PDS",
        pds.len(),
        kept.len()
    );
    assert!(
        allowed >= 500 && pds.len() - allowed >= 500,
        "both answers must be exercised"
    );
    report(&failures, seed);
}

/// Every request `requested` would allow, as PDS checks (with names no grant can hold for its
/// wildcards): it is covered by a grant exactly when the PDS allows all of them.
fn implied_checks(requested: &Permission) -> Vec<Value> {
    use atoauth::scope::{Audience, NsidSet};
    let names = |set: &NsidSet, fresh: &[&str]| -> Vec<String> {
        match set {
            NsidSet::All => fresh.iter().map(|s| (*s).to_owned()).collect(),
            NsidSet::Only(set) => set.iter().map(ToString::to_string).collect(),
        }
    };
    let mut out = Vec::new();
    match requested {
        Permission::Repo(repo) => {
            for collection in names(&repo.collections, &["zz.unlisted.record"]) {
                for action in &repo.actions {
                    out.push(json!({"resource": "repo", "options": {"collection": collection, "action": action.as_str()}}));
                }
            }
        }
        Permission::Rpc(rpc) => {
            let audiences = match &rpc.audience {
                Audience::Any => vec![
                    "did:web:unlisted.example#svc".to_owned(),
                    "did:web:unlisted.example".to_owned(),
                ],
                Audience::Service(service) => vec![service.clone()],
            };
            let methods = names(
                &rpc.methods,
                &["*", "zz.unlisted.method", "chat.bsky.unlisted.method"],
            );
            for aud in &audiences {
                for lxm in &methods {
                    out.push(json!({"resource": "rpc", "options": {"aud": aud, "lxm": lxm}}));
                }
            }
        }
        Permission::Blob(blob) => {
            for pattern in &blob.accept {
                let mime = match pattern.strip_suffix('*') {
                    _ if pattern == "*/*" => "unlisted/type".to_owned(),
                    // `**/*` allows nothing: no concrete type is `*` (nothing to check).
                    Some(prefix) if prefix.ends_with('/') && prefix.contains('*') => continue,
                    Some(prefix) if prefix.ends_with('/') => format!("{prefix}unlisted-subtype"),
                    _ => pattern.clone(),
                };
                out.push(json!({"resource": "blob", "options": {"mime": mime}}));
            }
        }
        Permission::Account(account) => {
            let attr = match account.attribute {
                AccountAttribute::Email => "email",
                AccountAttribute::Repo => "repo",
                _ => "status",
            };
            out.push(json!({"resource": "account", "options": {"attr": attr, "action": "read"}}));
            if account.action == AccountAction::Manage {
                out.push(
                    json!({"resource": "account", "options": {"attr": attr, "action": "manage"}}),
                );
            }
        }
        Permission::Identity(identity) => {
            out.push(json!({"resource": "identity", "options": {"attr": "handle"}}));
            if identity.attribute == IdentityAttribute::All {
                out.push(json!({"resource": "identity", "options": {"attr": "*"}}));
            }
        }
        _ => {}
    }
    out
}

#[test]
fn a_request_is_covered_exactly_when_the_pds_allows_all_it_asks() {
    let (seed, tokens) = seeded_corpus("scope covering differential", 0x5eed_0003);
    let kept = grantable(&tokens);
    let requests: Vec<Permission> = kept
        .iter()
        .filter_map(|t| Permission::parse(t).ok())
        .filter(|p| !implied_checks(p).is_empty())
        .collect();
    let mut rng = Rng(seed ^ 0x0c0e_4e45);
    let mut pairs = Vec::new();
    let mut cases = Vec::new();
    for _ in 0..2500 {
        // Often a grant that holds the request in another spelling or a broader token.
        let mut grant = random_grant(&mut rng, &kept);
        let requested = requests[rng.below(requests.len())].clone();
        if rng.chance(30) {
            grant.push(' ');
            grant.push_str(&requested.to_string());
        }
        let implied = implied_checks(&requested);
        let range = cases.len()..cases.len() + implied.len();
        for mut check in implied {
            check["grant"] = grant.clone().into();
            cases.push(check);
        }
        pairs.push((grant, requested, range));
    }
    let pds = ask_checks(&cases);
    let mut failures = Vec::new();
    let mut covered = 0;
    for (grant, requested, range) in &pairs {
        let theirs = pds[range.clone()].iter().all(|allowed| *allowed);
        let ours = Permissions::from(&Scope::parse(grant)).covers(requested);
        covered += usize::from(theirs);
        if ours != theirs {
            failures.push(format!(
                "{grant:?} requested {requested}: atoauth says covered={ours}, the PDS allows \
                 {} of its {} requests",
                pds[range.clone()].iter().filter(|a| **a).count(),
                range.len()
            ));
        }
    }
    eprintln!(
        "scope covering differential: {} requests against grants, {covered} covered by the PDS",
        pairs.len()
    );
    assert!(
        covered >= 300 && pairs.len() - covered >= 300,
        "both answers must be exercised"
    );
    report(&failures, seed);
}
