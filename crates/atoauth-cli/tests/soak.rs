//! The web app for a while (issue #21): `atoauth serve` with 50 signed-in browsers against the
//! official PDS, steady proxied traffic, 24 forced access-token expiries, 12 sign-out/sign-in
//! cycles, 60 readings — 2 minutes here (`ATOAUTH_SOAK_MINUTES` to change it; the 20-minute run
//! is the `soak` bench command in BENCHMARKS.md). Flat: from the end of warm-up RSS grows by at
//! most 10 % and descriptors by at most 5, the store never holds more rows than live browsers
//! plus pending sign-ins, and no answer is an error. The curves go to `target/soak-test/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use atoauth_testkit::soak::{SoakConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stays_flat_through_a_soak() {
    let minutes: f64 = std::env::var("ATOAUTH_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(2.0);
    let config = SoakConfig {
        minutes,
        atoauth: env!("CARGO_BIN_EXE_atoauth").into(),
        browsers: 50,
        requests_per_second: 40.0,
    };
    let report = run(&config).await.unwrap();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/soak-test");
    report
        .write(
            &out,
            &format!("atoauth serve: 50 browsers, {minutes} minutes (CI)"),
        )
        .unwrap();
    eprintln!("{}\ncurves: {}", report.summary(), out.display());
    assert_eq!(report.expiries, 24, "every forced expiry ran");
    assert_eq!(report.cycles, 12, "every sign-out/sign-in cycle ran");
    assert!(
        report.refreshes >= 24,
        "each expiry was followed by a refresh: {}",
        report.refreshes
    );
    if let Err(failures) = report.flat() {
        panic!("not flat:\n{}", failures.join("\n"));
    }
}
