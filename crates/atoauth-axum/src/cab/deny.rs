//! Devices that may not have client assertions any more (U8), by the RFC 7638 thumbprint of
//! their DPoP key: denying one ends that device's session at its next refresh, and no other.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// A shared, changeable set of denied key thumbprints, optionally kept in a file (one thumbprint
/// per line, `#` comments) that is read again whenever it changes.
#[derive(Clone, Debug, Default)]
pub struct DenyList {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: RwLock<HashSet<String>>,
    file: Option<Watched>,
}

#[derive(Debug)]
struct Watched {
    path: PathBuf,
    /// The file's modification time when last read (`None`: not read, or missing).
    read_at: Mutex<Option<SystemTime>>,
}

impl DenyList {
    /// A list kept in `path` (it may not exist yet: then nobody is denied).
    #[must_use]
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys: RwLock::default(),
                file: Some(Watched {
                    path: path.into(),
                    read_at: Mutex::new(None),
                }),
            }),
        }
    }

    /// Denies the device whose DPoP key has thumbprint `jkt`.
    pub fn deny(&self, jkt: impl Into<String>) {
        self.keys_mut().insert(jkt.into());
    }

    /// Lets the device with thumbprint `jkt` ask again.
    pub fn allow(&self, jkt: &str) {
        self.keys_mut().remove(jkt);
    }

    fn keys_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<String>> {
        self.inner
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `jkt` is denied (reading the file again first when it changed).
    pub async fn contains(&self, jkt: &str) -> bool {
        if let Some(watched) = &self.inner.file {
            self.reload(watched).await;
        }
        self.inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(jkt)
    }

    async fn reload(&self, watched: &Watched) {
        let modified = tokio::fs::metadata(&watched.path)
            .await
            .and_then(|m| m.modified())
            .ok();
        let unchanged = {
            let read_at = watched
                .read_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *read_at == modified && modified.is_some()
        };
        if unchanged {
            return;
        }
        let text = tokio::fs::read_to_string(&watched.path)
            .await
            .unwrap_or_default();
        let keys = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default().trim())
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        *self.keys_mut() = keys;
        *watched
            .read_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = modified;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn u8_keys_are_denied_and_allowed_in_memory_and_from_a_file() {
        let list = DenyList::default();
        list.deny("a");
        assert!(list.contains("a").await);
        list.allow("a");
        assert!(!list.contains("a").await);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("denied");
        let list = DenyList::from_file(&path);
        assert!(!list.contains("b").await, "no file: nobody denied");
        std::fs::write(&path, "# lost phone\nb\n\n c # tablet\n").unwrap();
        assert!(list.contains("b").await);
        assert!(list.contains("c").await);
        // A change with a later modification time is read again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "c\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(!list.contains("b").await);
        assert!(list.contains("c").await);
    }
}
