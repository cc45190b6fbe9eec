//! The long run of `atoauth serve` (issue #21): `soak --minutes 20` signs in 50 browsers, keeps
//! proxied traffic going, expires access tokens and signs browsers out and in, and reads the
//! server's memory, descriptors and store rows all along. Writes `soak.csv` and `soak.png` to
//! `--out` (default `target/soak`), prints a summary, and exits 1 unless the run was flat.
//! `--markdown BENCHMARKS.md` also rewrites that file's soak section (its PNG copied beside it,
//! to `bench/soak.png`).
//!
//! Build first: `cargo build --release -p atoauth-cli -p atoauth-testkit --bin atoauth --bin soak`
//! (the `atoauth` binary is taken from beside this one).

use std::path::PathBuf;
use std::process::ExitCode;

use atoauth_testkit::soak::{SoakConfig, SoakReport, run};

const START: &str = "<!-- soak -->";
const END: &str = "<!-- /soak -->";

/// The soak section of `markdown`, with the plot copied to `bench/soak.png` beside it.
fn write_section(
    markdown: &str,
    out: &std::path::Path,
    report: &SoakReport,
    minutes: f64,
    browsers: usize,
) -> std::io::Result<()> {
    let document = std::path::Path::new(markdown);
    let bench = document
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("bench");
    std::fs::create_dir_all(&bench)?;
    std::fs::copy(out.join("soak.png"), bench.join("soak.png"))?;
    std::fs::copy(out.join("soak.csv"), bench.join("soak.csv"))?;
    let verdict = match report.flat() {
        Ok(()) => "flat".to_owned(),
        Err(failures) => format!("**not flat**: {}", failures.join("; ")),
    };
    let section = format!(
        "{START}\n## The web app for a long time: the soak\n\n\
         `atoauth serve` (SQLite) with {browsers} browsers signed in through the official PDS's \
         pages, about 40 proxied calls per second, 24 access tokens expired on purpose (each \
         followed at once by a call that must refresh), 12 sign-out/sign-in cycles, 60 readings \
         of the server's RSS, open descriptors and store rows, over {minutes} minutes. Flat means: \
         from the end of warm-up (the first 20 %) RSS grows by at most 10 % and descriptors by at \
         most 5, the store never holds more rows than live browsers plus pending sign-ins, and no \
         answer is an error.\n\n\
         - Regenerate: `cargo build --release -p atoauth-cli -p atoauth-testkit --bin atoauth \
         --bin soak && target/release/soak --minutes {minutes} --markdown BENCHMARKS.md` (CI \
         runs a 2-minute version: `crates/atoauth-cli/tests/soak.rs`).\n\
         - Result: {verdict}. {}\n\
         - Curves: [bench/soak.csv](bench/soak.csv)\n\n\
         ![RSS, descriptors and rows over the soak](bench/soak.png)\n{END}\n",
        report.summary()
    );
    let old = std::fs::read_to_string(document).unwrap_or_default();
    std::fs::write(
        document,
        atoauth_testkit::markdown::splice(&old, START, END, &section),
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let minutes = value("--minutes")
        .and_then(|m| m.parse().ok())
        .unwrap_or(20.0);
    let browsers = value("--browsers")
        .and_then(|b| b.parse().ok())
        .unwrap_or(50);
    let out = PathBuf::from(value("--out").unwrap_or_else(|| "target/soak".to_owned()));
    let atoauth = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("atoauth")))
        .filter(|path| path.exists());
    let Some(atoauth) = atoauth else {
        eprintln!("soak: build the atoauth binary first (cargo build --release -p atoauth-cli)");
        return ExitCode::FAILURE;
    };
    let config = SoakConfig {
        minutes,
        atoauth,
        browsers,
        requests_per_second: 40.0,
    };
    let report = match tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(run(&config)).map_err(|e| e.to_string()))
    {
        Ok(report) => report,
        Err(error) => {
            eprintln!("soak: {error}");
            return ExitCode::FAILURE;
        }
    };
    let title = format!("atoauth serve: {browsers} browsers, {minutes} minutes");
    if let Err(error) = report.write(&out, &title) {
        eprintln!("soak: {error}");
        return ExitCode::FAILURE;
    }
    println!("{}", report.summary());
    println!(
        "curves: {}/soak.csv, {}/soak.png",
        out.display(),
        out.display()
    );
    if let Some(markdown) = value("--markdown")
        && let Err(error) = write_section(&markdown, &out, &report, minutes, browsers)
    {
        eprintln!("soak: {error}");
        return ExitCode::FAILURE;
    }
    match report.flat() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failures) => {
            for failure in failures {
                eprintln!("not flat: {failure}");
            }
            ExitCode::FAILURE
        }
    }
}
