//! Running the `atoauth` binary as a child process, with a clean `ATOAUTH_*` environment.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

pub(crate) mod login;
pub(crate) mod serve;

/// `atoauth` with no `ATOAUTH_*`, `NO_COLOR` or XDG variables inherited from the developer's shell.
pub(crate) fn atoauth() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_atoauth"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("ATOAUTH_") || name == "XDG_DATA_HOME" || name == "NO_COLOR" {
            command.env_remove(name.as_ref());
        }
    }
    command
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(output)))
}

/// The shape of a JSON value: the same keys, with each leaf replaced by its type name, so a
/// snapshot pins the schema and not the (changing) values.
pub(crate) fn shape(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

/// Compares `value` with `tests/snapshots/<name>.json`; `ATOAUTH_UPDATE_SNAPSHOTS=1` rewrites it.
pub(crate) fn assert_snapshot(name: &str, value: &serde_json::Value) {
    let actual = serde_json::to_string_pretty(value).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"));
    if std::env::var_os("ATOAUTH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with ATOAUTH_UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "the --json schema of {name} changed: review and update the snapshot"
    );
}
