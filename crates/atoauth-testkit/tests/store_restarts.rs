//! A Redis crash and restart in the middle of a refresh storm, against the official PDS (issue
//! #21): 50 callers on an expired session while the store is down, then back.
//!
//! - AOF with `appendfsync always`: every acknowledged write survives; the session is kept with
//!   exactly one refresh grant, and calls made during the outage fail fast with a typed store
//!   error (callers retry).
//! - AOF with `everysec`: the same once the last writes are a second old (the loss window).
//! - No AOF: the data is gone; every caller is told the session does not exist
//!   (`requires_sign_in`), and no refresh token is ever replayed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use atoauth::http::{HardenedClient, TargetPolicy};
use atoauth::{Did, LoopbackClient, OAuthClient, OAuthError, SessionId};
use atoauth_testkit::servers::{RestartablePostgres, RestartableRedis};
use atoauth_testkit::{RecordingHttp, expire_session, pds};

#[derive(Debug)]
struct Outcome {
    kept: usize,
    told_to_sign_in: usize,
    store_errors: usize,
    /// The longest a single failed call took during the outage.
    slowest_failure: Duration,
    other_errors: Vec<String>,
    grants: usize,
    recovery: Duration,
}

async fn crash_during_storm(aof: Option<&str>, settle: Duration) -> Outcome {
    let pds = pds();
    let mut redis = RestartableRedis::start(aof);
    let store = Arc::new(
        atoauth_redis::RedisStore::connect(&redis.url(), "restart:")
            .await
            .unwrap()
            .with_lock_lease(Duration::from_secs(2)),
    );
    let http = RecordingHttp::new(Arc::new(
        HardenedClient::builder()
            .target_policy(TargetPolicy::InsecureAllowLoopbackHttp)
            .build()
            .unwrap(),
    ));
    let client = OAuthClient::builder()
        .loopback(LoopbackClient::with_scope("atproto").unwrap())
        .insecure_local_pds(pds.plc_url().clone(), pds.pds_url().clone())
        .http_client(Arc::new(http.clone()))
        .store(store.clone())
        .build()
        .unwrap();
    let session = pds.sign_in(&client, pds.alice()).await;
    let (did, id) = (session.did().clone(), session.session_id().clone());
    expire_session(store.as_ref(), &did, &id).await;
    tokio::time::sleep(settle).await;
    let outcome = storm_through_outage(&client, &http, (&did, &id), |running| {
        if running {
            redis.restart();
        } else {
            redis.crash();
        }
    })
    .await;
    eprintln!("Redis {aof:?}: {outcome:?}");
    outcome
}

