//! The data directory holds secrets (the session database with refresh tokens and DPoP keys,
//! the cookie key), so only its owner may list or enter it (Q2): created 0700, and an existing
//! one that others can reach is tightened, with a one-line warning, or refused when it is not
//! ours to tighten.

use std::path::Path;

use anyhow::Context;

/// Makes `dir` exist and be private to this user; returns the warning to print when an
/// existing directory had to be tightened.
///
/// # Errors
/// When it cannot be created, is not a directory, or others can reach it and it belongs to
/// someone else.
pub(crate) fn secure(dir: &Path) -> anyhow::Result<Option<String>> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let metadata = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the data directory {}", dir.display()))?;
    anyhow::ensure!(
        metadata.is_dir(),
        "the data directory {} is not a directory",
        dir.display()
    );
    tighten(dir, &metadata)
}

#[cfg(unix)]
fn tighten(dir: &Path, metadata: &std::fs::Metadata) -> anyhow::Result<Option<String>> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = metadata.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    let private = mode & 0o700;
    // Only the owner may change the mode: a refusal means the directory is someone else's.
    match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(private)) {
        Ok(()) => Ok(Some(format!(
            "warning: the data directory {} could be reached by other users (mode {mode:04o}); it is now {private:04o}",
            dir.display()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
            "the data directory {} can be reached by other users (mode {mode:04o}) and is not \
             ours to make private: pick another with --data-dir",
            dir.display()
        ),
        Err(error) => Err(error)
            .with_context(|| format!("cannot make the data directory {} private", dir.display())),
    }
}

#[cfg(not(unix))]
fn tighten(_: &Path, _: &std::fs::Metadata) -> anyhow::Result<Option<String>> {
    // Elsewhere the directory inherits the user profile's access control list.
    Ok(None)
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::secure;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_directory_is_private_and_an_open_one_is_tightened_once() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("a/b");
        assert_eq!(secure(&fresh).unwrap(), None);
        assert_eq!(mode(&fresh), 0o700);

        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let warning = secure(&open).unwrap().unwrap();
        assert!(
            warning.contains("mode 0755") && warning.contains("now 0700"),
            "{warning}"
        );
        assert_eq!(mode(&open), 0o700);
        assert_eq!(secure(&open).unwrap(), None, "already private: no warning");
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(secure(&file).is_err());
    }
}
