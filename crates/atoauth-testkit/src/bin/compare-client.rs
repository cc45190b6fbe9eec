//! The atoauth side of the comparison benchmark (bench/compare): the same work as
//! `bench/compare/ts-bench.mjs`, one measurement per process, one JSON line out.
//!   compare-client <login|throughput|dpop> --pds URL --plc URL --control URL [--n N --seconds S]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoauth::OAuthClient;
use atoauth::client::{AuthorizeOptions, CallbackParams};
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::{HardenedClient, TargetPolicy};
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::protocol::crypto::{Es256Key, SignerBackend, SystemClock};
use atoauth::protocol::dpop::{DpopKey, ProofTarget};
use atoauth::syntax::Nsid;
use atoauth::testing::SeededRandomness;
use atoauth_testkit::RecordingHttp;
use serde_json::{Value, json};

const SCOPE: &str = "atproto transition:generic";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn options() -> BTreeMap<String, String> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    args.chunks(2)
        .filter_map(|pair| match pair {
            [name, value] => Some((name.trim_start_matches("--").to_owned(), value.clone())),
            _ => None,
        })
        .collect()
}

fn client(opt: &BTreeMap<String, String>, http: &RecordingHttp) -> Result<OAuthClient, Error> {
    client_with_store(
        opt,
        http,
        Arc::new(atoauth::store::MemorySessionStore::default()),
    )
}

fn client_with_store(
    opt: &BTreeMap<String, String>,
    http: &RecordingHttp,
    store: Arc<dyn atoauth::store::SessionStore>,
) -> Result<OAuthClient, Error> {
    let resolver = IdentityResolver::builder()
        .http_client(Arc::new(http.clone()))
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .plc_url(opt["plc"].parse()?)
        .handle_resolution(HandleResolution::Service(opt["pds"].parse()?))
        .build()?;
    Ok(OAuthClient::builder()
        .loopback(LoopbackClient::new(
            ["http://127.0.0.1/callback"],
            Some(SCOPE),
        )?)
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .http_client(Arc::new(http.clone()))
        .identity_resolver(resolver)
        .session_store(store)
        .build()?)
}

fn recording() -> Result<RecordingHttp, Error> {
    Ok(RecordingHttp::new(Arc::new(
        HardenedClient::builder()
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
            .build()?,
    )))
}

/// The user step through the harness's control server (timed apart, excluded from client time).
async fn user_step(control: &str, url: &str, handle: &str) -> Result<(String, f64), Error> {
    let password = if handle.starts_with("alice") {
        "alice-pass"
    } else {
        "bob-pass"
    };
    let started = Instant::now();
    let response = atoauth_testkit::http_client()
        .post(format!("{control}/authorize"))
        .json(
            &json!({"authorize_url": url, "username": handle, "password": password, "mode": "api"}),
        )
        .send()
        .await?;
    let body: Value = response.json().await?;
    let redirect = body["redirect_url"]
        .as_str()
        .ok_or(format!("authorize: {body}"))?
        .to_owned();
    Ok((redirect, started.elapsed().as_secs_f64() * 1000.0))
}

async fn login(
    client: &OAuthClient,
    control: &str,
    handle: &str,
) -> Result<(atoauth::OAuthSession, Value), Error> {
    let t0 = Instant::now();
    let url = client
        .start_authorization(handle, AuthorizeOptions::default().scope(SCOPE))
        .await?;
    let authorize_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let (redirect, user_ms) = user_step(control, url.as_str(), handle).await?;
    let t1 = Instant::now();
    let session = client
        .complete_authorization(CallbackParams::from_url(&redirect.parse()?))
        .await?
        .session;
    let callback_ms = t1.elapsed().as_secs_f64() * 1000.0;
    Ok((
        session,
        json!({"authorize_ms": authorize_ms, "callback_ms": callback_ms, "user_ms": user_ms}),
    ))
}

fn requests_by_endpoint(http: &RecordingHttp, from: usize) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for exchange in http.exchanges().into_iter().skip(from) {
        let key = match exchange.grant_type {
            Some(grant) => format!("{} ({grant})", exchange.path),
            None => exchange.path,
        };
        *counts.entry(key).or_default() += 1;
    }
    json!(counts)
}

/// Peak resident memory (VmHWM) and CPU time (user + system) of this process, from /proc.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name: state is 0, utime 11, stime 12 (clock ticks, 100 Hz).
    (ticks(11) + ticks(12)) / 100.0
}

