//! Load through `atoauth serve`'s XRPC proxy (wrk with the session cookie) next to the same call
//! made directly through the SDK by a Rust load generator, both against the local official PDS,
//! one after the other. `cargo bench -p atoauth-cli --bench proxy_load` prints the table;
//! `cargo test` runs it for a moment as a smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atoauth::client::OAuthClient;
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::TargetPolicy;
use atoauth::syntax::Nsid;
use atoauth_testkit::{Consent, pds};

const CONNECTIONS: usize = 16;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn sdk_direct(seconds: u64) -> (f64, Duration, Duration) {
    let pds = pds();
    let resolver = pds.identity_resolver();
    let client = OAuthClient::builder()
        .loopback(LoopbackClient::new(["http://127.0.0.1/callback"], Some("atproto")).unwrap())
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .identity_resolver(resolver)
        .build()
        .unwrap();
    let session = pds.sign_in(&client, pds.bob()).await;
    let nsid = Nsid::new("com.atproto.server.getSession").unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (session, nsid) = (session.clone(), nsid.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                session
                    .query::<serde_json::Value>(&nsid, &[])
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    (
        all.len() as f64 / wall.as_secs_f64(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    )
}

/// Starts `atoauth serve`, signs alice in over HTTP, and returns (child, base URL, cookie).
async fn serve_signed_in(data: &std::path::Path) -> (std::process::Child, String, String) {
    let pds = pds();
    let mut child = Command::new(env!("CARGO_BIN_EXE_atoauth"))
        .args(["--insecure-dev", "--plc-url", pds.plc_url().as_str()])
        .args(["--handle-resolver", pds.pds_url().as_str()])
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(url) = line.split("open ").nth(1) {
            break url.trim().trim_end_matches('/').to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let http = atoauth_testkit::http_client();
    let start = http.get(format!("{base}/")).send().await.unwrap();
    let cookie = start.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = start.text().await.unwrap();
    let marker = "name=csrf value=\"";
    let at = page.find(marker).unwrap() + marker.len();
    let csrf = page[at..].split('"').next().unwrap().to_owned();
    let login = http
        .post(format!("{base}/oauth/login"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("identifier=alice.test&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let redirect = pds
        .authorize(&authorize, pds.alice(), Consent::Accept)
        .await
        .unwrap();
    let done = http
        .get(format!(
            "{base}/oauth/callback?{}",
            redirect.query().unwrap()
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let cookie = done.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (child, base, cookie)
}

/// wrk's requests/s, p50 and p99 (in ms) from its `--latency` report.
fn wrk(base: &str, cookie: &str, seconds: u64) -> Option<(f64, f64, f64)> {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .args(["-H", &format!("Cookie: {cookie}")])
        .arg(format!("{base}/xrpc/com.atproto.server.getSession"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        !text.contains("Non-2xx"),
        "the proxy answered errors:\n{text}"
    );
    let ms = |label: &str| -> Option<f64> {
        let value = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))?
            .split_whitespace()
            .nth(1)?
            .to_owned();
        let (number, unit) = value.split_at(value.find(|c: char| c.is_alphabetic())?);
        let number: f64 = number.parse().ok()?;
        Some(match unit {
            "us" => number / 1000.0,
            "s" => number * 1000.0,
            _ => number,
        })
    };
    let rps: f64 = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((rps, ms("50%")?, ms("99%")?))
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let seconds = if benchmarking { 10 } else { 1 };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let (mut child, base, cookie) = serve_signed_in(data.path()).await;
        let proxy = tokio::task::spawn_blocking({
            let (base, cookie) = (base.clone(), cookie.clone());
            move || wrk(&base, &cookie, seconds)
        })
        .await
        .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let (rps, p50, p99) = sdk_direct(seconds).await;
        println!("getSession against the local official PDS, {CONNECTIONS} connections, {seconds} s each:");
        println!("| path | requests/s | p50 | p99 |");
        println!("| --- | --- | --- | --- |");
        match proxy {
            Some((rps, p50, p99)) => println!("| browser cookie → atoauth serve proxy → PDS (wrk) | {rps:.0} | {p50:.2} ms | {p99:.2} ms |"),
            None => println!("| atoauth serve proxy (wrk) | wrk not installed | | |"),
        }
        println!(
            "| SDK direct: OAuthSession::query → PDS (Rust) | {rps:.0} | {:.2} ms | {:.2} ms |",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    });
}
