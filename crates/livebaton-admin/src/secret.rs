//! The secret key base: given, or generated once and kept beside the data; and the data directory itself, which
//! only the server's user may enter (0700), as only it may read the secret (0600).

use std::path::Path;

use anyhow::Context;

use crate::accounts::random_token;

/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 32;

/// The secret to use: `given`, else the one stored in `data_dir/secret_key_base`, else a new one stored there.
///
/// # Errors
/// If a given secret is too short, or the file cannot be read or written.
pub fn secret_key_base(given: Option<&str>, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(secret) = given.filter(|secret| !secret.trim().is_empty()) {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_LEN,
            "--secret-key-base must be at least {MIN_SECRET_LEN} characters"
        );
        return Ok(secret.to_owned());
    }
    let path = data_dir.join("secret_key_base");
    if let Ok(stored) = std::fs::read_to_string(&path) {
        let stored = stored.trim().to_owned();
        if stored.len() >= MIN_SECRET_LEN {
            warn_if_readable_by_others(&path);
            return Ok(stored);
        }
    }
    create_data_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let secret = random_token(48);
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

/// Creates `dir` and its missing parents, readable only by this user (0700 on Unix; an existing directory is left as
/// it is).
///
/// # Errors
/// If the directory cannot be created.
pub fn create_data_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Logs a warning when a file that should be private (the secret, the database) can be read by other users: files
/// created before livebaton made them 0600 keep their mode.
pub fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "readable by other users; make it private: chmod 600 {}",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Writes `contents` to `path`, created readable and writable by this user only (0600 on Unix, set by `open` itself,
/// so the file is never readable by others, not even for a moment).
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A generated secret is 0600 inside a data directory created 0700 (with its missing parents), whatever the
    /// umask allows, and the next start reads the same secret back.
    #[test]
    fn the_generated_secret_and_its_directory_are_private() {
        let root = tempfile::tempdir().unwrap();
        let data_dir = root.path().join("parent").join("data");
        let secret = secret_key_base(None, &data_dir).unwrap();
        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(mode(&root.path().join("parent")), 0o700);
        assert_eq!(mode(&data_dir.join("secret_key_base")), 0o600);
        assert_eq!(secret_key_base(None, &data_dir).unwrap(), secret);
    }
}
