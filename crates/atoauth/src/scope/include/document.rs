//! A `permission-set` lexicon document checked as the official PDS's lexicon resolver checks it
//! (`lexiconDocumentSchema`, which fails the whole authorization when a set does not pass):
//! `lexicon` is 1, `id` an NSID, `revision` an integer, `description` a string; the main def a
//! `permission-set` whose `permissions` are `permission` objects with a non-empty `resource` and
//! parameter values only (booleans, integers, strings, or arrays of one of those); `title`,
//! `detail` strings and `title:lang`, `detail:lang` maps from language tags to strings. Other
//! defs must be of a type a lexicon may name (their inner schemas are not checked here).

use serde_json::{Map, Value};

use crate::syntax::{Nsid, is_language_tag};

/// The def types allowed beside `main`.
const NAMED_DEF_TYPES: &[&str] = &[
    "boolean", "integer", "string", "bytes", "cid-link", "blob", "array", "object", "token",
];

/// The main def of a valid permission-set document, or why the PDS refuses the document.
pub(super) fn permission_set_main(document: &Value) -> Result<&Map<String, Value>, &'static str> {
    let top = document.as_object().ok_or("not a lexicon document")?;
    if !top.get("lexicon").is_some_and(|v| v.as_f64() == Some(1.0)) {
        return Err("the lexicon version is not 1");
    }
    if !top
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(Nsid::is_valid)
    {
        return Err("the lexicon id is not an NSID");
    }
    if top.get("revision").is_some_and(|v| !is_integer(v)) {
        return Err("the lexicon revision is not an integer");
    }
    optional_string(top, "description")?;
    let defs = top
        .get("defs")
        .and_then(Value::as_object)
        .ok_or("the lexicon has no defs")?;
    for (name, def) in defs {
        if name == "main" {
            continue;
        }
        let named = def
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| NAMED_DEF_TYPES.contains(&t));
        if name.is_empty() || !named {
            return Err("a def beside main has no type a lexicon may name");
        }
    }
    let main = defs
        .get("main")
        .and_then(Value::as_object)
        .ok_or("the lexicon has no main def")?;
    if main.get("type").and_then(Value::as_str) != Some("permission-set") {
        return Err("the main def is not a permission-set");
    }
    let permissions = main
        .get("permissions")
        .and_then(Value::as_array)
        .ok_or("the permission set has no permissions list")?;
    if !permissions.iter().all(is_permission) {
        return Err("a member is not a permission of parameter values");
    }
    for text in ["title", "detail", "description"] {
        optional_string(main, text)?;
    }
    for localized in ["title:lang", "detail:lang"] {
        if let Some(map) = main.get(localized) {
            let ok = map.as_object().is_some_and(|map| {
                map.iter()
                    .all(|(tag, text)| is_language_tag(tag) && text.is_string())
            });
            if !ok {
                return Err("a localized title or detail is not a map of language tags to text");
            }
        }
    }
    Ok(main)
}

fn optional_string(object: &Map<String, Value>, key: &str) -> Result<(), &'static str> {
    match object.get(key) {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err("a description, title or detail is not a string"),
    }
}

/// A JSON number that JavaScript holds as a safe integer (`1.0` is one).
fn is_integer(value: &Value) -> bool {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    value
        .as_f64()
        .is_some_and(|n| n.fract() == 0.0 && n.abs() <= SAFE)
}

/// `{type: "permission", resource: "<non-empty>", …}` whose other members are parameter values.
fn is_permission(member: &Value) -> bool {
    let Some(member) = member.as_object() else {
        return false;
    };
    let typed = member.get("type").and_then(Value::as_str) == Some("permission");
    let resource = member
        .get("resource")
        .and_then(Value::as_str)
        .is_some_and(|r| !r.is_empty());
    typed
        && resource
        && member
            .iter()
            .filter(|(key, _)| *key != "type" && *key != "resource")
            .all(|(_, value)| is_parameter(value))
}

/// A lexicon parameter value: a boolean, an integer, a string, or an array of one of those.
fn is_parameter(value: &Value) -> bool {
    match value {
        Value::Bool(_) | Value::String(_) => true,
        Value::Number(_) => is_integer(value),
        Value::Array(items) => {
            items.iter().all(Value::is_boolean)
                || items.iter().all(Value::is_string)
                || items.iter().all(is_integer)
        }
        _ => false,
    }
}
