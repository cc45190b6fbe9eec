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
//! Then random grants (of tokens both accept) are checked against random requests with the
//! PDS's `ScopePermissionsTransition`: every answer must be the same.
// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use atoauth::scope::{
    AccountAction, AccountAttribute, IdentityAttribute, Permission, Permissions, RepoAction, Scope,
};
use atoauth::syntax::Nsid;
use serde_json::{Value, json};

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
    let row = if outside_grammar {
        0
    } else if malformed {
        1
    } else if decodes_non_ascii {
        2
    } else if account_actions {
        4
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

/// SplitMix64: a small, seeded, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const NSIDS: (&[&str], usize) = (
    &[
        "app.bsky.feed.post",
        "app.bsky.feed.like",
        "app.bsky.actor.getProfile",
        "com.example.foo",
        "com.example.fooBar",
        "chat.bsky.convo.sendMessage",
        "app.example.authFull",
        "a.b.c",
        "*",
        "app.bsky.*",
        "com.example",
        "app.bsky.feed.post.",
        "app.bsky.feed.3post",
        "app..bsky.post",
        "-app.bsky.post",
    ],
    9,
);
const AUDIENCES: (&[&str], usize) = (
    &[
        "*",
        "did:web:api.bsky.app#bsky_appview",
        "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto_labeler",
        "did:web:localhost%3A8443#svc",
        "did:web:localhost#svc",
        "did:web:example.com%3A8443#svc",
        "did:web:api.bsky.app",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme#svc",
        "did:plc:111#x",
        "did:web:x.com#a:b@c/d?e",
        "did:web:x.com#a!$'()*+,;=~",
        "did:web:x.com#",
        "did:web:x.com#a#b",
        "did:web:x.com:path#svc",
        "did:web:localhost%3a8443#svc",
        "did:web:1.2.3.999#svc",
        "did:foo:bar#x",
    ],
    6,
);
const MIMES: (&[&str], usize) = (
    &[
        "*/*",
        "image/*",
        "image/png",
        "IMAGE/PNG",
        "Image/*",
        "video/mp4",
        "text/plain",
        "application/vnd.api+json",
        "*/png",
        "*/**",
        "image",
        "image/",
        "/png",
        "image/png/x",
        "a/b*",
        "**/*",
    ],
    8,
);
const REPO_ACTIONS: (&[&str], usize) = (&["create", "update", "delete", "read", "Create", "*"], 3);
const ACCOUNT_ATTRS: (&[&str], usize) = (&["email", "repo", "status", "phone", "*"], 3);
const ACCOUNT_ACTIONS: (&[&str], usize) = (&["read", "manage", "write"], 2);
const IDENTITY_ATTRS: (&[&str], usize) = (&["handle", "*", "email"], 2);

/// A value as it may be written in a token: raw, or with some characters percent-encoded.
fn spell(rng: &mut Rng, value: &str) -> String {
    let encode = |s: &str, all: bool, lower: bool| -> String {
        s.bytes()
            .map(|b| {
                let special = !b.is_ascii_alphanumeric() && (all || b"#%+&=?: ".contains(&b));
                match (special, lower) {
                    (false, _) => (b as char).to_string(),
                    (true, false) => format!("%{b:02X}"),
                    (true, true) => format!("%{b:02x}"),
                }
            })
            .collect()
    };
    match rng.below(10) {
        0..=5 => value.to_owned(),
        6 | 7 => encode(value, false, false),
        8 => encode(value, true, false),
        _ => encode(value, true, true),
    }
}

/// `resource` with its positional parameter `name` written positionally, by name, both, or not
/// at all, plus other named parameters.
fn token(
    rng: &mut Rng,
    resource: &str,
    name: &str,
    values: &[String],
    rest: &[(&str, String)],
) -> String {
    let mut params: Vec<String> = Vec::new();
    let mut head = resource.to_owned();
    match (rng.below(20), values) {
        (_, []) => {}
        (0..=11, [one]) => head = format!("{resource}:{one}"),
        (12, [first, others @ ..]) => {
            head = format!("{resource}:{first}");
            params.extend(others.iter().map(|v| format!("{name}={v}")));
        }
        (13, _) => head = format!("{resource}:"),
        _ => params.extend(values.iter().map(|v| format!("{name}={v}"))),
    }
    params.extend(rest.iter().map(|(n, v)| format!("{n}={v}")));
    if rng.chance(3) {
        params.push(format!(
            "{}=x",
            rng.pick(&["extra", "Action", "aud", "lxm", ""])
        ));
    }
    if rng.chance(20) {
        params.reverse();
    }
    match (params.is_empty(), rng.chance(5)) {
        (true, true) => format!("{head}?"),
        (true, false) => head,
        (false, _) => format!("{head}?{}", params.join("&")),
    }
}

