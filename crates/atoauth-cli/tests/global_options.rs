//! The global options: flags, their `ATOAUTH_*` variables and defaults, before or after the
//! subcommand (tested through child processes: `set_var` is unsafe in edition 2024).

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_snapshot, atoauth, json, shape, stderr, stdout};

#[test]
fn version_and_help() {
    let version = atoauth().arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        stdout(&version).trim(),
        concat!("atoauth ", env!("CARGO_PKG_VERSION"))
    );
    let help = atoauth().arg("--help").output().unwrap();
    assert!(help.status.success());
    for option in [
        "--data-dir",
        "--plc-url",
        "--handle-resolver",
        "--insecure-dev",
        "--json",
        "--verbose",
        "ATOAUTH_PLC_URL",
    ] {
        assert!(stdout(&help).contains(option), "help lists {option}");
    }
}

#[test]
fn defaults() {
    let home = tempfile::tempdir().unwrap();
    let output = atoauth()
        .env("HOME", home.path())
        .args(["config", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let config = json(&output);
    assert_snapshot("config", &shape(&config));
    assert_eq!(config["plc_url"], "https://plc.directory/");
    assert_eq!(config["handle_resolver"], serde_json::Value::Null);
    assert_eq!(config["insecure_dev"], false);
    assert_eq!(config["verbose"], false);
    assert_eq!(
        config["data_dir"],
        home.path().join(".local/share/atoauth").to_str().unwrap()
    );
    // Not a terminal: no colour, no spinners.
    assert_eq!(config["decorate"], false);
    assert!(
        stderr(&output).is_empty(),
        "no warning without --insecure-dev"
    );
}

#[test]
fn xdg_data_home_is_honoured() {
    let xdg = tempfile::tempdir().unwrap();
    let output = atoauth()
        .env("XDG_DATA_HOME", xdg.path())
        .args(["--json", "config"])
        .output()
        .unwrap();
    assert_eq!(
        json(&output)["data_dir"],
        xdg.path().join("atoauth").to_str().unwrap()
    );
}

#[test]
fn every_option_from_its_environment_variable() {
    let output = atoauth()
        .env("ATOAUTH_DATA_DIR", "/tmp/atoauth-env-test")
        .env("ATOAUTH_PLC_URL", "http://localhost:2582")
        .env("ATOAUTH_HANDLE_RESOLVER", "http://localhost:2583")
        .env("ATOAUTH_INSECURE_DEV", "1")
        .env("ATOAUTH_JSON", "true")
        .env("ATOAUTH_VERBOSE", "yes")
        .arg("config")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let config = json(&output);
    assert_eq!(config["data_dir"], "/tmp/atoauth-env-test");
    assert_eq!(config["plc_url"], "http://localhost:2582/");
    assert_eq!(config["handle_resolver"], "http://localhost:2583/");
    assert_eq!(config["insecure_dev"], true);
    assert_eq!(config["verbose"], true);
    assert!(stderr(&output).contains("warning: --insecure-dev"));
}

#[test]
fn flags_before_the_subcommand_override_the_environment() {
    let output = atoauth()
        .env("ATOAUTH_PLC_URL", "http://localhost:1")
        .env("ATOAUTH_INSECURE_DEV", "0")
        .args([
            "--plc-url",
            "https://plc.example.com",
            "--data-dir",
            "/tmp/x",
            "--json",
            "config",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let config = json(&output);
    assert_eq!(config["plc_url"], "https://plc.example.com/");
    assert_eq!(config["data_dir"], "/tmp/x");
    assert_eq!(config["insecure_dev"], false);
}

#[test]
fn a_bad_value_is_a_usage_error_with_one_clear_line() {
    let output = atoauth()
        .args(["--plc-url", "not a url", "config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("error: invalid value 'not a url' for '--plc-url"));
    let output = atoauth()
        .env("ATOAUTH_INSECURE_DEV", "maybe")
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn every_command_has_a_description_and_examples() {
    let output = atoauth().arg("--help").output().unwrap();
    let help = stdout(&output);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .collect();
    assert!(commands.len() >= 14, "{help}");
    for line in &commands {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        assert!(words.next().is_some(), "`{name}` has no description");
        if !matches!(
            name,
            "help" | "config" | "scope" | "client-metadata" | "refresh" | "sessions"
        ) {
            let sub = atoauth().args([name, "--help"]).output().unwrap();
            assert!(
                stdout(&sub).contains("Example"),
                "`{name} --help` has no example"
            );
        }
    }
}
