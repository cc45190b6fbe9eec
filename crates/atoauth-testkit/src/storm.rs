//! A refresh storm across OS processes sharing one store, against the official PDS: sign in,
//! expire the session in the store, start `processes` storm workers (the `storm-worker`
//! binary), release them together, and add up what each saw.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use atoauth::OAuthClient;
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::TargetPolicy;
use atoauth::store::{RefreshLock, SessionStore};
use atoauth::syntax::Nsid;

use crate::{expire_session, pds};

/// The scope the storm sessions use (the workers build the same loopback client).
pub const STORM_SCOPE: &str = "atproto";

/// What a storm did, summed over its processes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StormReport {
    /// Successful `refresh_token` grants.
    pub refresh_grants: u64,
    /// Refresh requests refused with `use_dpop_nonce` (reported apart).
    pub nonce_retries: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Whether the session still works afterwards.
    pub survived: bool,
    /// Wall time of the calls.
    pub ms: u128,
}

fn client(sessions: Arc<dyn SessionStore>, lock: Arc<dyn RefreshLock>) -> OAuthClient {
    let resolver = pds().identity_resolver();
    OAuthClient::builder()
        .loopback(
            LoopbackClient::new(["http://127.0.0.1/callback"], Some(STORM_SCOPE))
                .expect("a client"),
        )
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .identity_resolver(resolver)
        .session_store(sessions)
        .refresh_lock(lock)
        .build()
        .expect("a client")
}

/// Runs one storm; `worker` is the `storm-worker` binary, `db`/`prefix` what it opens.
///
/// # Panics
/// When sign-in or a worker fails to run (not when calls fail: those are counted).
pub async fn cross_process_storm(
    worker: &Path,
    db: &str,
    prefix: &str,
    sessions: Arc<dyn SessionStore>,
    lock: Arc<dyn RefreshLock>,
    processes: usize,
    calls_each: usize,
) -> StormReport {
    let pds = pds();
    let client = client(Arc::clone(&sessions), lock);
    let session = pds.sign_in(&client, pds.alice()).await;
    expire_session(sessions.as_ref(), session.did(), session.session_id()).await;

    let mut workers = Vec::new();
    for _ in 0..processes {
        let mut child = Command::new(worker)
            .args(["--db", db, "--prefix", prefix, "--scope", STORM_SCOPE])
            .args([
                "--plc",
                pds.plc_url().as_str(),
                "--pds",
                pds.pds_url().as_str(),
            ])
            .args([
                "--did",
                session.did().as_str(),
                "--session",
                session.session_id().secret(),
            ])
            .args(["--calls", &calls_each.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("storm-worker");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        workers.push((child, lines));
    }
    let started = Instant::now();
    for (child, _) in &mut workers {
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("go");
    }
    let mut report = StormReport {
        refresh_grants: 0,
        nonce_retries: 0,
        failed: 0,
        survived: false,
        ms: 0,
    };
    for (mut child, mut lines) in workers {
        let line = lines.next().and_then(Result::ok).expect("a report");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert!(child.wait().expect("exit").success());
        report.refresh_grants += value["grants"].as_u64().unwrap_or_default();
        report.failed += value["failed"].as_u64().unwrap_or_default();
        report.nonce_retries += value["nonce_retries"].as_u64().unwrap_or_default();
    }
    report.ms = started.elapsed().as_millis();
    report.survived = match client.restore(session.did(), session.session_id()).await {
        Ok(session) => session
            .query::<serde_json::Value>(
                &Nsid::new("com.atproto.server.getSession").expect("an NSID"),
                &[],
            )
            .await
            .is_ok(),
        Err(_) => false,
    };
    report
}
