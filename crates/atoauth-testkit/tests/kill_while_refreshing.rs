//! `kill -9` of a worker in the middle of a refresh, on each shared store, against the official
//! PDS (issue #21). The worker holds the refresh lock of an expired session and dies:
//!
//! - before sending: the lock is freed (the worker's end for SQLite file locks and PostgreSQL
//!   advisory locks, lease expiry for Redis) and
//!   the next caller refreshes once; the session is kept;
//! - after the PDS answered: the rotated tokens died with the worker and the stored refresh
//!   token is spent. The PDS revokes the whole session on its reuse (it has no grace period), so
//!   the next caller's one refresh ends the session with a typed cause: sign in again;
//! - after storing: the new tokens are there; nobody refreshes again; the session is kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use atoauth_testkit::kill::{KillReport, kill_while_refreshing};

/// Short Redis leases: a dead holder frees the lock in 2 s (the default is 30 s).
const LEASE: Duration = Duration::from_secs(2);
const DEADLINE: Duration = Duration::from_secs(15);

/// One kill at a time: the PDS of this test binary serves them all.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn three_points(db: &str, prefix: &str, store: &str) -> Vec<KillReport> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut reports = Vec::new();
    for point in ["before-send", "after-answer", "after-store"] {
        let report = kill_while_refreshing(
            Path::new(env!("CARGO_BIN_EXE_fault-worker")),
            db,
            prefix,
            LEASE,
            point,
            DEADLINE,
        )
        .await;
        eprintln!(
            "kill -9 {store}: {}",
            serde_json::to_string(&report).unwrap()
        );
        reports.push(report);
    }
    for report in &reports {
        assert!(
            report.others_agree,
            "{store}: every process sees the same: {report:?}"
        );
        assert_eq!(
            report.failed_calls, 0,
            "{store}: no call failed on the way: {report:?}"
        );
    }
    let [before, after_answer, after_store] = &reports[..] else {
        unreachable!()
    };
    assert_eq!(before.outcome, "kept", "{store}: {before:?}");
    assert_eq!(
        before.grants, 1,
        "{store}: one refresh after the kill: {before:?}"
    );
    assert!(
        after_answer.requires_sign_in && after_answer.outcome.contains("RefreshRejected"),
        "{store}: a typed end: {after_answer:?}"
    );
    assert!(
        after_answer.refresh_requests <= 1,
        "{store}: no retry storm: {after_answer:?}"
    );
    assert_eq!(after_store.outcome, "kept", "{store}: {after_store:?}");
    assert_eq!(
        after_store.refresh_requests, 0,
        "{store}: nobody refreshes again"
    );
    assert_eq!(after_store.grants, 1, "{store}");
    reports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let reports = three_points(path.to_str().unwrap(), "", "SQLite").await;
    // The file lock dies with the worker's process: no lease to wait for.
    assert!(reports[0].recovery_ms < 1_000, "{:?}", reports[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_on_postgres() {
    let db = atoauth_testkit::servers::postgres_database("kill9");
    let reports = three_points(&db, "", "PostgreSQL").await;
    // The lock dies with the worker's connection: no lease to wait for.
    assert!(reports[0].recovery_ms < 3_000, "{:?}", reports[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_on_redis() {
    let db = atoauth_testkit::servers::redis_url();
    let prefix = format!("kill9-{}:", std::process::id());
    let reports = three_points(&db, &prefix, "Redis").await;
    assert!(
        reports[0].recovery_ms >= 1_500 && reports[0].recovery_ms < 8_000,
        "{:?}",
        reports[0]
    );
}
