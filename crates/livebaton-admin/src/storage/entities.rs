//! Entity definitions.

use livebaton_content::{FieldDefinition, Status, ValidEntity, reshapes_data};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Fence, Store, StoreError, decode_json, encode_json, now_ms};

/// A stored entity definition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entity {
    /// Id.
    pub id: i64,
    /// Unique slug name.
    pub name: String,
    /// Singular display name.
    pub display_name: String,
    /// Plural display name.
    pub display_name_plural: String,
    /// Description.
    pub description: String,
    /// Icon name.
    pub icon: String,
    /// Status.
    pub status: Status,
    /// Fields, in order.
    pub fields_definition: Vec<FieldDefinition>,
    /// Free-form settings.
    pub settings: Map<String, Value>,
    /// Creator.
    pub created_by: Option<i64>,
    /// Created, ms since the Unix epoch.
    pub created_at: i64,
    /// Last updated, ms since the Unix epoch.
    pub updated_at: i64,
    /// Bumped by every update; an update names the version it was based on.
    pub lock_version: i64,
}

const COLUMNS: &str = "id, name, display_name, display_name_plural, description, icon, status, fields_definition, \
                       settings, created_by, created_at, updated_at, lock_version";

fn entity(row: &AnyRow) -> Result<Entity, StoreError> {
    let status: String = row.try_get("status")?;
    let fields: String = row.try_get("fields_definition")?;
    let settings: String = row.try_get("settings")?;
    Ok(Entity {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        display_name_plural: row.try_get("display_name_plural")?,
        description: row.try_get("description")?,
        icon: row.try_get("icon")?,
        status: Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?,
        fields_definition: decode_json(&fields, "fields_definition")?,
        settings: decode_json(&settings, "settings")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        lock_version: row.try_get("lock_version")?,
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds a definition's eight columns as `$1`…`$8`, in the order both the insert and the update name them.
fn bind_definition<'q>(query: AnyQuery<'q>, valid: &'q ValidEntity) -> AnyQuery<'q> {
    query
        .bind(&valid.name)
        .bind(&valid.display_name)
        .bind(&valid.display_name_plural)
        .bind(&valid.description)
        .bind(&valid.icon)
        .bind(valid.status.as_str())
        .bind(encode_json(&valid.fields_definition))
        .bind(encode_json(&valid.settings))
}

impl Store {
    /// Every entity, by display name.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn list_entities(&self) -> Result<Vec<Entity>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM entities ORDER BY display_name, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entity).collect()
    }

    /// The entity with `id`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_entity(&self, id: i64) -> Result<Option<Entity>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM entities WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entity).transpose()
    }

    /// The entity that was named `old_name` before a rename, unless an entity has that name now (then it is that
    /// one's, see [`Store::find_entity_by_name`]).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_renamed_entity(&self, old_name: &str) -> Result<Option<Entity>, StoreError> {
        let columns = COLUMNS.split(", ").map(|column| format!("e.{}", column.trim())).collect::<Vec<_>>().join(", ");
        let row = sqlx::query(&format!(
            "SELECT {columns} FROM entity_renames r JOIN entities e ON e.id = r.entity_id \
             WHERE r.old_name = $1 AND NOT EXISTS (SELECT 1 FROM entities live WHERE live.name = $1)"
        ))
        .bind(old_name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(entity).transpose()
    }

    /// The entity named `name`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_entity_by_name(&self, name: &str) -> Result<Option<Entity>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM entities WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entity).transpose()
    }

    /// Stores a new entity (version 1).
    ///
    /// # Errors
    /// [`StoreError::Taken`] (`name`) if the name is in use.
    pub async fn insert_entity(&self, valid: &ValidEntity, created_by: Option<i64>) -> Result<Entity, StoreError> {
        let now = now_ms();
        let sql = format!(
            "INSERT INTO entities (name, display_name, display_name_plural, description, icon, status, fields_definition, \
             settings, created_by, created_at, updated_at, lock_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 1) RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql);
        let row = bind_definition(query, valid)
            .bind(created_by)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| StoreError::taken_or(error, "name"))?;
        entity(&row)
    }

    /// Replaces entity `id` if it is still at `expected_lock_version` and `fence` (the editing session's owner check,
    /// if the write comes from an edit form) still holds at commit time.
    ///
    /// When fields were removed, added or retyped, every record's values are carried over to the new fields in the
    /// same transaction (see [`livebaton_content::migrate_data`]): values of removed keys are dropped, retyped values
    /// kept only when valid for their new type (text escaped into rich text), so no record holds data its definition
    /// does not describe, and a key that is removed and re-added starts empty.
    ///
    /// # Errors
    /// [`StoreError::EntityConflict`] with the current row if it moved on; [`StoreError::NotOwner`] if the fence
    /// failed; [`StoreError::NotFound`]; [`StoreError::Taken`] (`name`).
    pub async fn update_entity(
        &self,
        id: i64,
        expected_lock_version: i64,
        valid: &ValidEntity,
        fence: Option<Fence<'_>>,
    ) -> Result<Entity, StoreError> {
        // The definition being replaced says what records hold. It is read before the transaction; the update's
        // version check then proves it is still the one replaced (every change bumps the version).
        let before = self.find_entity(id).await?.ok_or(StoreError::NotFound)?;
        if before.lock_version != expected_lock_version {
            return Err(StoreError::EntityConflict(Box::new(before)));
        }
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE entities SET name = $1, display_name = $2, display_name_plural = $3, description = $4, icon = $5, \
             status = $6, fields_definition = $7, settings = $8, updated_at = $9, lock_version = lock_version + 1 \
             WHERE id = $10 AND lock_version = $11 RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql);
        let row = bind_definition(query, valid)
            .bind(now_ms())
            .bind(id)
            .bind(expected_lock_version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|error| StoreError::taken_or(error, "name"))?;
        let Some(row) = row else {
            drop(tx);
            return Err(match self.find_entity(id).await? {
                Some(current) => StoreError::EntityConflict(Box::new(current)),
                None => StoreError::NotFound,
            });
        };
        let updated = entity(&row)?;
        if updated.name != before.name {
            // Links to the old name keep working (redirected); the new name is nobody's old name any more.
            sqlx::query(
                "INSERT INTO entity_renames (old_name, entity_id, renamed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (old_name) DO UPDATE SET entity_id = excluded.entity_id, renamed_at = excluded.renamed_at",
            )
            .bind(&before.name)
            .bind(id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM entity_renames WHERE old_name = $1").bind(&updated.name).execute(&mut *tx).await?;
        }
        if reshapes_data(&before.fields_definition, &updated.fields_definition) {
            let migrated =
                self.migrate_records(&mut tx, id, &before.fields_definition, &updated.fields_definition).await?;
            if migrated > 0 {
                tracing::info!(entity = %updated.name, records = migrated, "record values carried over to new fields");
            }
        }
        if let Some(fence) = fence {
            fence()?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes entity `id` and its records, if it is still at `expected_lock_version` (when given).
    ///
    /// # Errors
    /// [`StoreError::EntityConflict`] if it moved on; [`StoreError::NotFound`].
    pub async fn delete_entity(&self, id: i64, expected_lock_version: Option<i64>) -> Result<Entity, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM entities WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let current = entity(&row.ok_or(StoreError::NotFound)?)?;
        if expected_lock_version.is_some_and(|expected| expected != current.lock_version) {
            return Err(StoreError::EntityConflict(Box::new(current)));
        }
        sqlx::query("DELETE FROM records WHERE entity_id = $1").bind(id).execute(&mut *tx).await?;
        // Also here: the foreign key cascades only where SQLite enforces foreign keys.
        sqlx::query("DELETE FROM entity_renames WHERE entity_id = $1").bind(id).execute(&mut *tx).await?;
        let deleted = sqlx::query("DELETE FROM entities WHERE id = $1 AND lock_version = $2")
            .bind(id)
            .bind(current.lock_version)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::EntityConflict(Box::new(current)));
        }
        tx.commit().await?;
        Ok(current)
    }
}
