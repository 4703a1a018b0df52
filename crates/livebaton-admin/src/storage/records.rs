//! Records of entities.

use livebaton_content::{FieldDefinition, Status, ValidRecord, migrate_data, slugify, unique_slug};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Dialect, Fence, Store, StoreError, decode_json, encode_json, now_ms};

/// A stored record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// Id.
    pub id: i64,
    /// Its entity.
    pub entity_id: i64,
    /// Title.
    pub title: String,
    /// Slug, unique within the entity.
    pub slug: String,
    /// Status.
    pub status: Status,
    /// Values by field key.
    pub data: Map<String, Value>,
    /// Free-form metadata.
    pub metadata: Map<String, Value>,
    /// Creator.
    pub created_by: Option<i64>,
    /// Created, ms since the Unix epoch.
    pub created_at: i64,
    /// Last updated, ms since the Unix epoch.
    pub updated_at: i64,
    /// Who saved it last (its creator until someone else saves it); `None` when not known (a save before this was
    /// recorded, or a user since deleted).
    pub updated_by: Option<i64>,
    /// Bumped by every update; an update names the version it was based on.
    pub lock_version: i64,
    /// When it was moved to the trash (ms since the Unix epoch); `None` for a live record (and left out of JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// Who moved it to the trash, if known (left out of JSON when not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<i64>,
}

pub(super) const COLUMNS: &str = "id, entity_id, title, slug, status, data, metadata, created_by, created_at, updated_at, \
     updated_by, lock_version, deleted_at, deleted_by";

/// How often an insert retries when a concurrent insert took the slug it generated.
const SLUG_ATTEMPTS: usize = 5;

pub(super) fn record(row: &AnyRow) -> Result<Record, StoreError> {
    let status: String = row.try_get("status")?;
    let data: String = row.try_get("data")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(Record {
        id: row.try_get("id")?,
        entity_id: row.try_get("entity_id")?,
        title: row.try_get("title")?,
        slug: row.try_get("slug")?,
        status: Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?,
        data: decode_json(&data, "data")?,
        metadata: decode_json(&metadata, "metadata")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
        lock_version: row.try_get("lock_version")?,
        deleted_at: row.try_get("deleted_at")?,
        deleted_by: row.try_get("deleted_by")?,
    })
}

