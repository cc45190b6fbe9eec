//! The browser client built for tests: `atoauth-browser` compiled to wasm32 with the machine's
//! wasm toolchain (Debian's `rustc-web` with `-Zbuild-std`, `wasm-ld`, in its own target dir),
//! turned into an ES module by `wasm-bindgen --target web`, and placed beside `examples/spa`'s
//! files in a directory `atoauth serve --spa` can serve ([`serve`]); [`page`] drives it in
//! Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod page;
mod served;

pub use served::{Served, atoauth_binary, serve};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The repository root.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(command: &mut Command, what: &str) -> Result<(), Error> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: cannot start it ({e})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into())
    }
}

/// `cargo <args> --target wasm32-unknown-unknown` with the wasm toolchain: Debian's `rustc-web`
/// (`ATOAUTH_WASM_RUSTC` to override), `-Zbuild-std`, `wasm-ld` (`ATOAUTH_WASM_LINKER`), the
/// target dir `target/wasm`, and `wasm-bindgen-test-runner` in headless Chromium as the runner.
/// Nothing of the host build's configuration leaks in.
#[must_use]
pub fn wasm_cargo(args: &[&str]) -> Command {
    let root = repository();
    let rustc = std::env::var_os("ATOAUTH_WASM_RUSTC").unwrap_or_else(|| "/usr/bin/rustc".into());
    let linker = std::env::var_os("ATOAUTH_WASM_LINKER")
        .unwrap_or_else(|| "/usr/lib/llvm-22/bin/wasm-ld".into());
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(&root)
        .args(args)
        .args([
            "--target",
            "wasm32-unknown-unknown",
            "-Zbuild-std=std,panic_abort",
        ])
        .arg("--target-dir")
        .arg(root.join("target/wasm"))
        .env("RUSTC", rustc)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker)
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        )
        .env("CHROMEDRIVER", "/usr/bin/chromedriver");
    for name in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_RUSTC",
    ] {
        cargo.env_remove(name);
    }
    cargo
}

/// Builds the browser client and assembles the example app into `out` (`index.html`,
/// `app.js`, `style.css`, `pkg/`); `config` becomes its `config.json`.
///
/// # Errors
/// When the wasm toolchain or `wasm-bindgen` is missing (`.ci/run` installs them), or a step
/// fails.
pub fn build(out: &Path, config: &serde_json::Value) -> Result<(), Error> {
    let root = repository();
    let target_dir = root.join("target/wasm");
    let mut cargo = wasm_cargo(&["build", "-p", "atoauth-browser"]);
    run(
        &mut cargo,
        "the wasm build (apt-get install rustc-web rust-web-src lld-22)",
    )?;
    let wasm = target_dir.join("wasm32-unknown-unknown/debug/atoauth_browser.wasm");
    std::fs::create_dir_all(out)?;
    run(
        Command::new("wasm-bindgen")
            .args(["--target", "web", "--out-dir"])
            .arg(out.join("pkg"))
            .arg(&wasm),
        "wasm-bindgen (cargo install wasm-bindgen-cli --version 0.2.130)",
    )?;
    for file in ["index.html", "app.js", "style.css"] {
        std::fs::copy(root.join("examples/spa").join(file), out.join(file))?;
    }
    std::fs::write(out.join("config.json"), serde_json::to_vec_pretty(config)?)?;
    Ok(())
}
