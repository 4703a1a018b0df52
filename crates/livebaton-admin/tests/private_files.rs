//! Files only the server's user may read (mirrors `create_private_sqlite_file` in `src/storage/mod.rs` and
//! the unit test of `src/secret.rs` for the secret and the data directory): the SQLite database, with its `-wal`
//! and `-shm` files, is created 0600 whatever the umask allows.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use livebaton_admin::storage::Store;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())).permissions().mode() & 0o777
}

/// A new SQLite database and the files SQLite creates beside it are readable by their owner only; opening it again
/// keeps that.
#[tokio::test]
async fn a_new_sqlite_database_is_private() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("livebaton.db");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", file.display())).await.expect("the store opens");
    sqlx::query("CREATE TABLE probe (id BIGINT)").execute(store.pool()).await.expect("a write");
    assert_eq!(mode(&file), 0o600, "the database");
    for suffix in ["-wal", "-shm"] {
        let companion = dir.path().join(format!("livebaton.db{suffix}"));
        if companion.exists() {
            assert_eq!(mode(&companion), 0o600, "{suffix}");
        }
    }
    drop(store);
    let again = Store::connect(&format!("sqlite://{}?mode=rwc", file.display())).await.expect("opens again");
    assert_eq!(mode(&file), 0o600);
    drop(again);
}