/// 50 callers on the expired session `did`/`id` while the store goes down (`set_running(false)`),
/// then, 0.8 s later, comes back (`set_running(true)`); callers retry typed store errors every 100 ms for up to 20 s.
async fn storm_through_outage(
    client: &OAuthClient,
    http: &RecordingHttp,
    (did, id): (&Did, &SessionId),
    mut set_running: impl FnMut(bool),
) -> Outcome {
    let grants_before = http.successful_grants("refresh_token");
    tokio::task::block_in_place(|| set_running(false));
    let crashed = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..50 {
        let (client, did, id) = (client.clone(), did.clone(), id.clone());
        callers.push(tokio::spawn(async move {
            let (mut store_errors, mut slowest) = (0, Duration::ZERO);
            loop {
                let started = Instant::now();
                let result = async {
                    client
                        .restore(&did, &id)
                        .await?
                        .query::<serde_json::Value>("com.atproto.server.getSession", &[])
                        .await
                }
                .await;
                let counts = |errors| (errors, slowest);
                match result {
                    Ok(_) => return (Ok(()), counts(store_errors)),
                    Err(error) if error.requires_sign_in() => {
                        return (Err(None), counts(store_errors));
                    }
                    Err(OAuthError::Store(_)) if crashed.elapsed() < Duration::from_secs(20) => {
                        store_errors += 1;
                        slowest = slowest.max(started.elapsed());
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => return (Err(Some(error.to_string())), counts(store_errors)),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    tokio::task::block_in_place(|| set_running(true));
    let mut outcome = Outcome {
        kept: 0,
        told_to_sign_in: 0,
        store_errors: 0,
        slowest_failure: Duration::ZERO,
        other_errors: Vec::new(),
        grants: 0,
        recovery: Duration::ZERO,
    };
    for caller in callers {
        let (result, (store_errors, slowest)) = caller.await.unwrap();
        outcome.store_errors += store_errors;
        outcome.slowest_failure = outcome.slowest_failure.max(slowest);
        match result {
            Ok(()) => outcome.kept += 1,
            Err(None) => outcome.told_to_sign_in += 1,
            Err(Some(error)) => outcome.other_errors.push(error),
        }
    }
    outcome.recovery = crashed.elapsed();
    outcome.grants = http.successful_grants("refresh_token") - grants_before;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_aof_always_keeps_the_session_through_a_crash() {
    let outcome = crash_during_storm(Some("always"), Duration::ZERO).await;
    assert_eq!(outcome.kept, 50, "{outcome:?}");
    assert_eq!(outcome.grants, 1, "one refresh for the storm: {outcome:?}");
    assert!(outcome.other_errors.is_empty(), "{outcome:?}");
    assert!(
        outcome.store_errors > 0,
        "the outage was seen as typed store errors"
    );
    assert!(outcome.recovery < Duration::from_secs(10), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_aof_everysec_keeps_writes_older_than_a_second() {
    let outcome = crash_during_storm(Some("everysec"), Duration::from_millis(1500)).await;
    assert_eq!(outcome.kept, 50, "{outcome:?}");
    assert_eq!(outcome.grants, 1, "{outcome:?}");
    assert!(outcome.other_errors.is_empty(), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_without_aof_loses_the_session_and_says_so() {
    let outcome = crash_during_storm(None, Duration::ZERO).await;
    assert_eq!(outcome.told_to_sign_in, 50, "{outcome:?}");
    assert_eq!(
        outcome.grants, 0,
        "no refresh token replayed or sent: {outcome:?}"
    );
    assert!(outcome.other_errors.is_empty(), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stays_down_fails_calls_within_a_bound() {
    let pds = pds();
    let mut redis = RestartableRedis::start(Some("always"));
    let store = Arc::new(
        atoauth_redis::RedisStore::connect(&redis.url(), "down:")
            .await
            .unwrap(),
    );
    let client = OAuthClient::builder()
        .loopback(LoopbackClient::with_scope("atproto").unwrap())
        .insecure_local_pds(pds.plc_url().clone(), pds.pds_url().clone())
        .store(store.clone())
        .build()
        .unwrap();
    let session = pds.sign_in(&client, pds.bob()).await;
    redis.crash();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        client.restore(session.did(), session.session_id()),
    )
    .await;
    let elapsed = started.elapsed();
    eprintln!(
        "a call with Redis down: {:?} after {elapsed:?}",
        result
            .as_ref()
            .map(|r| r.as_ref().err().map(ToString::to_string))
    );
    let error = result.expect("no hang").unwrap_err();
    assert!(matches!(error, OAuthError::Store(_)), "{error}");
    assert!(elapsed < Duration::from_secs(5), "fails fast: {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_losing_every_pooled_connection_keeps_the_session() {
    // The database side ends every connection of the pool (a failover, a proxy restart), then
    // 50 callers arrive on the expired session.
    let pds = pds();
    let db = atoauth_testkit::servers::postgres_database("poolloss");
    let store = Arc::new(atoauth_sqlx::PostgresStore::connect(&db).await.unwrap());
    let http = RecordingHttp::loopback();
    let client = pds
        .loopback_builder("atproto", store.clone())
        .http_client(Arc::new(http.clone()))
        .build()
        .unwrap();
    let session = pds.sign_in(&client, pds.carol()).await;
    let (did, id) = (session.did().clone(), session.session_id().clone());
    expire_session(store.as_ref(), &did, &id).await;
    let database = db.rsplit('/').next().unwrap().to_owned();
    let port = atoauth_testkit::servers::postgres().port.to_string();
    let terminated = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-qtA", "-c"])
        .arg(format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{database}'"
        ))
        .output()
        .unwrap();
    let count: u32 = String::from_utf8_lossy(&terminated.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(count >= 1, "the pool had connections to end");

    let mut callers = Vec::new();
    for _ in 0..50 {
        let (client, did, id) = (client.clone(), did.clone(), id.clone());
        callers.push(tokio::spawn(async move {
            client
                .restore(&did, &id)
                .await?
                .query::<serde_json::Value>("com.atproto.server.getSession", &[])
                .await
        }));
    }
    let mut failed = Vec::new();
    for caller in callers {
        if let Err(error) = caller.await.unwrap() {
            failed.push(error.to_string());
        }
    }
    eprintln!("PostgreSQL pool loss: {count} connections ended, failed calls: {failed:?}");
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(http.successful_grants("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_mid_storm_keeps_the_session() {
    // A fast shutdown (as `systemctl restart` or a planned failover does) while 50 callers
    // arrive on the expired session, and the server back 0.8 s later.
    let pds = pds();
    let mut postgres = RestartablePostgres::start();
    let store = Arc::new(
        atoauth_sqlx::PostgresStore::connect(&postgres.url())
            .await
            .unwrap(),
    );
    let http = RecordingHttp::loopback();
    let client = pds
        .loopback_builder("atproto", store.clone())
        .http_client(Arc::new(http.clone()))
        .build()
        .unwrap();
    let session = pds.sign_in(&client, pds.bob()).await;
    let (did, id) = (session.did().clone(), session.session_id().clone());
    expire_session(store.as_ref(), &did, &id).await;
    let outcome = storm_through_outage(&client, &http, (&did, &id), |running| {
        if running {
            postgres.restart();
        } else {
            postgres.stop_fast();
        }
    })
    .await;
    eprintln!("PostgreSQL fast restart: {outcome:?}");
    assert_eq!(outcome.kept, 50, "{outcome:?}");
    assert_eq!(outcome.grants, 1, "one refresh for the storm: {outcome:?}");
    assert!(outcome.other_errors.is_empty(), "{outcome:?}");
    assert!(outcome.recovery < Duration::from_secs(15), "{outcome:?}");
    assert!(
        outcome.slowest_failure < Duration::from_secs(11),
        "a call waits at most the pool's 10 s acquire timeout: {outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_that_stays_down_fails_calls_within_the_acquire_timeout() {
    let pds = pds();
    let mut postgres = RestartablePostgres::start();
    let store = Arc::new(
        atoauth_sqlx::PostgresStore::connect(&postgres.url())
            .await
            .unwrap(),
    );
    let client = pds
        .loopback_builder("atproto", store.clone())
        .build()
        .unwrap();
    let session = pds.sign_in(&client, pds.carol()).await;
    tokio::task::block_in_place(|| postgres.stop_fast());
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        client.restore(session.did(), session.session_id()),
    )
    .await;
    let elapsed = started.elapsed();
    eprintln!("a call with PostgreSQL down: failed after {elapsed:?}");
    let error = result.expect("no hang").unwrap_err();
    assert!(matches!(error, OAuthError::Store(_)), "{error}");
    assert!(
        elapsed < Duration::from_secs(11),
        "bounded by the pool's 10 s acquire timeout: {elapsed:?}"
    );
}
