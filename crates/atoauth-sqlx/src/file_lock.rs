//! The SQLite store's refresh lock: an OS file lock per session key, in a private directory
//! beside the database file (`<database>.locks/`).
//!
//! Why a file lock and not a lease row: the kernel releases it when its process ends, however it
//! ends. A worker killed with `-9` (or a CLI run stopped with Ctrl-C) in the middle of a refresh
//! blocks nobody, where a lease row would block the session until the lease ran out; and a
//! holder that is alive but slow is never overtaken, so two processes never send one refresh
//! token (the official PDS would end the session). SQLite in WAL mode requires every process
//! using the file to be on one host, which is exactly where file locks work.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use atoauth::store::{RefreshGuard, StoreError, poll_for_lease};
use sha2::{Digest, Sha256};

/// The lock directory of one database file.
#[derive(Clone, Debug)]
pub(crate) struct FileLocks {
    dir: PathBuf,
}

impl FileLocks {
    /// The directory beside `database`, created private (0700) if needed.
    pub(crate) fn beside(database: &Path) -> io::Result<Self> {
        let mut name = database.as_os_str().to_owned();
        name.push(".locks");
        let dir = PathBuf::from(name);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(Self { dir })
    }

    /// The key's lock file. Keys name sessions (a DID and a session id), so the file name is a
    /// digest: directory listings reveal nothing.
    fn path(&self, key: &str) -> PathBuf {
        let digest = Sha256::digest(key.as_bytes());
        let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.lock"))
    }

    /// Waits up to `timeout` for the key's lock.
    pub(crate) async fn lock(
        &self,
        key: &str,
        timeout: Duration,
    ) -> Result<Box<dyn RefreshGuard>, StoreError> {
        let path = self.path(key);
        let mut held = None;
        poll_for_lease(key, timeout, || {
            let attempt = match try_lock(&path) {
                Ok(Some(file)) => {
                    held = Some(file);
                    Ok(true)
                }
                Ok(None) => Ok(false),
                Err(error) => Err(StoreError::backend(error)),
            };
            std::future::ready(attempt)
        })
        .await?;
        let file = held.ok_or_else(|| {
            StoreError::backend(io::Error::other("the file lock was taken but not kept"))
        })?;
        Ok(Box::new(FileGuard {
            path,
            file: Some(file),
        }))
    }
}

/// Opens the lock file and tries to lock it without waiting.
fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    // The previous holder removes the file before unlocking it. If that happened between our
    // open and our lock, we hold a lock on a file nobody else can find, while a newcomer may lock
    // a new file at the same path: only a lock on the file the path names now counts.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ours = file.metadata()?;
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {}
            Ok(_) => return Ok(None),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        }
    }
    Ok(Some(file))
}

/// A held file lock. Released on `release` or drop: the file is removed first (so the lock
/// directory does not grow with every session ever refreshed), then unlocked by closing it.
struct FileGuard {
    path: PathBuf,
    file: Option<File>,
}

#[async_trait::async_trait]
impl RefreshGuard for FileGuard {
    async fn release(self: Box<Self>) {
        drop(self);
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        // Windows cannot remove an open file; the empty file stays there and is reused.
        #[cfg(unix)]
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn a_held_key_blocks_another_opener_and_is_free_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::beside(&dir.path().join("a.db")).unwrap();
        let other = FileLocks::beside(&dir.path().join("a.db")).unwrap();
        let first = locks.lock("k", Duration::from_secs(1)).await.unwrap();
        let refused = other.lock("k", Duration::from_millis(100)).await;
        assert!(refused.is_err(), "a second opener must wait");
        assert!(
            other
                .lock("another", Duration::from_millis(100))
                .await
                .is_ok(),
            "keys are independent"
        );
        first.release().await;
        let second = other.lock("k", Duration::from_millis(100)).await.unwrap();
        drop(second);
        let names: Vec<_> = std::fs::read_dir(&locks.dir).unwrap().collect();
        assert!(names.is_empty(), "released locks leave no file: {names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn the_lock_directory_is_private_and_names_reveal_no_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::beside(&dir.path().join("b.db")).unwrap();
        let mode = std::fs::metadata(&locks.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let path = locks.path("did:plc:abc secret-session-id");
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(!name.contains("did") && !name.contains("secret"), "{name}");
    }
}
