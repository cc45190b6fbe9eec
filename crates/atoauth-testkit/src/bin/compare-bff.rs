//! The side-by-side BFF benchmark (issue #15): `atoauth serve` next to a TypeScript BFF
//! (`bench/compare/ts-bff.mjs`: express + `@atproto/oauth-client-node` + a signed cookie), both
//! proxying `/xrpc/*` for a signed-in browser, loaded by wrk one after the other.
//!
//! Both run against the same fast upstream: a PDS stand-in in this process that answers XRPC
//! with fixed JSON once it sees a DPoP-bound token, so that the BFFs' own cost is measured, not
//! the official PDS's (which saturates near 500 requests/s). One row keeps the official PDS.
//! Then: resuming a session from each store, and what 100,000 stored sessions cost.
//!
//! Writes its section of `BENCHMARKS.md` (between `<!-- bff -->` markers), through
//! `bench/compare/run.sh`.
//!   compare-bff [--out BENCHMARKS.md] [--seconds 10] [--sessions 100000]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atoauth_testkit::bff::{
    Load, Measured, Process, SignedInBrowser, resume_costs, sdk_direct_latency, standin,
};
use atoauth_testkit::{interop_dir, pds};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The BFF section's markers in BENCHMARKS.md.
const START: &str = "<!-- bff -->";
const END: &str = "<!-- /bff -->";

fn spawn_serve(atoauth: &Path, data: &Path) -> Result<(Child, String), Error> {
    let pds = pds();
    let mut child = Command::new(atoauth)
        .args(["--insecure-dev", "--plc-url", pds.plc_url().as_str()])
        .args(["--handle-resolver", pds.pds_url().as_str()])
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let base = atoauth_testkit::bff::read_line_with(&mut child, |line| {
        line.split("open ")
            .nth(1)
            .filter(|_| line.contains("listening on"))
            .map(|url| url.trim().trim_end_matches('/').to_owned())
    })?;
    Ok((child, base))
}