fn some(rng: &mut Rng, pool: (&[&str], usize), max: usize) -> Vec<String> {
    let n = rng.below(max) + 1;
    (0..n).map(|_| spelled(rng, pool)).collect()
}

/// A value from `pool` (its first `good` entries are valid values, picked most of the time),
/// spelled in one of the ways [`spell`] knows.
fn spelled(rng: &mut Rng, (pool, good): (&[&str], usize)) -> String {
    let value = if rng.chance(85) {
        pool[rng.below(good)]
    } else {
        pool[good + rng.below(pool.len() - good)]
    };
    spell(rng, value)
}

fn grammar_token(rng: &mut Rng) -> String {
    match rng.below(16) {
        0 => rng
            .pick(&[
                "atproto",
                "transition:generic",
                "transition:chat.bsky",
                "transition:email",
                "transition:foo",
                "atproto:x",
                "Repo:a.b.c",
                "foo:bar",
            ])
            .to_owned(),
        1..=3 => {
            let collections = some(rng, NSIDS, 3);
            let actions: Vec<(&str, String)> = (0..rng.below(4))
                .map(|_| ("action", spelled(rng, REPO_ACTIONS)))
                .collect();
            token(rng, "repo", "collection", &collections, &actions)
        }
        4..=6 => {
            let methods = some(rng, NSIDS, 3);
            let aud: Vec<(&str, String)> = (0..[1, 1, 1, 0, 2][rng.below(5)])
                .map(|_| ("aud", spelled(rng, AUDIENCES)))
                .collect();
            token(rng, "rpc", "lxm", &methods, &aud)
        }
        7..=9 => {
            let accept = some(rng, MIMES, 3);
            token(rng, "blob", "accept", &accept, &[])
        }
        10 | 11 => {
            let attr = some(rng, ACCOUNT_ATTRS, 1);
            let actions: Vec<(&str, String)> = (0..[0, 1, 1, 2][rng.below(4)])
                .map(|_| ("action", spelled(rng, ACCOUNT_ACTIONS)))
                .collect();
            token(rng, "account", "attr", &attr, &actions)
        }
        12 => {
            let attr = some(rng, IDENTITY_ATTRS, 1);
            token(rng, "identity", "attr", &attr, &[])
        }
        _ => {
            let nsid = some(rng, NSIDS, 1);
            let aud: Vec<(&str, String)> = (0..[0, 1, 1][rng.below(3)])
                .map(|_| ("aud", spelled(rng, AUDIENCES)))
                .collect();
            token(rng, "include", "nsid", &nsid, &aud)
        }
    }
}

/// One or two random edits with the characters the grammar cares about.
fn mutate(rng: &mut Rng, token: &str) -> String {
    const CHARS: &[&str] = &[
        "%", "%2", "%25", "%3A", "%E0%A4%A", "%FF", ":", "?", "&", "=", "#", "+", "*", "/", ".",
        "\"", "\\", "é", "A", "-",
    ];
    let mut chars: Vec<String> = token.chars().map(String::from).collect();
    for _ in 0..=rng.below(2) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 => chars.insert(at, rng.pick(CHARS).to_owned()),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = rng.pick(CHARS).to_owned(),
            _ => chars.push(rng.pick(CHARS).to_owned()),
        }
    }
    chars.concat()
}

fn vector_tokens() -> Vec<String> {
    [
        "permission_scopes_valid.txt",
        "permission_scopes_invalid.txt",
    ]
    .iter()
    .flat_map(|file| {
        let path = format!("{}/testdata/scopes/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path)
            .unwrap()
            .split('\n')
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains(' '))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    })
    .collect()
}

fn corpus() -> Vec<String> {
    let mut rng = Rng(0x5eed_0001);
    let mut tokens = vector_tokens();
    for _ in 0..2600 {
        tokens.push(grammar_token(&mut rng));
    }
    for _ in 0..1800 {
        let base = grammar_token(&mut rng);
        tokens.push(mutate(&mut rng, &base));
    }
    tokens.retain(|t| !t.is_empty() && !t.contains(' '));
    tokens.sort();
    tokens.dedup();
    tokens
}

struct Verdict {
    kept: bool,
    normal: Option<String>,
    error: Option<String>,
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
            error: v["error"].as_str().map(str::to_owned),
        })
        .collect()
}

