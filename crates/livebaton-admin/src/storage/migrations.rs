//! The schema migrations, embedded in the binary so a fresh machine needs nothing beside it.
//!
//! Each dialect has its own SQL files under `migrations/<dialect>/` (only the identity column syntax differs); they are
//! applied at start by sqlx's migrator, which records them in `_sqlx_migrations`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::Dialect;

/// `(version, description, sql)` of every migration, in order.
type Embedded = &'static [(i64, &'static str, &'static str)];

const SQLITE: Embedded = &[
    (1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, "token generation", include_str!("../../migrations/sqlite/0002_token_generation.sql")),
    (3, "session generation", include_str!("../../migrations/sqlite/0003_session_generation.sql")),
    (4, "trash", include_str!("../../migrations/sqlite/0004_trash.sql")),
    (5, "entity renames", include_str!("../../migrations/sqlite/0005_entity_renames.sql")),
    (6, "kept drafts", include_str!("../../migrations/sqlite/0006_kept_drafts.sql")),
    (7, "record updated_by", include_str!("../../migrations/sqlite/0007_record_updated_by.sql")),
    (8, "accounts", include_str!("../../migrations/sqlite/0008_accounts.sql")),
];
const POSTGRES: Embedded = &[
    (1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
    (2, "token generation", include_str!("../../migrations/postgres/0002_token_generation.sql")),
    (3, "session generation", include_str!("../../migrations/postgres/0003_session_generation.sql")),
    (4, "trash", include_str!("../../migrations/postgres/0004_trash.sql")),
    (5, "entity renames", include_str!("../../migrations/postgres/0005_entity_renames.sql")),
    (6, "kept drafts", include_str!("../../migrations/postgres/0006_kept_drafts.sql")),
    (7, "record updated_by", include_str!("../../migrations/postgres/0007_record_updated_by.sql")),
    (8, "accounts", include_str!("../../migrations/postgres/0008_accounts.sql")),
];

#[derive(Debug)]
struct EmbeddedSource(Embedded);

impl<'s> MigrationSource<'s> for EmbeddedSource {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let migrations = self
            .0
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, Cow::Borrowed(*sql), false)
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// The migrator for `dialect`.
pub(crate) async fn migrator(dialect: Dialect) -> Result<Migrator, sqlx::migrate::MigrateError> {
    let source = match dialect {
        Dialect::Sqlite => EmbeddedSource(SQLITE),
        Dialect::Postgres => EmbeddedSource(POSTGRES),
    };
    Migrator::new(source).await
}