fn spawn_ts(node: &Path, script: &Path, standin: Option<&str>) -> Result<(Child, String), Error> {
    let pds = pds();
    let mut command = Command::new(node);
    command
        .arg(script)
        .args(["--pds", pds.pds_url().as_str().trim_end_matches('/')])
        .args(["--plc", pds.plc_url().as_str().trim_end_matches('/')]);
    if let Some(url) = standin {
        command.args(["--standin", url]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let port = atoauth_testkit::bff::read_stdout_json(&mut child)?["port"]
        .as_u64()
        .ok_or("the TS BFF printed no port")?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

struct Rows(String);

impl Rows {
    fn load(&mut self, what: &str, ts: &Measured, ours: &Measured) {
        let per_core = ours.per_core() / ts.per_core();
        let _ = writeln!(
            self.0,
            "| {what} | {} | {} | {per_core:.1}× per core; CPU/request {:.2}× |",
            ts.cell(),
            ours.cell(),
            ours.cpu_us_per_request() / ts.cpu_us_per_request(),
        );
    }
}

#[allow(clippy::too_many_lines)]
async fn compare(seconds: u64, sessions: usize) -> Result<String, Error> {
    let pds = pds();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let exe = std::env::current_exe()?;
    let atoauth: PathBuf = exe.parent().ok_or("no binary directory")?.join("atoauth");
    if !atoauth.exists() {
        return Err("build the atoauth binary first (bench/compare/run.sh does)".into());
    }
    let node = interop_dir().join("node_modules/.bin/node");
    let ts_bff = repo.join("bench/compare/ts-bff.mjs");
    if !repo.join("bench/compare/node_modules/express").exists() {
        return Err("the Node side is not installed: run bench/compare/run.sh".into());
    }
    let upstream = standin().await?;
    let data = std::env::temp_dir().join(format!("atoauth-bff-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let load = Load::new(seconds);
    let mut rows = Rows(String::new());

    eprintln!("compare-bff: against the official PDS");
    let (serve, serve_url) = spawn_serve(&atoauth, &data)?;
    let ours_browser = SignedInBrowser::atoauth(&serve_url, pds.alice()).await?;
    let ours_real = load.run(&Process::of(&serve), &ours_browser, 16)?;
    let (ts, ts_url) = spawn_ts(&node, &ts_bff, None)?;
    let ts_browser = SignedInBrowser::typescript(&ts_url, pds.alice()).await?;
    let ts_real = load.run(&Process::of(&ts), &ts_browser, 16)?;
    stop(ts);
    rows.load("official PDS upstream, N = 16", &ts_real, &ours_real);

    eprintln!("compare-bff: against the stand-in");
    // atoauth reads the session from its store at every request: point the stored PDS at the
    // stand-in. The TS BFF keeps sessions in memory: it stores them with the stand-in as `aud`.
    atoauth_testkit::bff::point_sessions_at(&data.join("atoauth.db"), upstream.url()).await?;
    let (ts, ts_url) = spawn_ts(&node, &ts_bff, Some(upstream.url()))?;
    let ts_browser = SignedInBrowser::typescript(&ts_url, pds.alice()).await?;
    let (serve_process, ts_process) = (Process::of(&serve), Process::of(&ts));
    let mut targets = Vec::new();
    for n in [16, 64, 256] {
        let ts_n = load.run(&ts_process, &ts_browser, n)?;
        let ours_n = load.run(&serve_process, &ours_browser, n)?;
        rows.load(&format!("stand-in upstream, N = {n}"), &ts_n, &ours_n);
        targets.push((
            n,
            ours_n.per_core() / ts_n.per_core(),
            ours_n.cpu_us_per_request() / ts_n.cpu_us_per_request(),
        ));
    }
    let ours_one = load.run(&serve_process, &ours_browser, 1)?;
    let ts_one = load.run(&ts_process, &ts_browser, 1)?;
    rows.load("stand-in upstream, N = 1", &ts_one, &ours_one);
    let (ours_rss, ts_rss) = (serve_process.peak_rss(), ts_process.peak_rss());
    stop(ts);
    stop(serve);
    let direct = sdk_direct_latency(upstream.url(), Duration::from_secs(seconds)).await?;
    let added_ms = ours_one.p50_ms - direct.as_secs_f64() * 1000.0;

    eprintln!("compare-bff: session resume and 100,000 stored sessions");
    let resume = resume_costs(&data, sessions).await?;
    let _ = std::fs::remove_dir_all(&data);

    let mut resume_rows = String::new();
    for cost in &resume {
        let _ = writeln!(
            resume_rows,
            "| {} | {:.0} µs | {:.0} µs | {} |",
            cost.store, cost.resume_us_empty, cost.resume_us_full, cost.storage,
        );
    }
    let verdicts: String = targets
        .iter()
        .map(|(n, per_core, cpu)| format!("N = {n}: {per_core:.1}× per core, CPU {cpu:.2}×"))
        .collect::<Vec<_>>()
        .join("; ");
    Ok(format!(
        "{START}\n\
         ## The web app: `atoauth serve` next to a TypeScript BFF\n\n\
         A browser's session cookie, `GET /xrpc/com.atproto.server.getSession` through each BFF's \
         proxy, loaded by wrk (2 threads, N connections, {seconds} s each), one BFF at a time. The \
         TS BFF is `bench/compare/ts-bff.mjs`: express 5, `@atproto/oauth-client-node` 0.5.3, the \
         account's DID in a signed cookie and its sessions in memory (what the cookbook apps keep \
         in SQLite, so this favours it); `atoauth serve` reads its SQLite store at every \
         request. The stand-in upstream is a Rust HTTP/1.1 server in the benchmark process that \
         answers with fixed JSON once it sees a DPoP-bound token; on 2 cores wrk and the stand-in \
         share the machine with the BFF, so requests/s per core (requests/s ÷ the BFF process's \
         CPU-seconds per second) and CPU per request are the fair figures.\n\n\
         | what | TS BFF | atoauth serve | atoauth ÷ TS |\n|---|---|---|---|\n{rows}\
         | peak RSS of the BFF process | {ts_rss:.0} MB | {ours_rss:.1} MB | {rss_ratio:.2}× |\n\
         | the proxy's own latency, N = 1: proxy p50 − SDK direct p50 | — | {ours_p50:.2} ms − {direct_ms:.2} ms = {added_ms:.2} ms | target ≤ 1 ms |\n\n\
         Targets (≥ 5× per core, CPU per request ≤ 0.2×): {verdicts}.\n\n\
         Resuming a session (`OAuthClient::restore`: a store read and the checks), median of 2,000, \
         with one session stored and with {sessions}; and what {sessions} sessions take in the store:\n\n\
         | store | resume, 1 stored | resume, {sessions} stored | {sessions} sessions |\n|---|---|---|---|\n{resume_rows}\n\
         The BFF process holds no session in memory: its RSS does not grow with stored sessions.\n\
         {END}\n",
        rows = rows.0,
        sessions = thousands(sessions),
        ts_rss = ts_rss / 1e6,
        ours_rss = ours_rss / 1e6,
        rss_ratio = ours_rss / ts_rss,
        ours_p50 = ours_one.p50_ms,
        direct_ms = direct.as_secs_f64() * 1000.0,
    ))
}

/// `n` with a comma every three digits.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let out = value("--out").unwrap_or_else(|| "BENCHMARKS.md".to_owned());
    let seconds = value("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let sessions = value("--sessions")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let outcome = tokio::runtime::Runtime::new()
        .map_err(Error::from)
        .and_then(|runtime| runtime.block_on(compare(seconds, sessions)))
        .and_then(|section| {
            let document = std::fs::read_to_string(&out).unwrap_or_default();
            Ok(std::fs::write(
                &out,
                atoauth_testkit::markdown::splice(&document, START, END, &section),
            )?)
        });
    match outcome {
        Ok(()) => {
            eprintln!("compare-bff: wrote {out}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("compare-bff: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
