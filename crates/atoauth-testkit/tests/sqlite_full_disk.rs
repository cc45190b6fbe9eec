//! The SQLite store on a tiny filesystem that fills up (issue #21), against the official PDS.
//!
//! - Full before a refresh: the refresh lock cannot be written, so nothing is sent to the PDS;
//!   the call fails with a typed store error, and once there is room the session refreshes once.
//! - Full between the PDS's answer and the write of the new tokens: the write fails, the new
//!   tokens are revoked (P3) and the caller is told to sign in again (`PersistFailed`); the old
//!   record is intact (`PRAGMA integrity_check`), and once there is room the next call learns
//!   from the PDS that the session ended, in one request.
//!
//! The filesystem is a tmpfs of 1 MiB mounted for the test (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use atoauth::http::{HttpClient, HttpFuture, Request};
use atoauth::{Did, OAuthClient, OAuthError, SessionId, SessionStore};
use atoauth_sqlx::SqliteStore;
use atoauth_testkit::{RecordingHttp, expire_session, pds};

/// A size-limited tmpfs, unmounted and removed when dropped.
struct TinyFilesystem {
    mount_point: PathBuf,
}

impl TinyFilesystem {
    fn mount(name: &str) -> Self {
        let mount_point = PathBuf::from(format!("/tmp/atoauth-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&mount_point).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&mount_point)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a 1 MiB tmpfs needs root (CI runs as root)"
        );
        Self { mount_point }
    }

    fn filler(&self) -> PathBuf {
        self.mount_point.join("filler")
    }

    /// Writes a file until the filesystem has no room left.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let block = [0u8; 4096];
        loop {
            match file.write_all(&block).and_then(|()| file.sync_all()) {
                Ok(()) => {}
                Err(error) if error.raw_os_error() == Some(28) => return, // ENOSPC
                Err(error) => panic!("filling the filesystem: {error}"),
            }
        }
    }

    fn make_room(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for TinyFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
        let _ = std::fs::remove_dir(&self.mount_point);
    }
}

/// Fills the disk at the moment the PDS answers a refresh, before atoauth stores the answer.
#[derive(Clone)]
struct FillOnRefreshAnswer {
    inner: RecordingHttp,
    disk: Arc<TinyFilesystem>,
    armed: Arc<AtomicBool>,
}

impl HttpClient for FillOnRefreshAnswer {
    fn send(&self, request: Request) -> HttpFuture<'_> {
        let refresh = url::form_urlencoded::parse(request.body())
            .any(|(name, value)| name == "grant_type" && value == "refresh_token");
        Box::pin(async move {
            let answer = self.inner.send(request).await;
            if refresh
                && answer.as_ref().is_ok_and(|a| a.status() == 200)
                && self.armed.swap(false, Ordering::SeqCst)
            {
                self.disk.fill();
            }
            answer
        })
    }
}

/// Resumes the session and calls the PDS with it.
async fn get_session(
    client: &OAuthClient,
    did: &Did,
    id: &SessionId,
) -> Result<serde_json::Value, OAuthError> {
    client
        .restore(did, id)
        .await?
        .query("com.atproto.server.getSession", &[])
        .await
}

fn integrity(path: &Path) -> String {
    let output = Command::new("sqlite3")
        .arg(path)
        .arg("PRAGMA integrity_check;")
        .output()
        .expect("sqlite3 (apt-get install sqlite3)");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

struct Setup {
    disk: Arc<TinyFilesystem>,
    path: PathBuf,
    store: Arc<SqliteStore>,
    http: RecordingHttp,
    armed: Arc<AtomicBool>,
    client: OAuthClient,
}

async fn setup(name: &str) -> Setup {
    let disk = Arc::new(TinyFilesystem::mount(name));
    let path = disk.mount_point.join("atoauth.db");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let http = RecordingHttp::loopback();
    let armed = Arc::new(AtomicBool::new(false));
    let hook = FillOnRefreshAnswer {
        inner: http.clone(),
        disk: disk.clone(),
        armed: armed.clone(),
    };
    let client = pds()
        .loopback_builder("atproto", store.clone())
        .http_client(Arc::new(hook))
        .build()
        .unwrap();
    Setup {
        disk,
        path,
        store,
        http,
        armed,
        client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_before_a_refresh_sends_nothing_and_recovers() {
    let pds = pds();
    let s = setup("full-before").await;
    let session = pds.sign_in(&s.client, pds.alice()).await;
    let (did, id) = (session.did().clone(), session.session_id().clone());
    expire_session(s.store.as_ref(), &did, &id).await;
    let before = s.store.get(&did, &id).await.unwrap().unwrap();

    s.disk.fill();
    let error = get_session(&s.client, &did, &id).await.unwrap_err();
    eprintln!("a refresh on a full disk: {error:?}");
    assert!(matches!(error, OAuthError::Store(_)), "{error}");
    assert!(!error.requires_sign_in(), "{error}");
    assert_eq!(s.http.successful_grants("refresh_token"), 0, "nothing sent");
    assert_eq!(integrity(&s.path), "ok");

    s.disk.make_room();
    let after = s.store.get(&did, &id).await.unwrap().unwrap();
    assert_eq!(after.refresh_token, before.refresh_token, "untouched");
    let me = get_session(&s.client, &did, &id).await.unwrap();
    assert_eq!(me["did"], did.as_str());
    assert_eq!(s.http.successful_grants("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_before_new_tokens_are_stored_revokes_them_and_keeps_the_file_sound() {
    let pds = pds();
    let s = setup("full-during").await;
    let session = pds.sign_in(&s.client, pds.bob()).await;
    let (did, id) = (session.did().clone(), session.session_id().clone());
    expire_session(s.store.as_ref(), &did, &id).await;
    let before = s.store.get(&did, &id).await.unwrap().unwrap();

    s.armed.store(true, Ordering::SeqCst);
    let error = get_session(&s.client, &did, &id).await.unwrap_err();
    eprintln!("new tokens on a full disk: {error:?}");
    assert!(matches!(error, OAuthError::PersistFailed(_)), "{error}");
    assert!(error.requires_sign_in(), "the session cannot go on");
    assert_eq!(s.http.successful_grants("refresh_token"), 1);
    assert_eq!(
        s.http.successes("/oauth/revoke"),
        1,
        "the tokens that could not be stored were revoked"
    );
    assert_eq!(integrity(&s.path), "ok", "the file is sound");
    let kept = s.store.get(&did, &id).await.unwrap().unwrap();
    assert_eq!(kept.refresh_token, before.refresh_token, "the old record");

    // Room again: the old record's refresh token is spent, and the PDS says so once.
    s.disk.make_room();
    let room = Instant::now();
    let requests_before = s.http.exchanges().len();
    let error = get_session(&s.client, &did, &id).await.unwrap_err();
    assert!(error.requires_sign_in(), "{error:?}");
    assert!(
        matches!(error, OAuthError::SessionEnded { .. }),
        "{error:?}"
    );
    let refreshes_after: usize = s.http.exchanges()[requests_before..]
        .iter()
        .filter(|e| e.grant_type.as_deref() == Some("refresh_token"))
        .count();
    assert_eq!(refreshes_after, 1, "one request, no retry storm");
    eprintln!(
        "told to sign in {:?} after the disk had room again",
        room.elapsed()
    );
    assert!(
        s.store.get(&did, &id).await.unwrap().is_none(),
        "the ended session is deleted"
    );
    assert_eq!(integrity(&s.path), "ok");
}
