//! The secret key base: given, or generated once and kept beside the data.

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
            return Ok(stored);
        }
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let secret = random_token(48);
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

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