#[test]
fn scope_tokens_are_judged_as_the_pds_judges_them() {
    let tokens = corpus();
    assert!(tokens.len() >= 3000, "only {} tokens", tokens.len());
    let verdicts = ask_tokens(&tokens);

    let mut failures = Vec::new();
    let mut justified: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut both_valid = Vec::new();
    let mut pds_failures = 0;
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
            (Err(_), false) => {}
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
        let ours_read_by_pds = pair[0].normal.as_deref();
        if ours_read_by_pds != Some(normal) && ours_read_by_pds != renormal {
            failures.push(format!(
                "{token:?}: atoauth writes {canonical:?}, which the PDS reads as {ours_read_by_pds:?}, \
                 not {normal:?}"
            ));
        }
        if canonical == normal || Some(canonical.as_str()) == renormal {
            let ours_of_theirs = Permission::parse(normal).map(|p| p.to_string());
            if reference_stable && ours_of_theirs.as_deref() != Ok(canonical.as_str()) {
                failures.push(format!(
                    "{token:?}: atoauth reads the PDS's {normal:?} as {ours_of_theirs:?}"
                ));
            }
        } else if token.starts_with("blob")
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
        "scope differential: {} tokens, {} valid for both, {pds_failures} on which the PDS throws, \
         {unstable_reference_forms} unstable reference normal forms, justified: {justified:?}",
        tokens.len(),
        both_valid.len(),
    );
    assert!(
        both_valid.len() >= 800,
        "the corpus must exercise valid tokens"
    );
    assert!(
        pds_failures > 0,
        "the corpus must reach the PDS's HTTP 500 path (§9.47)"
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The same question to atoauth.
type Check = Box<dyn Fn(&Permissions) -> bool>;

/// A request as the PDS checks it, and the same question to atoauth.
fn random_check(rng: &mut Rng) -> (Value, Check) {
    let nsid = |s: &str| Nsid::new(s).unwrap();
    // The pool's valid names, without `*` (the PDS checks concrete collections).
    let valid_nsids: Vec<&str> = NSIDS.0[..NSIDS.1]
        .iter()
        .copied()
        .filter(|n| *n != "*")
        .collect();
    match rng.below(5) {
        0 => {
            let collection = rng.pick(&valid_nsids);
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
            let aud = rng.pick(&[
                "did:web:api.bsky.app#bsky_appview",
                "did:web:api.bsky.app",
                "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto_labeler",
                "did:web:localhost%3A8443#svc",
                "did:web:x.com#a:b@c/d?e",
                "did:web:other.example#svc",
            ]);
            let lxm = rng.pick(&[
                "*",
                "app.bsky.actor.getProfile",
                "chat.bsky.convo.sendMessage",
                "com.example.foo",
                "a.b.c",
            ]);
            let check: Check = if lxm == "*" {
                Box::new(move |p: &Permissions| p.allows_service_auth(aud, None))
            } else {
                let method = nsid(lxm);
                Box::new(move |p: &Permissions| p.allows_rpc(&method, aud))
            };
            (
                json!({"resource": "rpc", "options": {"aud": aud, "lxm": lxm}}),
                check,
            )
        }
        2 => {
            let mime = rng.pick(&[
                "image/png",
                "IMAGE/PNG",
                "Image/png",
                "video/mp4",
                "text/plain",
                "application/vnd.api+json",
                "image/png/x",
                "image/*",
                "image",
                "imagepng",
            ]);
            (
                json!({"resource": "blob", "options": {"mime": mime}}),
                Box::new(move |p: &Permissions| p.allows_blob(mime)),
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

#[test]
fn granted_scopes_allow_exactly_what_the_pds_allows() {
    // Grants drawn from tokens both sides accept, with the transition scopes now and then.
    let tokens = corpus();
    let verdicts = ask_tokens(&tokens);
    let valid: Vec<&str> = tokens
        .iter()
        .zip(&verdicts)
        .filter(|(t, v)| v.kept && Permission::parse(t).is_ok())
        .map(|(t, _)| t.as_str())
        .collect();
    let mut rng = Rng(0x5eed_0002);
    let mut cases = Vec::new();
    let mut checks = Vec::new();
    for _ in 0..1500 {
        let mut grant = vec!["atproto"];
        for _ in 0..=rng.below(4) {
            grant.push(valid[rng.below(valid.len())]);
        }
        if rng.chance(15) {
            grant.push(rng.pick(&[
                "transition:generic",
                "transition:chat.bsky",
                "transition:email",
            ]));
        }
        let grant = grant.join(" ");
        let (mut request, ours) = random_check(&mut rng);
        request["grant"] = grant.clone().into();
        cases.push(request);
        checks.push((grant, ours));
    }
    let answer =
        atoauth_testkit::oracle::ask("scopes.mjs", &json!({ "tokens": [], "checks": cases }));
    let pds: Vec<bool> = answer["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    let mut failures = Vec::new();
    let mut allowed = 0;
    for (((grant, ours), case), pds) in checks.iter().zip(&cases).zip(&pds) {
        let ours = ours(&Permissions::from(&Scope::parse(grant)));
        allowed += usize::from(*pds);
        if ours != *pds {
            failures.push(format!(
                "{grant:?} {}: atoauth {ours}, the PDS {pds}",
                case["options"]
            ));
        }
    }
    eprintln!(
        "scope matching differential: {} cases, {allowed} allowed by the PDS",
        pds.len()
    );
    assert!(
        allowed >= 100 && pds.len() - allowed >= 100,
        "both answers must be exercised"
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
