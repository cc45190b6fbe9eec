//! Permission sets read as the PDS reads them (permission spec §5): generated `permission-set`
//! lexicon documents, each validated by the PDS's lexicon resolver (`lexiconDocumentSchema`)
//! and expanded by its `IncludeScope.toScopes`, must be accepted by
//! `PermissionSet::from_lexicon` exactly when the PDS accepts them, and expand to the same
//! permissions for the same `include:` token.

use std::collections::BTreeSet;

use atoauth::scope::{Permission, PermissionSet};
use serde_json::{Map, Value, json};

use super::corpus::{self, AUDIENCES, Rng};

/// A set's NSID and the authority group its members must stay under (§5.29).
const SET_IDS: &[&str] = &[
    "app.example.authFull",
    "com.example.calendar.auth",
    "App.Example.authFull",
    "com.example.authBasics",
];

/// Names relative to `id`'s group: inside, deeper, beside, above, elsewhere, not at a dot, a
/// wildcard, not an NSID.
fn member_name(rng: &mut Rng, id: &str) -> Value {
    let group = id.rsplit_once('.').unwrap().0;
    let parent = group.rsplit_once('.').unwrap().0;
    let name = match rng.below(22) {
        0..=5 => format!("{group}.post"),
        6..=8 => format!("{group}.getThing"),
        9..=11 => format!("{group}.feed.getThing"),
        12 => format!("{group}.sub.deeper.thing"),
        13 => format!("{parent}.other.thing"),
        14 => group.to_owned(),
        15 => "com.other.thing".to_owned(),
        16 => format!("{group}x.thing"),
        17 => "*".to_owned(),
        18 => format!("{}.post", group.to_ascii_lowercase()),
        19 => format!("{group}.bad-name"),
        20 => format!("{group}.Post"),
        _ => return json!(5),
    };
    Value::String(name)
}

fn names(rng: &mut Rng, id: &str) -> Value {
    match rng.below(12) {
        0 => json!([]),
        1 => member_name(rng, id),
        _ => Value::Array((0..=rng.below(2)).map(|_| member_name(rng, id)).collect()),
    }
}

/// One member permission, mostly well-formed, sometimes with what the PDS drops or refuses.
fn member(rng: &mut Rng, id: &str) -> Value {
    let mut m = Map::new();
    match rng.below(40) {
        0 => {}
        1 => {
            m.insert("type".into(), json!("perm"));
        }
        _ => {
            m.insert("type".into(), json!("permission"));
        }
    }
    let resource = rng.pick(&[
        "repo", "repo", "repo", "rpc", "rpc", "rpc", "rpc", "blob", "account", "identity",
        "include", "", "Repo",
    ]);
    if rng.chance(97) {
        m.insert("resource".into(), json!(resource));
    }
    match resource {
        "repo" | "Repo" => {
            m.insert("collection".into(), names(rng, id));
            if rng.chance(40) {
                let actions: Vec<Value> = (0..rng.below(4))
                    .map(|_| json!(rng.pick(&["create", "update", "delete", "read", "Create"])))
                    .collect();
                m.insert(
                    "action".into(),
                    if rng.chance(10) {
                        json!("create")
                    } else {
                        Value::Array(actions)
                    },
                );
            }
        }
        "rpc" => {
            m.insert("lxm".into(), names(rng, id));
            match rng.below(8) {
                0 | 1 => {
                    m.insert("aud".into(), json!("*"));
                }
                2 => {
                    m.insert("aud".into(), json!("did:web:api.example.com#svc"));
                }
                3 => {
                    m.insert("aud".into(), json!(["*"]));
                }
                _ => {}
            }
            match rng.below(8) {
                0..=3 => {
                    m.insert("inheritAud".into(), json!(true));
                }
                4 => {
                    m.insert("inheritAud".into(), json!(false));
                }
                5 => {
                    m.insert("inheritAud".into(), json!("true"));
                }
                _ => {}
            }
        }
        "blob" => {
            m.insert("accept".into(), json!(["image/*"]));
        }
        "account" => {
            m.insert("attr".into(), json!("email"));
        }
        "identity" => {
            m.insert("attr".into(), json!("handle"));
        }
        _ => {}
    }
    if rng.chance(5) {
        let (key, value) = match rng.below(7) {
            0 => ("description", json!("why")),
            1 => ("foo", json!(1)),
            2 => ("foo", json!(1.5)),
            3 => ("foo", Value::Null),
            4 => ("foo", json!({"a": 1})),
            5 => ("foo", json!([1, "a"])),
            _ => ("foo", json!([true, false])),
        };
        m.insert(key.into(), value);
    }
    if rng.chance(1) {
        return json!("repo");
    }
    Value::Object(m)
}

