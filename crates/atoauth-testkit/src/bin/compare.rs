//! The comparison benchmark: `@atproto/oauth-client-node` and atoauth, one after the other
//! (never in parallel: they share the cores with the PDS), against one local official PDS.
//! Writes `BENCHMARKS.md`. Run it through `bench/compare/run.sh`, which installs the Node side.
//!   compare [--out BENCHMARKS.md] [--seconds 5] [--repetitions 5]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use atoauth_testkit::storm::cross_process_storm;
use atoauth_testkit::{interop_dir, pds};
use serde_json::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Tools {
    node: PathBuf,
    ts: PathBuf,
    rust: PathBuf,
    worker: PathBuf,
    endpoints: Vec<String>,
}

impl Tools {
    fn ts(&self, args: &[&str]) -> Result<Value, Error> {
        let mut command = Command::new(&self.node);
        command
            .arg(&self.ts)
            .arg(args[0])
            .args(&self.endpoints)
            .args(&args[1..]);
        run_json(command)
    }

    fn rust(&self, args: &[&str]) -> Result<Value, Error> {
        let mut command = Command::new(&self.rust);
        command.arg(args[0]).args(&self.endpoints).args(&args[1..]);
        run_json(command)
    }
}

fn run_json(mut command: Command) -> Result<Value, Error> {
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().ok_or("no output")?;
    Ok(serde_json::from_str(last)?)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

fn request_total(value: &Value) -> f64 {
    value
        .as_object()
        .map_or(f64::NAN, |m| m.values().filter_map(Value::as_f64).sum())
}

/// A stable name for an endpoint path (DID documents are named by their method, not the DID).
fn endpoint(path: &str) -> String {
    let decoded = path.replace("%3A", ":");
    if decoded.starts_with("/did:") {
        "PLC directory: DID document".to_owned()
    } else {
        decoded
    }
}

/// Requests per endpoint, cold and warm, for both clients, as a Markdown table.
fn endpoint_breakdown(ts: &Value, ours: &Value) -> String {
    let mut names = std::collections::BTreeSet::new();
    let count = |run: &Value, key: &str| {
        let mut counts = std::collections::BTreeMap::<String, f64>::new();
        if let Some(map) = run[key]["requests"].as_object() {
            for (path, n) in map {
                *counts.entry(endpoint(path)).or_default() += n.as_f64().unwrap_or(0.0);
            }
        }
        counts
    };
    let tables = [
        count(ts, "cold"),
        count(ts, "warm"),
        count(ours, "cold"),
        count(ours, "warm"),
    ];
    for table in &tables {
        names.extend(table.keys().cloned());
    }
    let mut out = String::from(
        "| endpoint | TS cold | TS warm | atoauth cold | atoauth warm |\n|---|---|---|---|---|\n",
    );
    for name in names {
        let cell = |t: &std::collections::BTreeMap<String, f64>| {
            t.get(&name)
                .map_or_else(|| "0".to_owned(), |n| format!("{n}"))
        };
        let _ = writeln!(
            out,
            "| `{name}` | {} | {} | {} | {} |",
            cell(&tables[0]),
            cell(&tables[1]),
            cell(&tables[2]),
            cell(&tables[3])
        );
    }
    out
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb / 1024 / 1024);
    format!("{model}, {cores} cores, {memory} GiB")
}

struct Table {
    rows: String,
}

impl Table {
    #[allow(clippy::needless_pass_by_value)] // the cells are built with format! at every call
    fn row(&mut self, what: &str, ts: String, ours: String, ratio: Option<f64>, reading: &str) {
        let ratio = ratio.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"));
        let _ = writeln!(
            self.rows,
            "| {what} | {ts} | {ours} | {ratio} | {reading} |"
        );
    }
}

