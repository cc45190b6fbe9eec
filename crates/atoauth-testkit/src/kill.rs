//! `kill -9` in the middle of a refresh (issue #21): a `fault-worker` process takes the refresh
//! lock of an expired session and is killed at one point; this process then keeps calling, as
//! the other workers of a deployment would, and reports what became of the session.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoauth::client_metadata::LoopbackClient;
use atoauth::http::{HardenedClient, TargetPolicy};
use atoauth::store::{RefreshLock, SessionStore};
use atoauth::{OAuthClient, OAuthError};

use crate::worker::open_store;
use crate::{RecordingHttp, expire_session, pds};

/// The scope of the sessions killed here.
pub const KILL_SCOPE: &str = "atproto";

/// What became of a session after its refreshing worker was killed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KillReport {
    /// Where the worker was killed.
    pub point: String,
    /// `kept`, or the cause the session ended with.
    pub outcome: String,
    /// Whether the outcome was reported as "sign in again" (`requires_sign_in`).
    pub requires_sign_in: bool,
    /// Whether another process, resuming the session afterwards, is told to sign in again too
    /// (or finds it working, when it was kept).
    pub others_agree: bool,
    /// Refresh grants the PDS answered with new tokens, the killed worker's included (as it
    /// reported before it was killed).
    pub grants: usize,
    /// Refresh requests the surviving side sent (successful or not).
    pub refresh_requests: usize,
    /// Calls that failed before the outcome was clear (lock waits, typed store errors).
    pub failed_calls: usize,
    /// From the kill to the outcome.
    pub recovery_ms: u128,
}

fn observer_client(
    sessions: Arc<dyn SessionStore>,
    lock: Arc<dyn RefreshLock>,
    http: &RecordingHttp,
) -> OAuthClient {
    OAuthClient::builder()
        .loopback(
            LoopbackClient::new(["http://127.0.0.1/callback"], Some(KILL_SCOPE)).expect("a client"),
        )
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .http_client(Arc::new(http.clone()))
        .identity_resolver(pds().identity_resolver())
        .session_store(sessions)
        .refresh_lock(lock)
        .build()
        .expect("a client")
}

/// Signs alice in on `db`, expires the session, kills a `worker` at `point` of its refresh,
/// then calls until the session works or is reported ended (at most `deadline`).
///
/// # Panics
/// When sign-in, the store or the worker cannot be set up.
pub async fn kill_while_refreshing(
    worker: &Path,
    db: &str,
    prefix: &str,
    lease: Duration,
    point: &str,
    deadline: Duration,
) -> KillReport {
    let pds = pds();
    let (sessions, lock) = open_store(db, prefix, lease).await.expect("the store");
    let http = RecordingHttp::new(Arc::new(
        HardenedClient::builder()
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
            .build()
            .expect("HTTP"),
    ));
    let client = observer_client(Arc::clone(&sessions), lock, &http);
    let session = pds.sign_in(&client, pds.alice()).await;
    let (did, id) = (session.did().clone(), session.session_id().clone());
    expire_session(sessions.as_ref(), &did, &id).await;
    let grants_before = http.successful_grants("refresh_token");

    let mut child = Command::new(worker)
        .args([
            "--db", db, "--prefix", prefix, "--scope", KILL_SCOPE, "--point", point,
        ])
        .args(["--lease-ms", &lease.as_millis().to_string()])
        .args([
            "--plc",
            pds.plc_url().as_str(),
            "--pds",
            pds.pds_url().as_str(),
        ])
        .args(["--did", did.as_str(), "--session", id.secret()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("fault-worker");
    let stdout = child.stdout.take().expect("stdout");
    let said = tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().next())
        .await
        .expect("read");
    let said = said.and_then(Result::ok).unwrap_or_default();
    let worker_granted = match said.strip_prefix(&format!("at {point} granted=")) {
        Some("true") => true,
        Some("false") => false,
        _ => panic!("the worker stopped elsewhere: {said:?}"),
    };
    child.kill().expect("kill -9");
    let _ = child.wait();
    let killed = Instant::now();
    let mut failed_calls = 0;
    let (outcome, requires_sign_in) = loop {
        let result = async {
            let session = client.restore(&did, &id).await?;
            session
                .query::<serde_json::Value>("com.atproto.server.getSession", &[])
                .await
        }
        .await;
        match result {
            Ok(_) => break ("kept".to_owned(), false),
            Err(error) if error.requires_sign_in() => break (ended(&error), true),
            Err(_) if killed.elapsed() < deadline => {
                failed_calls += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => break (format!("not settled: {error}"), false),
        }
    };
    let recovery_ms = killed.elapsed().as_millis();
    // Another process: a new client on the same store, without the survivor's memory.
    let (other_sessions, other_lock) = open_store(db, prefix, lease).await.expect("the store");
    let other = observer_client(
        other_sessions,
        other_lock,
        &RecordingHttp::new(Arc::new(
            HardenedClient::builder()
                .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
                .build()
                .expect("HTTP"),
        )),
    );
    let others_agree = match other.restore(&did, &id).await {
        Ok(_) => !requires_sign_in,
        Err(error) => requires_sign_in && error.requires_sign_in(),
    };
    let refresh_requests = http
        .exchanges()
        .iter()
        .filter(|e| e.grant_type.as_deref() == Some("refresh_token"))
        .count();
    let survivor_grants = http.successful_grants("refresh_token") - grants_before;
    KillReport {
        point: point.to_owned(),
        outcome,
        requires_sign_in,
        others_agree,
        grants: survivor_grants + usize::from(worker_granted),
        refresh_requests,
        failed_calls,
        recovery_ms,
    }
}

fn ended(error: &OAuthError) -> String {
    match error {
        OAuthError::SessionEnded { cause, .. } => format!("ended: {cause:?}"),
        other => format!("ended: {other}"),
    }
}
