//! The trash: a deleted record keeps its row (id, slug, `lock_version`, data) with `deleted_at` set, so that it can be
//! restored exactly as it was; it is purged by an admin at once or by the sweep after the retention. Live-record
//! queries ([`super::records`]) skip trashed rows; a trashed record keeps its slug (a new record cannot take it).

use super::records::{COLUMNS, record};
use super::{Record, Store, StoreError, now_ms};

impl Store {
    /// Moves record `id` to the trash, if it is live and still at `expected_lock_version` (when given). Its
    /// `lock_version` stays, so a restore brings back the row exactly as it was.
    ///
    /// # Errors
    /// [`StoreError::RecordConflict`] if it moved on; [`StoreError::NotFound`] (also when it already is in the trash).
    pub async fn trash_record(
        &self,
        entity_id: i64,
        id: i64,
        expected_lock_version: Option<i64>,
        by: Option<i64>,
    ) -> Result<Record, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE records SET deleted_at = $1, deleted_by = $2 \
             WHERE entity_id = $3 AND id = $4 AND deleted_at IS NULL AND ($5 IS NULL OR lock_version = $5) \
             RETURNING {COLUMNS}"
        ))
        .bind(now_ms())
        .bind(by)
        .bind(entity_id)
        .bind(id)
        .bind(expected_lock_version)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => record(&row),
            None => Err(self.why_not_written(entity_id, id).await),
        }
    }

    /// Takes record `id` out of the trash, with the id, slug, `lock_version` and data it had.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if it is not in the trash (restored already, purged, or never deleted).
    pub async fn restore_record(&self, entity_id: i64, id: i64) -> Result<Record, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE records SET deleted_at = NULL, deleted_by = NULL \
             WHERE entity_id = $1 AND id = $2 AND deleted_at IS NOT NULL RETURNING {COLUMNS}"
        ))
        .bind(entity_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()?.ok_or(StoreError::NotFound)
    }

    /// The records of an entity in the trash, most recently deleted first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn list_trash(&self, entity_id: i64) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM records WHERE entity_id = $1 AND deleted_at IS NOT NULL ORDER BY deleted_at DESC, id DESC"
        ))
        .bind(entity_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Record `id` in the trash.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_trashed_record(&self, entity_id: i64, id: i64) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM records WHERE entity_id = $1 AND id = $2 AND deleted_at IS NOT NULL"
        ))
        .bind(entity_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Removes record `id` for good, live or in the trash; a live one only if still at `expected_lock_version` (when
    /// given).
    ///
    /// # Errors
    /// [`StoreError::RecordConflict`] if a live record moved on; [`StoreError::NotFound`].
    pub async fn purge_record(
        &self,
        entity_id: i64,
        id: i64,
        expected_lock_version: Option<i64>,
    ) -> Result<Record, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM records WHERE entity_id = $1 AND id = $2 \
             AND (deleted_at IS NOT NULL OR $3 IS NULL OR lock_version = $3) RETURNING {COLUMNS}"
        ))
        .bind(entity_id)
        .bind(id)
        .bind(expected_lock_version)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => record(&row),
            None => Err(self.why_not_written(entity_id, id).await),
        }
    }

    /// Purges the records that have been in the trash since before `cutoff` (ms since the Unix epoch); returns how
    /// many.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn purge_trash_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM records WHERE deleted_at IS NOT NULL AND deleted_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