/// A lexicon document around a `permission-set` main def, with the top-level and main-def
/// members the schema checks now and then wrong.
fn document(rng: &mut Rng, id: &str) -> Value {
    let permissions: Vec<Value> = (0..rng.below(6)).map(|_| member(rng, id)).collect();
    let mut main = json!({"type": "permission-set", "permissions": permissions});
    let mut doc = json!({"lexicon": 1, "id": id, "defs": {}});
    let mut edit = |rng: &mut Rng| match rng.below(22) {
        0 => main["title"] = json!("Full access"),
        1 => main["title"] = json!(5),
        2 => main["title:lang"] = json!({"en": "Full", "pt-BR": "Total"}),
        3 => main["title:lang"] = json!({"EN": "Full"}),
        4 => main["title:lang"] = json!({"english": "Full"}),
        5 => main["detail:lang"] = json!({"zh-Hant-TW": "x", "x-private": "y", "i-klingon": "z"}),
        6 => main["detail:lang"] = json!({"en": 5}),
        7 => main["detail"] = Value::Null,
        8 => main["description"] = json!(1),
        9 => main["extra"] = json!(1),
        10 => main["type"] = json!("query"),
        11 => main["permissions"] = json!({}),
        12 => {
            main.as_object_mut().unwrap().remove("permissions");
        }
        13 => doc["lexicon"] = json!(2),
        14 => doc["revision"] = json!(3),
        15 => doc["revision"] = json!(1.5),
        16 => doc["description"] = json!(false),
        17 => doc["foo"] = json!(1),
        18 => doc["defs"]["other"] = json!({"type": "token"}),
        19 => doc["defs"]["other"] = json!({"type": "permission-set", "permissions": []}),
        20 => main["detail:lang"] = json!({"en-US-x-twain": "x", "de-1996-1996": "y"}),
        _ => main["title:lang"] = json!({"sgn-BE-FR": "x", "en-a-bbb-a-ccc": "y"}),
    };
    if rng.chance(50) {
        for _ in 0..=rng.below(2) {
            edit(rng);
        }
    }
    doc["defs"]["main"] = main;
    doc
}

/// `value` encoded for a query: everything but letters, digits and `:/._-~`.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b":/._-~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn permission_sets_are_read_and_expanded_as_the_pds_reads_them() {
    let seed = corpus::seed(0x5eed_0004);
    eprintln!("permission set differential: seed {seed:#x}");
    let mut rng = Rng(seed);
    let mut cases = Vec::new();
    for _ in 0..5000 {
        let id = rng.pick(SET_IDS);
        let token = if rng.chance(60) {
            let aud = AUDIENCES.0[1 + rng.below(AUDIENCES.1 - 1)];
            format!("include:{id}?aud={}", query_value(aud))
        } else {
            format!("include:{id}")
        };
        cases.push(json!({"token": token, "document": document(&mut rng, id)}));
    }
    let answer = atoauth_testkit::oracle::ask("scopes.mjs", &json!({ "sets": cases }));
    let verdicts = answer["sets"].as_array().unwrap();

    let mut failures = Vec::new();
    let (mut valid, mut expanded_members) = (0, 0);
    for (case, pds) in cases.iter().zip(verdicts) {
        let token = case["token"].as_str().unwrap();
        let document = &case["document"];
        let ours = PermissionSet::from_lexicon(document);
        let pds_valid = pds["valid"].as_bool().unwrap();
        valid += usize::from(pds_valid);
        let set = match (ours, pds_valid) {
            (Ok(set), true) => set,
            (Err(_), false) => continue,
            (Ok(_), false) => {
                failures.push(format!("atoauth reads it, the PDS refuses it: {document}"));
                continue;
            }
            (Err(error), true) => {
                failures.push(format!(
                    "the PDS reads it, atoauth refuses it ({error}): {document}"
                ));
                continue;
            }
        };
        let Ok(Permission::Include(include)) = Permission::parse(token) else {
            panic!("{token} is an include token");
        };
        let ours: BTreeSet<Permission> = set.expand(&include).into_iter().collect();
        let theirs: BTreeSet<Permission> = pds["scopes"]
            .as_array()
            .unwrap()
            .iter()
            // What the PDS writes into the token's scope, read as the PDS reads that scope: a
            // member it writes in a form that no longer parses grants nothing (§6.38).
            .filter_map(|s| Permission::parse_as_granted(s.as_str().unwrap()).ok())
            .collect();
        expanded_members += theirs.len();
        if ours != theirs {
            let show = |set: &BTreeSet<Permission>| {
                set.iter().map(ToString::to_string).collect::<Vec<_>>()
            };
            failures.push(format!(
                "{token}: atoauth expands to {:?}, the PDS to {:?}: {document}",
                show(&ours),
                show(&theirs)
            ));
        }
    }
    eprintln!(
        "permission set differential: {} documents, {valid} valid for the PDS, {expanded_members} \
         permissions granted through them",
        cases.len()
    );
    assert!(valid >= 500 && cases.len() - valid >= 500);
    assert!(expanded_members >= 300);
    super::report(&failures, seed);
}