#[allow(clippy::too_many_lines)]
async fn compare(seconds: u64, repetitions: usize) -> Result<String, Error> {
    let pds = pds();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let exe = std::env::current_exe()?;
    let bin = exe.parent().ok_or("no binary directory")?;
    let tools = Tools {
        node: interop_dir().join("node_modules/.bin/node"),
        ts: repo.join("bench/compare/ts-bench.mjs"),
        rust: bin.join("compare-client"),
        worker: bin.join("storm-worker"),
        endpoints: vec![
            "--pds".into(),
            pds.pds_url().as_str().trim_end_matches('/').into(),
            "--plc".into(),
            pds.plc_url().as_str().trim_end_matches('/').into(),
            "--control".into(),
            pds.ready()
                .control_url
                .as_str()
                .trim_end_matches('/')
                .into(),
        ],
    };
    if !repo
        .join("bench/compare/node_modules/@atproto/oauth-client-node")
        .exists()
    {
        return Err("the Node side is not installed: run bench/compare/run.sh".into());
    }
    let seconds_arg = seconds.to_string();
    let mut table = Table {
        rows: String::new(),
    };
    eprintln!("compare: logins");

    // Login: client time only (the user step, timed apart, is excluded), medians of 3 processes.
    let (mut ts_logins, mut our_logins) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ts_logins.push(tools.ts(&["login"])?);
        our_logins.push(tools.rust(&["login"])?);
    }
    for (label, key) in [
        ("login, fresh process", "cold"),
        ("login, warm process", "warm"),
    ] {
        let client_ms = |runs: &[Value]| {
            median(
                runs.iter()
                    .map(|r| f(&r[key]["authorize_ms"]) + f(&r[key]["callback_ms"]))
                    .collect(),
            )
        };
        let (ts, ours) = (client_ms(&ts_logins), client_ms(&our_logins));
        table.row(
            &format!("{label}: client time (authorize + callback)"),
            format!("{ts:.1} ms"),
            format!("{ours:.1} ms"),
            Some(ours / ts),
            "user step excluded; median of 3",
        );
        let (ts_requests, our_requests) = (
            request_total(&ts_logins[0][key]["requests"]),
            request_total(&our_logins[0][key]["requests"]),
        );
        table.row(
            &format!("{label}: HTTP requests"),
            format!("{ts_requests}"),
            format!("{our_requests}"),
            Some(our_requests / ts_requests),
            "every spec check kept (L4 resolves the DID afresh)",
        );
    }

    let breakdown = endpoint_breakdown(&ts_logins[0], &our_logins[0]);

    eprintln!("compare: DPoP proofs");
    let ts_k = tools.ts(&["dpop", "--alg", "ES256K"])?;
    let ts_p = tools.ts(&["dpop", "--alg", "ES256"])?;
    let ring = tools.rust(&["dpop", "--signer", "ring"])?;
    let p256 = tools.rust(&["dpop", "--signer", "p256"])?;
    let ring_proof = f(&ring["proof_us"]);
    table.row(
        "DPoP proof: TS default (ES256K) vs atoauth ring (ES256)",
        format!("{:.0} µs", f(&ts_k["proof_us"])),
        format!("{ring_proof:.1} µs"),
        Some(ring_proof / f(&ts_k["proof_us"])),
        "each SDK's own proof API, with ath and nonce",
    );
    table.row(
        "DPoP proof: TS forced to ES256 vs atoauth ring",
        format!("{:.0} µs", f(&ts_p["proof_us"])),
        format!("{ring_proof:.1} µs"),
        Some(ring_proof / f(&ts_p["proof_us"])),
        "like for like",
    );
    table.row(
        "DPoP proof: atoauth p256 (pure Rust)",
        "—".into(),
        format!("{:.1} µs", f(&p256["proof_us"])),
        None,
        "the signer without ring",
    );
    table.row(
        "our proof ÷ our bare ES256 signature (ring)",
        format!(
            "node bare ES256: {:.0} µs",
            f(&ts_p["bare_es256_signature_us"])
        ),
        format!(
            "{:.1} µs ÷ {:.1} µs",
            ring_proof,
            f(&ring["bare_es256_signature_us"])
        ),
        Some(ring_proof / f(&ring["bare_es256_signature_us"])),
        "the cached key and header leave one signature per proof",
    );

    eprintln!("compare: getSession throughput");
    let mut rss = (0.0, 0.0);
    for n in ["1", "16", "64"] {
        let ts = tools.ts(&["throughput", "--n", n, "--seconds", &seconds_arg])?;
        let ts_es256 = tools.ts(&[
            "throughput",
            "--n",
            n,
            "--seconds",
            &seconds_arg,
            "--alg",
            "ES256",
        ])?;
        let ours = tools.rust(&["throughput", "--n", n, "--seconds", &seconds_arg])?;
        let show = |v: &Value| {
            format!(
                "{:.0} req/s, p50 {:.1} ms, p99 {:.1} ms",
                f(&v["rps"]),
                f(&v["p50_ms"]),
                f(&v["p99_ms"])
            )
        };
        table.row(
            &format!("getSession, N = {n}: throughput and latency (TS default / ES256)"),
            format!("{} / {}", show(&ts), show(&ts_es256)),
            show(&ours),
            Some(f(&ours["rps"]) / f(&ts_es256["rps"])),
            "ratio of requests/s against TS ES256; the PDS saturates first",
        );
        table.row(
            &format!("getSession, N = {n}: client CPU per request (TS default / ES256)"),
            format!(
                "{:.0} µs / {:.0} µs",
                f(&ts["cpu_us_per_request"]),
                f(&ts_es256["cpu_us_per_request"])
            ),
            format!("{:.0} µs", f(&ours["cpu_us_per_request"])),
            Some(f(&ours["cpu_us_per_request"]) / f(&ts_es256["cpu_us_per_request"])),
            "the fair figure when the PDS is the bottleneck (vs TS ES256)",
        );
        if n == "64" {
            rss = (f(&ts["peak_rss"]), f(&ours["peak_rss"]));
        }
    }
    table.row(
        "peak RSS of the client process (getSession, N = 64)",
        format!("{:.0} MB", rss.0 / 1e6),
        format!("{:.1} MB", rss.1 / 1e6),
        Some(rss.1 / rss.0),
        "node's maxRSS vs /proc VmHWM",
    );

    eprintln!("compare: refresh storms");
    let mut ts_single = Vec::new();
    let mut our_single = Vec::new();
    for _ in 0..repetitions {
        ts_single.push(tools.ts(&["storm", "--calls", "1000"])?);
        our_single.push(tools.rust(&["storm", "--calls", "1000"])?);
    }
    let single_cell = |runs: &[Value]| {
        let grants: Vec<u64> = runs
            .iter()
            .map(|r| r["refresh_grants"].as_u64().unwrap_or(0))
            .collect();
        let failed: Vec<u64> = runs
            .iter()
            .map(|r| r["failed"].as_u64().unwrap_or(0))
            .collect();
        let kept = runs.iter().filter(|r| r["survived"] == true).count();
        format!(
            "grants {grants:?}, failed {failed:?}, session kept {kept}/{}",
            runs.len()
        )
    };
    table.row(
        "refresh storm, 1,000 calls, one instance",
        single_cell(&ts_single),
        single_cell(&our_single),
        None,
        "both serialise refreshes within one process",
    );

    let dir = std::env::temp_dir().join(format!("atoauth-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut ts_runs = Vec::new();
    for i in 0..repetitions {
        let store = dir.join(format!("ts-store-{i}.json"));
        ts_runs.push(tools.ts(&[
            "storm",
            "--calls",
            "1000",
            "--processes",
            "2",
            "--store",
            store.to_str().unwrap_or_default(),
        ])?);
    }
    let summarise = |grants: Vec<u64>, failed: Vec<u64>, kept: usize| {
        format!("grants {grants:?}, failed {failed:?}, session kept {kept}/{repetitions}")
    };
    let ts_cell = summarise(
        ts_runs
            .iter()
            .map(|r| r["refresh_grants"].as_u64().unwrap_or(0))
            .collect(),
        ts_runs
            .iter()
            .map(|r| r["failed"].as_u64().unwrap_or(0))
            .collect(),
        ts_runs.iter().filter(|r| r["survived"] == true).count(),
    );
    for store in ["SQLite", "PostgreSQL", "Redis"] {
        let mut reports = Vec::new();
        for i in 0..repetitions {
            let report = match store {
                "SQLite" => {
                    let path = dir.join(format!("storm-{i}.db"));
                    let s = Arc::new(atoauth_sqlx::SqliteStore::open(&path).await?);
                    cross_process_storm(
                        &tools.worker,
                        path.to_str().unwrap_or_default(),
                        "",
                        s.clone(),
                        s,
                        2,
                        500,
                    )
                    .await
                }
                "PostgreSQL" => {
                    let db = atoauth_testkit::servers::postgres_database("compare");
                    let s = Arc::new(atoauth_sqlx::PostgresStore::connect(&db).await?);
                    cross_process_storm(&tools.worker, &db, "", s.clone(), s, 2, 500).await
                }
                _ => {
                    let db = atoauth_testkit::servers::redis_url();
                    let prefix = format!("compare-{i}:");
                    let s = Arc::new(atoauth_redis::RedisStore::connect(&db, &prefix).await?);
                    cross_process_storm(&tools.worker, &db, &prefix, s.clone(), s, 2, 500).await
                }
            };
            reports.push(report);
        }
        let ours = summarise(
            reports.iter().map(|r| r.refresh_grants).collect(),
            reports.iter().map(|r| r.failed).collect(),
            reports.iter().filter(|r| r.survived).count(),
        );
        table.row(
            &format!("refresh storm, 2 processes × 500 calls, shared store (atoauth: {store})"),
            format!("TS, file store, default config: {ts_cell}"),
            ours,
            None,
            "a replayed refresh token revokes the whole session on the official PDS",
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    Ok(format!(
        "# Benchmarks: atoauth next to `@atproto/oauth-client-node`\n\n\
         Both clients ran one after the other (never in parallel) against one local official PDS \
         (`@atproto/pds` {pds_version}, node {node}) on the same machine, in one run. The machines \
         are shared and noisy: read the ratios (atoauth ÷ TS; below 1 is better for atoauth, \
         except for requests/s), not the absolute figures.\n\n\
         - Machine: {machine}\n\
         - TS: `@atproto/oauth-client-node` 0.5.3 (`@atproto/oauth-client` 0.8.7, `jose` 5.10.0), \
         node 22 from the harness; atoauth: release build, ring signer unless noted.\n\
         - Regenerate: `bash bench/compare/run.sh` (installs the Node side, builds, runs, \
         rewrites this file; about 8 minutes with the BFF section below).\n\n\
         | what | TS SDK | atoauth | ratio | reading |\n|---|---|---|---|---|\n{rows}\n\
         HTTP requests per login, by endpoint (one run of each; `(grant)` marks token requests):\n\n\
         {breakdown}\n\
         Readings:\n\
         - Login: atoauth caches metadata briefly and resolves the identity once, fresh, at the \
         callback (L4); the TS SDK re-resolves the identity and both metadata documents at every \
         callback.\n\
         - DPoP: atoauth parses the key and serialises the header once per key, so a proof is one \
         ES256 signature plus a little JSON; the TS SDK signs with ES256K by default.\n\
         - Throughput is bound by the PDS from N = 16; client CPU per request and peak RSS are the \
         client's own cost.\n\
         - Storms: the TS SDK's default lock is per process, so two processes sharing a store \
         refresh the same token twice and the PDS revokes the session; atoauth's stores bring a \
         lock that holds across processes.\n",
        pds_version = pds.ready().pds_version,
        node = pds.ready().node,
        machine = machine(),
        rows = table.rows,
        breakdown = breakdown,
    ))
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
    let seconds = value("--seconds").and_then(|s| s.parse().ok()).unwrap_or(5);
    let repetitions = value("--repetitions")
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let outcome = tokio::runtime::Runtime::new()
        .map_err(Error::from)
        .and_then(|runtime| runtime.block_on(compare(seconds, repetitions)));
    // The BFF section (compare-bff) is kept as it was.
    let kept = std::fs::read_to_string(&out).ok().and_then(|old| {
        let start = old.find("<!-- bff -->")?;
        Some(old[start..].to_owned())
    });
    let outcome = outcome.map(|text| match kept {
        Some(section) => format!("{text}\n{section}"),
        None => text,
    });
    match outcome.and_then(|text| Ok(std::fs::write(&out, text)?)) {
        Ok(()) => {
            eprintln!("compare: wrote {out}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("compare: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
