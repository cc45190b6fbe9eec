//! The SQLite file locked by another process for longer than the store's busy timeout (issue
//! #21): a call that must write (a refresh) fails with a typed store error within the timeout —
//! no hang, no half-written record — and once the lock is gone the session refreshes once and
//! works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoauth::OAuthError;
use atoauth_testkit::{RecordingHttp, expire_session, pds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_locked_past_the_busy_timeout_is_a_typed_error_then_recovers() {
    let pds = pds();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let store = Arc::new(atoauth_sqlx::SqliteStore::open(&path).await.unwrap());
    let http = RecordingHttp::loopback();
    let client = pds
        .loopback_builder("atproto", store.clone())
        .http_client(Arc::new(http.clone()))
        .build()
        .unwrap();
    let session = pds.sign_in(&client, pds.carol()).await;
    let (did, id) = (session.did().clone(), session.session_id().clone());
    expire_session(store.as_ref(), &did, &id).await;
    let stored = atoauth::SessionStore::get(store.as_ref(), &did, &id)
        .await
        .unwrap()
        .unwrap();

    // Another process takes the write lock and keeps it.
    let mut holder = Command::new("sqlite3")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sqlite3 (apt-get install sqlite3)");
    let mut stdin = holder.stdin.take().unwrap();
    stdin
        .write_all(b"BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        .unwrap();
    stdin.flush().unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "locked");

    let started = Instant::now();
    let result = async {
        client
            .restore(&did, &id)
            .await?
            .query::<serde_json::Value>("com.atproto.server.getSession", &[])
            .await
    }
    .await;
    let waited = started.elapsed();
    let error = result.unwrap_err();
    assert!(matches!(error, OAuthError::Store(_)), "{error}");
    assert!(
        waited < Duration::from_secs(15),
        "bounded by the busy timeout: {waited:?}"
    );
    assert_eq!(
        http.successful_grants("refresh_token"),
        0,
        "nothing sent while locked"
    );

    // The lock goes away: the record is as it was, and the next call refreshes once.
    stdin.write_all(b"COMMIT;\n.quit\n").unwrap();
    drop(stdin);
    assert!(holder.wait().unwrap().success());
    let after = atoauth::SessionStore::get(store.as_ref(), &did, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.refresh_token, stored.refresh_token, "untouched");
    let me: serde_json::Value = client
        .restore(&did, &id)
        .await
        .unwrap()
        .query("com.atproto.server.getSession", &[])
        .await
        .unwrap();
    assert_eq!(me["did"], did.as_str());
    assert_eq!(http.successful_grants("refresh_token"), 1);
    eprintln!("a call behind a held SQLite lock failed after {waited:?}");
}
