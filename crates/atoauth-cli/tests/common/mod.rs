//! Running the `atoauth` binary as a child process, with a clean `ATOAUTH_*` environment.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

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