impl Store {
    /// The live records of an entity (not those in the trash), newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn list_records(&self, entity_id: i64) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM records WHERE entity_id = $1 AND deleted_at IS NULL ORDER BY id DESC"
        ))
        .bind(entity_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Record `id` of entity `entity_id`, unless it is in the trash.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_record(&self, entity_id: i64, id: i64) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM records WHERE entity_id = $1 AND id = $2 AND deleted_at IS NULL"
        ))
        .bind(entity_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Record `id`, whatever its entity, unless it is in the trash.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_record_by_id(&self, id: i64) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM records WHERE id = $1 AND deleted_at IS NULL"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// The live record of entity `entity_id` with `slug`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_record_by_slug(&self, entity_id: i64, slug: &str) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM records WHERE entity_id = $1 AND slug = $2 AND deleted_at IS NULL"
        ))
        .bind(entity_id)
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// How many records of `entity_id` (live or in the trash) hold a value in field `key`: anything but a missing
    /// key, `null`, `""` or `[]`. What a schema change that drops the field would delete, for its confirmation.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn count_records_with_value(&self, entity_id: i64, key: &str) -> Result<i64, StoreError> {
        let (sql, path) = match self.dialect {
            // json_type is NULL for a missing key and 'null' for JSON null.
            Dialect::Sqlite => (
                "SELECT COUNT(*) AS n FROM records WHERE entity_id = $1 AND json_type(data, $2) <> 'null' \
                 AND NOT (json_type(data, $2) = 'text' AND json_extract(data, $2) = '') \
                 AND NOT (json_type(data, $2) = 'array' AND json_array_length(data, $2) = 0)",
                format!("$.\"{}\"", key.replace('"', "\\\"")),
            ),
            Dialect::Postgres => (
                "SELECT COUNT(*) AS n FROM records WHERE entity_id = $1 AND (data::jsonb -> $2) IS NOT NULL \
                 AND (data::jsonb -> $2) NOT IN ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb)",
                key.to_owned(),
            ),
        };
        let row = sqlx::query(sql).bind(entity_id).bind(path).fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// Why a write fenced by `lock_version` on live record `id` matched no row: [`StoreError::RecordConflict`] with
    /// the row as it is now, or [`StoreError::NotFound`] (gone, or in the trash).
    pub(super) async fn why_not_written(&self, entity_id: i64, id: i64) -> StoreError {
        match self.find_record(entity_id, id).await {
            Ok(Some(current)) => StoreError::RecordConflict(Box::new(current)),
            Ok(None) => StoreError::NotFound,
            Err(error) => error,
        }
    }

    /// A free slug for `title` in the entity: `my-title`, else `my-title-2`, `my-title-3`, ….
    async fn free_slug(&self, entity_id: i64, title: &str) -> Result<String, StoreError> {
        let base = unique_slug(&slugify(title, '-'), |_| false);
        // Slugs contain only [a-z0-9-], so the base needs no LIKE escaping.
        let rows = sqlx::query("SELECT slug FROM records WHERE entity_id = $1 AND (slug = $2 OR slug LIKE $3)")
            .bind(entity_id)
            .bind(&base)
            .bind(format!("{base}-%"))
            .fetch_all(&self.pool)
            .await?;
        let taken: std::collections::HashSet<String> =
            rows.iter().map(|row| row.try_get::<String, _>("slug")).collect::<Result<_, _>>()?;
        Ok(unique_slug(&base, |candidate| taken.contains(candidate)))
    }

    /// Stores a new record (version 1), generating a unique slug from the title when none was given.
    ///
    /// # Errors
    /// [`StoreError::Taken`] (`slug`) if the slug asked for is in use.
    pub async fn insert_record(
        &self,
        entity_id: i64,
        valid: &ValidRecord,
        created_by: Option<i64>,
    ) -> Result<Record, StoreError> {
        for _ in 0..SLUG_ATTEMPTS {
            let slug = match &valid.slug {
                Some(slug) => slug.clone(),
                None => self.free_slug(entity_id, &valid.title).await?,
            };
            let now = now_ms();
            let inserted = sqlx::query(&format!(
                "INSERT INTO records (entity_id, title, slug, status, data, metadata, created_by, created_at, updated_at, \
                 updated_by, lock_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $7, 1) RETURNING {COLUMNS}"
            ))
            .bind(entity_id)
            .bind(&valid.title)
            .bind(&slug)
            .bind(valid.status.as_str())
            .bind(encode_json(&valid.data))
            .bind(encode_json(&valid.metadata))
            .bind(created_by)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| StoreError::taken_or(error, "slug"));
            match inserted {
                Ok(row) => return record(&row),
                // A generated slug was taken by a concurrent insert: pick the next one.
                Err(StoreError::Taken(_)) if valid.slug.is_none() => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Taken("slug"))
    }

    /// Replaces record `id` if it is still at `expected_lock_version` and `fence` still holds at commit time, as saved
    /// by `updated_by` (recorded only if that user exists: a save never fails because its author's account was
    /// deleted meanwhile). A record without a slug keeps its current one.
    ///
    /// # Errors
    /// [`StoreError::RecordConflict`] with the current row if it moved on; [`StoreError::NotOwner`] if the fence
    /// failed; [`StoreError::NotFound`]; [`StoreError::Taken`] (`slug`).
    pub async fn update_record(
        &self,
        entity_id: i64,
        id: i64,
        expected_lock_version: i64,
        valid: &ValidRecord,
        updated_by: Option<i64>,
        fence: Option<Fence<'_>>,
    ) -> Result<Record, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE records SET title = $1, slug = COALESCE($2, slug), status = $3, data = $4, metadata = $5, \
             updated_at = $6, updated_by = (SELECT id FROM users WHERE id = $7), lock_version = lock_version + 1 \
             WHERE entity_id = $8 AND id = $9 AND lock_version = $10 AND deleted_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(&valid.title)
        .bind(valid.slug.as_deref())
        .bind(valid.status.as_str())
        .bind(encode_json(&valid.data))
        .bind(encode_json(&valid.metadata))
        .bind(now_ms())
        .bind(updated_by)
        .bind(entity_id)
        .bind(id)
        .bind(expected_lock_version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|error| StoreError::taken_or(error, "slug"))?;
        let Some(row) = row else {
            drop(tx);
            return Err(self.why_not_written(entity_id, id).await);
        };
        if let Some(fence) = fence {
            fence()?;
        }
        let updated = record(&row)?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Carries the values of every record of `entity_id` over from fields `old` to fields `new`, on `connection` (the
    /// entity update's transaction), and returns how many records changed. A changed record gets a new `lock_version`,
    /// so a save based on the old row (a form loaded before the change) conflicts instead of writing old-type values.
    /// The rows are locked first (PostgreSQL: `FOR UPDATE`; SQLite: the transaction already holds the write lock).
    /// The conversion, which may sanitise, runs on a blocking thread.
    pub(super) async fn migrate_records(
        &self,
        connection: &mut AnyConnection,
        entity_id: i64,
        old: &[FieldDefinition],
        new: &[FieldDefinition],
    ) -> Result<usize, StoreError> {
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        };
        let rows = sqlx::query(&format!("SELECT id, data FROM records WHERE entity_id = $1{lock}"))
            .bind(entity_id)
            .fetch_all(&mut *connection)
            .await?;
        let stored: Vec<(i64, String)> =
            rows.iter().map(|row| Ok((row.try_get("id")?, row.try_get("data")?))).collect::<Result<_, StoreError>>()?;
        let (old, new) = (old.to_vec(), new.to_vec());
        let changed = tokio::task::spawn_blocking(move || -> Result<Vec<(i64, String)>, StoreError> {
            let mut changed = Vec::new();
            for (id, data) in stored {
                let data: Map<String, Value> = decode_json(&data, "data")?;
                if let Some(migrated) = migrate_data(&old, &new, &data) {
                    changed.push((id, encode_json(&migrated)));
                }
            }
            Ok(changed)
        })
        .await
        .map_err(|error| match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => StoreError::ShuttingDown,
        })??;
        let now = now_ms();
        for (id, data) in &changed {
            sqlx::query("UPDATE records SET data = $1, updated_at = $2, lock_version = lock_version + 1 WHERE id = $3")
                .bind(data)
                .bind(now)
                .bind(id)
                .execute(&mut *connection)
                .await?;
        }
        Ok(changed.len())
    }
}
