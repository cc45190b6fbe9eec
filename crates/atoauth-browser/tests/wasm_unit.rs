//! Runs the browser crate's unit tests (`tests/web.rs`: WebCrypto keys, IndexedDB stores, Web
//! Locks, the fetch client's policy) inside headless Chromium under wasm-bindgen-test-runner,
//! from `cargo test --workspace`.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn the_wasm_unit_tests_pass_in_chromium() {
    let output = atoauth_testkit::spa::wasm_cargo(&["test", "-p", "atoauth-browser", "--tests"])
        .output()
        .expect("cargo for wasm32 (the toolchain: see .ci/run)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The runner says "no tests to run!" for an empty binary; the browser tests must have run.
    let passed: u32 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<u32>().ok())
        .sum();
    assert!(passed >= 5, "the browser unit tests ran: {stdout}");
}
