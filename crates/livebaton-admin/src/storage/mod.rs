//! The content and account store on SQLite (default) or PostgreSQL.
//!
//! One implementation over sqlx's `Any` driver with the dialect differences isolated: the migrations (identity column
//! syntax) and one row lock (`FOR UPDATE` on PostgreSQL when an entity update rewrites its records; SQLite's write
//! transaction already excludes other writers); every query is plain SQL with `$n` placeholders that both databases
//! accept, and every column is `BIGINT` or `TEXT`. One contract suite (`tests/store_contract.rs`) runs against both.

mod account_links;
mod api_tokens;
mod audit;
mod entities;
mod kept_drafts;
mod migrations;
mod records;
mod sessions;
mod trash;
mod users;

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use account_links::{AccountLink, LinkError, LinkKind, NewLink};
pub use api_tokens::{ApiToken, MAX_TOKEN_NAME_CHARS};
pub use audit::{AuditAction, AuditEntry, MAX_AUDIT_PAGE, NewAuditEntry};
pub use entities::Entity;
pub use kept_drafts::SqlKeptDrafts;
pub use records::Record;
pub use sessions::{Session, SessionInfo};
pub use users::{NewUser, User, UserChange, UserChanged};

/// Which SQL database the store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (the default: one file, no server).
    Sqlite,
    /// PostgreSQL (shared by several nodes).
    Postgres,
}

impl Dialect {
    /// The dialect of a database URL.
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") { Dialect::Postgres } else { Dialect::Sqlite }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row.
    #[error("not found")]
    NotFound,
    /// The entity changed since the version the write was based on.
    #[error("this entity was changed by someone else (now at version {})", .0.lock_version)]
    EntityConflict(Box<Entity>),
    /// The record changed since the version the write was based on.
    #[error("this record was changed by someone else (now at version {})", .0.lock_version)]
    RecordConflict(Box<Record>),
    /// A unique value (entity name, record slug, email) is taken.
    #[error("{0} has already been taken")]
    Taken(&'static str),
    /// The editing session's owner token is no longer the owner's.
    #[error(transparent)]
    NotOwner(#[from] livebaton::editing::NotOwner),
    /// A stored document could not be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The change would leave no active admin: the last one can be neither demoted, deactivated nor deleted.
    #[error("this is the last active admin: make someone else an admin first")]
    LastAdmin,
    /// Work on the blocking pool was cancelled: the runtime is shutting down. Nothing was written.
    #[error("the server is shutting down; try again")]
    ShuttingDown,
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Taken`] naming `field`.
    fn taken_or(error: sqlx::Error, field: &'static str) -> Self {
        match &error {
            sqlx::Error::Database(database) if database.is_unique_violation() => StoreError::Taken(field),
            _ => StoreError::Database(error),
        }
    }
}

/// The store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

/// A check run inside a write's transaction just before it commits: the editing session's owner check, so a tab that
/// lost the baton while its save was in flight cannot commit.
pub type Fence<'a> = &'a (dyn Fn() -> Result<(), livebaton::editing::NotOwner> + Send + Sync);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`) and applies the migrations.
    ///
    /// # Errors
    /// [`StoreError`] if the database cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url);
        if dialect == Dialect::Sqlite {
            create_private_sqlite_file(url);
        }
        // SQLite allows one writer at a time; a small pool avoids "database is locked" churn.
        let max_connections = match dialect {
            Dialect::Sqlite => 4,
            Dialect::Postgres => 10,
        };
        // A database that does not answer must fail a request within a few seconds (a save then says "unavailable,
        // your draft is kept" while the client still waits for the reply), not after sqlx's default 30 s.
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await?;
        if dialect == Dialect::Sqlite {
            // WAL lets readers run while one connection writes; busy_timeout makes a second writer wait, not fail.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        migrations::migrator(dialect).await?.run(&pool).await?;
        Ok(Store { pool, dialect })
    }

    /// The database dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection pool, for health checks.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Creates the SQLite file of `url` empty and readable by this user only (0600 on Unix) when it does not exist yet,
/// so that SQLite, which creates a missing file with the umask's mode (often world-readable), opens this one; its
/// `-wal` and `-shm` files take the database file's mode. An existing file keeps its mode (a warning says when
/// others can read it); a URL that is not a plain file path (memory, percent-encoding) is left to sqlx.
fn create_private_sqlite_file(url: &str) {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || path.contains('%') || url.contains("mode=memory") {
        return;
    }
    let path = std::path::Path::new(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            crate::secret::warn_if_readable_by_others(path);
        }
        // A missing directory or no right to write it: sqlx's own error names the problem better.
        Err(_) => {}
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}

fn encode_json<T: serde::Serialize>(value: &T) -> String {
    // Maps with string keys and plain values always serialise.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
