//! Kept drafts in the database ([`livebaton::editing::KeptDraftStore`]): a single node's unsaved drafts survive its
//! restart. One row per form and user (`kept_drafts`, migration 6), the newest draft winning; a keep also drops the
//! expired rows and the oldest beyond the user's and the overall limit, and the hourly sweep drops expired rows of
//! forms nobody opens again. A cluster keeps them in Redis instead (the engine's default there).

use livebaton::BoxFuture;
use livebaton::editing::{Draft, EditTarget, KeptDraft, KeptDraftError, KeptDraftLimits, KeptDraftStore};
use sqlx::Row;

use super::{Store, StoreError, decode_json, encode_json, now_ms};
use crate::content::editing::ContentKind;

/// The row key of an admin form's session: its kind and the row's id. The table holds the admin's own forms only
/// (entity definitions and records, integer ids); any other target is refused, not stored under a wrong key.
fn row_key(target: &EditTarget) -> Result<(&'static str, i64), StoreError> {
    ContentKind::of(target)
        .map(|(kind, id)| (kind.name(), id))
        .ok_or_else(|| StoreError::Corrupt(format!("{target} is not an admin form; its draft is not kept here")))
}

/// Times in the engine are `u64` ms, columns are `BIGINT`: every real time fits.
fn column(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Keeps `draft` of `target` for its author unless a newer one is kept, then drops expired rows and the oldest
    /// beyond `limits` (rows kept in the same millisecond as the limit's cut all stay).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn keep_draft(
        &self,
        target: &EditTarget,
        draft: &Draft,
        limits: KeptDraftLimits,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        let kept = Self::upsert_kept_draft(&mut transaction, target, draft).await?;
        transaction.commit().await?;
        if kept {
            self.trim_kept_drafts(&[draft.updated_by.user_id.as_str()], limits).await?;
        }
        Ok(())
    }

    /// Keeps every draft of `drafts` in one transaction (a shutdown's open forms), then trims once.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure (nothing of the batch is kept then).
    pub async fn keep_drafts(
        &self,
        drafts: &[(EditTarget, std::sync::Arc<Draft>)],
        limits: KeptDraftLimits,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        let mut users = Vec::new();
        for (target, draft) in drafts {
            if Self::upsert_kept_draft(&mut transaction, target, draft).await? {
                users.push(draft.updated_by.user_id.as_str());
            }
        }
        transaction.commit().await?;
        users.sort_unstable();
        users.dedup();
        if !users.is_empty() {
            self.trim_kept_drafts(&users, limits).await?;
        }
        Ok(())
    }

    /// Writes `draft` unless a newer one is kept; returns whether it was written.
    async fn upsert_kept_draft(
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
        target: &EditTarget,
        draft: &Draft,
    ) -> Result<bool, StoreError> {
        let (kind, id) = row_key(target)?;
        let done = sqlx::query(
            "INSERT INTO kept_drafts (kind, target_id, user_id, draft, updated_at, version, kept_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (kind, target_id, user_id) DO UPDATE SET draft = excluded.draft, \
             updated_at = excluded.updated_at, version = excluded.version, kept_at = excluded.kept_at \
             WHERE kept_drafts.updated_at < excluded.updated_at \
             OR (kept_drafts.updated_at = excluded.updated_at AND kept_drafts.version < excluded.version)",
        )
        .bind(kind)
        .bind(id)
        .bind(&draft.updated_by.user_id)
        .bind(encode_json(draft))
        .bind(column(draft.updated_at))
        .bind(column(draft.version))
        .bind(now_ms())
        .execute(&mut **transaction)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Drops expired rows, then the oldest beyond the limit of each of `users` and of all.
    async fn trim_kept_drafts(&self, users: &[&str], limits: KeptDraftLimits) -> Result<(), StoreError> {
        self.purge_kept_drafts_before(now_ms().saturating_sub(column(limits.retention_ms()))).await?;
        for user in users {
            sqlx::query(
                "DELETE FROM kept_drafts WHERE user_id = $1 AND kept_at < \
                 (SELECT kept_at FROM kept_drafts WHERE user_id = $1 ORDER BY kept_at DESC LIMIT 1 OFFSET $2)",
            )
            .bind(*user)
            .bind(i64::try_from(limits.max_per_user.saturating_sub(1)).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        }
        sqlx::query(
            "DELETE FROM kept_drafts WHERE kept_at < \
             (SELECT kept_at FROM kept_drafts ORDER BY kept_at DESC LIMIT 1 OFFSET $1)",
        )
        .bind(i64::try_from(limits.max_drafts.saturating_sub(1)).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The draft of `target` kept for `user_id`, if kept after `since` (ms).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure, [`StoreError::Corrupt`] if the row cannot be read.
    pub async fn find_kept_draft(
        &self,
        target: &EditTarget,
        user_id: &str,
        since: i64,
    ) -> Result<Option<KeptDraft>, StoreError> {
        let (kind, id) = row_key(target)?;
        let row = sqlx::query(
            "SELECT draft, kept_at FROM kept_drafts \
             WHERE kind = $1 AND target_id = $2 AND user_id = $3 AND kept_at > $4 AND draft <> ''",
        )
        .bind(kind)
        .bind(id)
        .bind(user_id)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let draft: Draft = decode_json(&row.try_get::<String, _>("draft")?, "kept draft")?;
        let kept_at: i64 = row.try_get("kept_at")?;
        Ok(Some(KeptDraft { target: target.clone(), draft, kept_at: u64::try_from(kept_at).unwrap_or(0) }))
    }

    /// Discards the draft of `target` kept for `user_id` if it is the one written at `updated_at`; returns whether it
    /// was there. Its row stays, with an empty `draft`, until it expires: its version refuses a late keep of the same
    /// draft.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn discard_kept_draft(
        &self,
        target: &EditTarget,
        user_id: &str,
        updated_at: u64,
    ) -> Result<bool, StoreError> {
        let (kind, id) = row_key(target)?;
        let done = sqlx::query(
            "UPDATE kept_drafts SET draft = '' \
             WHERE kind = $1 AND target_id = $2 AND user_id = $3 AND updated_at = $4 AND draft <> ''",
        )
        .bind(kind)
        .bind(id)
        .bind(user_id)
        .bind(column(updated_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the drafts kept at or before `cutoff` (ms); returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn purge_kept_drafts_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM kept_drafts WHERE kept_at <= $1").bind(cutoff).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

/// The engine's [`KeptDraftStore`] over the database.
pub struct SqlKeptDrafts {
    store: Store,
    limits: KeptDraftLimits,
}

impl SqlKeptDrafts {
    /// Kept drafts in `store`, within `limits`.
    pub fn new(store: Store, limits: KeptDraftLimits) -> Self {
        SqlKeptDrafts { store, limits }
    }
}

impl KeptDraftStore for SqlKeptDrafts {
    fn keep<'a>(&'a self, target: &'a EditTarget, draft: &'a Draft) -> BoxFuture<'a, Result<(), KeptDraftError>> {
        Box::pin(
            async move { self.store.keep_draft(target, draft, self.limits).await.map_err(KeptDraftError::unavailable) },
        )
    }

    fn keep_batch<'a>(
        &'a self,
        drafts: &'a [(EditTarget, std::sync::Arc<Draft>)],
    ) -> BoxFuture<'a, Result<(), KeptDraftError>> {
        Box::pin(async move { self.store.keep_drafts(drafts, self.limits).await.map_err(KeptDraftError::unavailable) })
    }

    fn find<'a>(
        &'a self,
        target: &'a EditTarget,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeptDraft>, KeptDraftError>> {
        Box::pin(async move {
            let since = now_ms().saturating_sub(column(self.limits.retention_ms()));
            self.store.find_kept_draft(target, user_id, since).await.map_err(KeptDraftError::unavailable)
        })
    }

    fn discard<'a>(
        &'a self,
        target: &'a EditTarget,
        user_id: &'a str,
        updated_at: u64,
    ) -> BoxFuture<'a, Result<bool, KeptDraftError>> {
        Box::pin(async move {
            self.store.discard_kept_draft(target, user_id, updated_at).await.map_err(KeptDraftError::unavailable)
        })
    }
}
