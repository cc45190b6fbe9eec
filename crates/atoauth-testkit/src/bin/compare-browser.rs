//! The browser benchmark (issue #19): atoauth-browser next to `@atproto/oauth-client-browser`,
//! each in an equivalent minimal page (`bench/compare-browser/{ours,ts}`: sign in, one XRPC
//! call, restore after a reload), in the same headless Chromium against the same official PDS,
//! one after the other, three runs each with a fresh browser profile. Measures what the page
//! loads for the client (gzip), the time from clicking sign-in to leaving for the PDS (PAR
//! done), from the callback to signed in, from a reload to restored, the call, and memory
//! after sign-in (JS heap plus wasm linear memory). `bench/compare-browser/run.sh` builds both
//! pages and runs this; it rewrites BENCHMARKS.md's browser section.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atoauth_testkit::browser::{Driver, consent_at_the_pds};
use atoauth_testkit::pds;
use fantoccini::{Client, Locator};

type Error = Box<dyn std::error::Error + Send + Sync>;

const START: &str = "<!-- browser -->";
const END: &str = "<!-- /browser -->";

struct Served(Child, String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(atoauth: &Path, dir: &Path) -> Result<Served, Error> {
    let mut child = Command::new(atoauth)
        .args([
            "--insecure-dev",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--spa",
        ])
        .arg(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let url = atoauth_testkit::bff::read_line_with(&mut child, |line| {
        line.split("open ")
            .nth(1)
            .filter(|_| line.contains("listening on"))
            .map(|url| url.trim().trim_end_matches('/').to_owned())
    })?;
    Ok(Served(child, url))
}

fn gzip_bytes(path: &Path) -> Result<u64, Error> {
    let output = Command::new("gzip").args(["-9", "-c"]).arg(path).output()?;
    Ok(output.stdout.len() as u64)
}

async fn wait_state(browser: &Client, states: &str) -> Result<String, Error> {
    let selector = states
        .split(',')
        .map(|s| format!("body[data-state={s}], body[data-state=error]"))
        .collect::<Vec<_>>()
        .join(", ");
    browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(&selector))
        .await?;
    let state = browser
        .execute("return document.body.dataset.state;", vec![])
        .await?;
    let state = state.as_str().unwrap_or_default().to_owned();
    if state == "error" {
        let text = browser.find(Locator::Css("#error")).await?.text().await?;
        return Err(format!("the page failed: {text}").into());
    }
    Ok(state)
}

/// One run: sign in, call, reload and restore. The marks the page left in localStorage.
async fn one_run(url: &str, name: &str) -> Result<serde_json::Value, Error> {
    let driver = Driver::start(name);
    let browser = driver.browser().await;
    let account = pds().alice();
    browser.goto(&format!("{url}/")).await?;
    wait_state(&browser, "signed-out").await?;
    browser
        .find(Locator::Css("#identifier"))
        .await?
        .send_keys(&account.handle)
        .await?;
    browser
        .find(Locator::Css("#sign-in"))
        .await?
        .click()
        .await?;
    consent_at_the_pds(&browser, account).await;
    wait_state(&browser, "signed-in").await?;
    browser.refresh().await?;
    wait_state(&browser, "restored").await?;
    let marks = browser
        .execute(
            "return Object.fromEntries(Object.keys(localStorage)
               .filter((k) => k.startsWith('bench:'))
               .map((k) => [k.slice(6), Number(localStorage.getItem(k))]));",
            vec![],
        )
        .await?;
    browser.close().await?;
    Ok(marks)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Side {
    name: &'static str,
    gzip: u64,
    par_ms: f64,
    callback_ms: f64,
    restore_ms: f64,
    call_ms: f64,
    memory: f64,
}

async fn measure(
    key: &str,
    name: &'static str,
    url: &str,
    gzip: u64,
    runs: usize,
) -> Result<Side, Error> {
    let mut columns: [Vec<f64>; 5] = Default::default();
    for run in 0..runs {
        // The name becomes part of Chromium's profile path: plain characters only.
        let marks = one_run(url, &format!("bench-{key}-{run}")).await?;
        eprintln!("compare-browser: {name} run {run}: {marks}");
        let get = |k: &str| marks[k].as_f64().unwrap_or(f64::NAN);
        columns[0].push(get("par_ms"));
        columns[1].push(get("callback_ms"));
        columns[2].push(get("restore_ms"));
        columns[3].push(get("call_ms"));
        columns[4].push(get("js_heap_bytes") + get("wasm_bytes"));
    }
    let [mut par, mut callback, mut restore, mut call, mut memory] = columns;
    Ok(Side {
        name,
        gzip,
        par_ms: median(&mut par),
        callback_ms: median(&mut callback),
        restore_ms: median(&mut restore),
        call_ms: median(&mut call),
        memory: median(&mut memory),
    })
}

fn section(ts: &Side, ours: &Side) -> String {
    let row = |what: &str, a: String, b: String, ratio: f64, note: &str| {
        format!("| {what} | {a} | {b} | {ratio:.2}× | {note} |\n")
    };
    let mut rows = String::new();
    rows += &row(
        "what the page loads for the client, gzip -9",
        format!("{:.1} KB", ts.gzip as f64 / 1000.0),
        format!("{:.1} KB", ours.gzip as f64 / 1000.0),
        ours.gzip as f64 / ts.gzip as f64,
        "TS: the esbuild bundle; atoauth: app.js, the wasm-bindgen glue and the .wasm",
    );
    for (what, a, b, note) in [
        (
            "click on sign-in → leaving for the PDS (PAR done)",
            ts.par_ms,
            ours.par_ms,
            "resolution, discovery, PAR",
        ),
        (
            "callback → signed in",
            ts.callback_ms,
            ours.callback_ms,
            "from the navigation: loading the client, the token request, the DID check",
        ),
        (
            "reload → session restored",
            ts.restore_ms,
            ours.restore_ms,
            "from the navigation",
        ),
        (
            "one XRPC call (getSession)",
            ts.call_ms,
            ours.call_ms,
            "DPoP proof with WebCrypto, the PDS",
        ),
    ] {
        rows += &row(
            what,
            format!("{a:.0} ms"),
            format!("{b:.0} ms"),
            b / a,
            note,
        );
    }
    rows += &row(
        "memory after sign-in: JS heap + wasm memory",
        format!("{:.1} MB", ts.memory / 1e6),
        format!("{:.1} MB", ours.memory / 1e6),
        ours.memory / ts.memory,
        "performance.memory.usedJSHeapSize + memory.buffer.byteLength",
    );
    format!(
        "{START}\n## The browser: atoauth-browser next to `@atproto/oauth-client-browser`\n\n\
         Equivalent minimal pages (`bench/compare-browser`): sign in as the development client, \
         one XRPC call, a reload that restores the session; the same headless Chromium, the \
         same official PDS, one side after the other, medians of three runs with fresh profiles. \
         Regenerate: `bash bench/compare-browser/run.sh`.\n\n\
         | what | {} | {} | atoauth ÷ TS | reading |\n|---|---|---|---|---|\n{rows}{END}\n",
        ts.name, ours.name
    )
}

async fn compare(runs: usize) -> Result<String, Error> {
    let pds = pds();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bench = repo.join("bench/compare-browser");
    let exe = std::env::current_exe()?;
    let atoauth: PathBuf = exe.parent().ok_or("no binary directory")?.join("atoauth");
    if !atoauth.exists() {
        return Err("build the atoauth binary first (run.sh does)".into());
    }
    let ours_dir = bench.join("ours");
    let ts_dir = bench.join("ts");
    for needed in [
        ours_dir.join("pkg/atoauth_browser_bg.wasm"),
        ts_dir.join("dist/app.js"),
    ] {
        if !needed.exists() {
            return Err(format!(
                "{} is missing: run bench/compare-browser/run.sh",
                needed.display()
            )
            .into());
        }
    }
    let config = serde_json::json!({
        "handleResolver": pds.pds_url().as_str(),
        "plcDirectory": pds.plc_url().as_str(),
    });
    for dir in [&ours_dir, &ts_dir] {
        std::fs::write(dir.join("config.json"), config.to_string())?;
    }
    let ours_gzip = gzip_bytes(&ours_dir.join("app.js"))?
        + gzip_bytes(&ours_dir.join("bench.js"))?
        + gzip_bytes(&ours_dir.join("pkg/atoauth_browser.js"))?
        + gzip_bytes(&ours_dir.join("pkg/atoauth_browser_bg.wasm"))?;
    let ts_gzip = gzip_bytes(&ts_dir.join("dist/app.js"))?;
    let ts_served = serve(&atoauth, &ts_dir)?;
    let ts = measure(
        "ts",
        "TS `@atproto/oauth-client-browser` 0.5.7",
        &ts_served.1,
        ts_gzip,
        runs,
    )
    .await?;
    drop(ts_served);
    let ours_served = serve(&atoauth, &ours_dir)?;
    let ours = measure("ours", "atoauth-browser", &ours_served.1, ours_gzip, runs).await?;
    drop(ours_served);
    Ok(section(&ts, &ours))
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
    let runs = value("--runs").and_then(|s| s.parse().ok()).unwrap_or(3);
    let outcome = tokio::runtime::Runtime::new()
        .map_err(Error::from)
        .and_then(|runtime| runtime.block_on(compare(runs)))
        .and_then(|section| {
            println!("{section}");
            let document = std::fs::read_to_string(&out).unwrap_or_default();
            Ok(std::fs::write(
                &out,
                atoauth_testkit::markdown::splice(&document, START, END, &section),
            )?)
        });
    match outcome {
        Ok(()) => {
            eprintln!("compare-browser: wrote {out}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("compare-browser: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
