//! Refresh storms across OS processes against the official PDS (issue #9): 4 processes share
//! one store (PostgreSQL, then Redis, then one SQLite file) and make 250 concurrent calls each
//! on the same expired session. Exactly one `refresh_token` grant in total, no failed call, and
//! the session alive afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use atoauth::OAuthClient;
use atoauth::client::{AuthorizeOptions, CallbackParams};
use atoauth::client_metadata::LoopbackClient;
use atoauth::http::TargetPolicy;
use atoauth::identity::{HandleResolution, IdentityResolver};
use atoauth::store::{RefreshLock, SessionStore};
use atoauth::syntax::Nsid;
use atoauth_testkit::{Consent, expire_session, pds};

const SCOPE: &str = "atproto";
const PROCESSES: usize = 4;
const CALLS: usize = 250;

fn client(sessions: Arc<dyn SessionStore>, lock: Arc<dyn RefreshLock>) -> OAuthClient {
    let pds = pds();
    let resolver = IdentityResolver::builder()
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .plc_url(pds.plc_url().clone())
        .handle_resolution(HandleResolution::Service(pds.pds_url().clone()))
        .build()
        .expect("a resolver");
    OAuthClient::builder()
        .loopback(
            LoopbackClient::new(["http://127.0.0.1/callback"], Some(SCOPE)).expect("a client"),
        )
        .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
        .identity_resolver(resolver)
        .session_store(sessions)
        .refresh_lock(lock)
        .build()
        .expect("a client")
}

async fn storm(
    db: &str,
    prefix: &str,
    sessions: Arc<dyn SessionStore>,
    lock: Arc<dyn RefreshLock>,
    name: &str,
) {
    let pds = pds();
    let client = client(Arc::clone(&sessions), lock);
    let url = client
        .start_authorization("alice.test", AuthorizeOptions::default())
        .await
        .expect("PAR");
    let redirect = pds
        .authorize(url.as_str(), pds.alice(), Consent::Accept)
        .await
        .expect("consent");
    let session = client
        .complete_authorization(CallbackParams::from_url(&redirect))
        .await
        .expect("sign-in")
        .session;
    expire_session(sessions.as_ref(), session.did(), session.session_id()).await;

    let mut workers = Vec::new();
    for _ in 0..PROCESSES {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storm-worker"))
            .args(["--db", db, "--prefix", prefix, "--scope", SCOPE])
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
            .args(["--calls", &CALLS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("storm-worker");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        workers.push((child, lines));
    }
    let started = std::time::Instant::now();
    for (child, _) in &mut workers {
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("go");
    }
    let (mut grants, mut failed, mut retries) = (0, 0, 0);
    for (mut child, mut lines) in workers {
        let report: serde_json::Value =
            serde_json::from_str(&lines.next().and_then(Result::ok).expect("a report"))
                .expect("JSON");
        assert!(child.wait().expect("exit").success());
        grants += report["grants"].as_u64().expect("grants");
        failed += report["failed"].as_u64().expect("failed");
        retries += report["nonce_retries"].as_u64().expect("retries");
    }
    eprintln!(
        "storm across {PROCESSES} processes on {name}: {grants} refresh grant(s), {retries} nonce retries, {failed} failed calls of {}, {} ms",
        PROCESSES * CALLS,
        started.elapsed().as_millis()
    );
    assert_eq!(grants, 1, "{name}: exactly one refresh in total");
    assert_eq!(failed, 0, "{name}: no call failed");
    let alive = client
        .restore(session.did(), session.session_id())
        .await
        .expect("the session survived");
    alive
        .query(
            &Nsid::new("com.atproto.server.getSession").expect("an NSID"),
            &[],
        )
        .await
        .expect("the session works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_across_processes_on_postgres() {
    let db = atoauth_testkit::servers::postgres_database("storm");
    let store = Arc::new(
        atoauth_sqlx::PostgresStore::connect(&db)
            .await
            .expect("PostgreSQL"),
    );
    storm(&db, "", store.clone(), store, "PostgreSQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_across_processes_on_redis() {
    let db = atoauth_testkit::servers::redis_url();
    let prefix = format!("storm-{}:", std::process::id());
    let store = Arc::new(
        atoauth_redis::RedisStore::connect(&db, &prefix)
            .await
            .expect("Redis"),
    );
    storm(&db, &prefix, store.clone(), store, "Redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_across_processes_on_one_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("atoauth-storm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let path = dir.join("shared.db");
    let store = Arc::new(
        atoauth_sqlx::SqliteStore::open(&path)
            .await
            .expect("SQLite"),
    );
    storm(
        path.to_str().expect("a path"),
        "",
        store.clone(),
        store,
        "SQLite",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