async fn run(mode: &str, opt: &BTreeMap<String, String>) -> Result<Value, Error> {
    match mode {
        "login" => {
            let http = recording()?;
            let client = client(opt, &http)?;
            let (_, mut cold) = login(&client, &opt["control"], "alice.test").await?;
            cold["requests"] = requests_by_endpoint(&http, 0);
            let seen = http.exchanges().len();
            let (_, mut warm) = login(&client, &opt["control"], "alice.test").await?;
            warm["requests"] = requests_by_endpoint(&http, seen);
            Ok(json!({"cold": cold, "warm": warm, "peak_rss": peak_rss()}))
        }
        "throughput" => {
            let http = recording()?;
            let client = client(opt, &http)?;
            let (session, _) = login(&client, &opt["control"], "bob.test").await?;
            let n: usize = opt["n"].parse()?;
            let seconds: u64 = opt["seconds"].parse()?;
            let nsid = Nsid::new("com.atproto.server.getSession")?;
            session.query::<serde_json::Value>(&nsid, &[]).await?;
            let cpu0 = cpu_seconds();
            let started = Instant::now();
            let deadline = started + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for _ in 0..n {
                let (session, nsid) = (session.clone(), nsid.clone());
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        session.query::<serde_json::Value>(&nsid, &[]).await?;
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok::<_, atoauth::OAuthError>(latencies)
                }));
            }
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await??);
            }
            let wall = started.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            latencies.sort_by(f64::total_cmp);
            let at = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
            Ok(json!({
                "n": n, "requests": latencies.len(), "rps": latencies.len() as f64 / wall,
                "p50_ms": at(0.5), "p99_ms": at(0.99),
                "cpu_us_per_request": cpu * 1e6 / latencies.len() as f64, "peak_rss": peak_rss(),
            }))
        }
        "dpop" => {
            let backend = match opt.get("signer").map(String::as_str) {
                Some("p256") => SignerBackend::P256,
                _ => SignerBackend::default(),
            };
            let random = SeededRandomness::new(1);
            let key = DpopKey::from_key(Es256Key::from_secret_bytes(&[7; 32], backend)?)?;
            let url: url::Url =
                "https://pds.example.com/xrpc/com.atproto.repo.createRecord".parse()?;
            let target = ProofTarget {
                method: "POST",
                url: &url,
                nonce: Some("f7d0b3b6-2c9b-4d37-9d5d-2b0f4d1a9c11"),
                access_token: Some("eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9.payload.signature"),
            };
            let measure = |f: &dyn Fn()| {
                let (mut count, started) = (0u64, Instant::now());
                while started.elapsed() < Duration::from_secs(2) {
                    f();
                    count += 1;
                }
                started.elapsed().as_secs_f64() * 1e6 / count as f64
            };
            // The proof as the client makes it: through the async signer path.
            let proof_us = {
                let (mut count, started) = (0u64, Instant::now());
                while started.elapsed() < Duration::from_secs(2) {
                    let _ = key.proof_async(target, &SystemClock, &random).await;
                    count += 1;
                }
                started.elapsed().as_secs_f64() * 1e6 / count as f64
            };
            let message = vec![b'a'; 520];
            let own = key.key().ok_or("the benchmark's key is atoauth's own")?;
            let signature_us = measure(&|| {
                let _ = own.sign(&message);
            });
            Ok(
                json!({"signer": if backend == SignerBackend::P256 { "p256" } else { "ring" },
                "proof_us": proof_us, "bare_es256_signature_us": signature_us}),
            )
        }
        "storm" => {
            let http = recording()?;
            let store: Arc<dyn atoauth::store::SessionStore> =
                Arc::new(atoauth::store::MemorySessionStore::default());
            let client = client_with_store(opt, &http, Arc::clone(&store))?;
            let (session, _) = login(&client, &opt["control"], "alice.test").await?;
            atoauth_testkit::expire_session(store.as_ref(), session.did(), session.session_id())
                .await;
            let calls: usize = opt.get("calls").map_or(Ok(1000), |c| c.parse())?;
            let before = http.exchanges().len();
            let started = Instant::now();
            let nsid = Nsid::new("com.atproto.server.getSession")?;
            let mut tasks = Vec::new();
            for _ in 0..calls {
                let (client, nsid, did, id) = (
                    client.clone(),
                    nsid.clone(),
                    session.did().clone(),
                    session.session_id().clone(),
                );
                tasks.push(tokio::spawn(async move {
                    client
                        .restore(&did, &id)
                        .await?
                        .query::<serde_json::Value>(&nsid, &[])
                        .await
                }));
            }
            let mut failed = 0;
            for task in tasks {
                if !matches!(task.await, Ok(Ok(_))) {
                    failed += 1;
                }
            }
            let refreshes: Vec<_> = http
                .exchanges()
                .into_iter()
                .skip(before)
                .filter(|e| e.grant_type.as_deref() == Some("refresh_token"))
                .collect();
            let survived = client
                .restore(session.did(), session.session_id())
                .await?
                .query::<serde_json::Value>(&nsid, &[])
                .await
                .is_ok();
            Ok(json!({
                "processes": 1, "calls": calls,
                "refresh_grants": refreshes.iter().filter(|e| e.status == Some(200)).count(),
                "refresh_requests": refreshes.len(), "failed": failed, "survived": survived,
                "ms": started.elapsed().as_millis(),
            }))
        }
        other => Err(format!("unknown mode {other}").into()),
    }
}

fn main() -> std::process::ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let opt = options();
    let outcome = tokio::runtime::Runtime::new()
        .map_err(Error::from)
        .and_then(|runtime| runtime.block_on(run(&mode, &opt)));
    match outcome {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("compare-client: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
