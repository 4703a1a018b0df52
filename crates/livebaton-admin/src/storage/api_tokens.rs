//! API tokens by id: each signed token names its row here, so its owner can list their tokens and revoke one without
//! touching the others (a password or role change still ends them all, through the user's token generation).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};

/// Longest token name.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

/// An API token as its owner sees it (never the token itself: it is shown once, when issued).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Id (carried, signed, in the token).
    pub id: i64,
    /// Whose.
    pub user_id: i64,
    /// What its owner called it (`"deploy script"`; `"sign-in"` when issued by `POST /api/tokens` without one).
    pub name: String,
    /// Issued, ms since the Unix epoch.
    pub created_at: i64,
    /// Expires, ms since the Unix epoch.
    pub expires_at: i64,
    /// Last used (at most one write a minute), if ever.
    pub last_used_at: Option<i64>,
    /// Revoked, if it was.
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, created_at, expires_at, last_used_at, revoked_at";

fn token(row: &AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Records a token issued to `user_id` named `name` (cut to [`MAX_TOKEN_NAME_CHARS`]), expiring at
    /// `expires_at`; its id goes into the signed token.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn create_api_token(&self, user_id: i64, name: &str, expires_at: i64) -> Result<ApiToken, StoreError> {
        let name: String = name.trim().chars().take(MAX_TOKEN_NAME_CHARS).collect();
        let row = sqlx::query(&format!(
            "INSERT INTO api_tokens (user_id, name, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
        ))
        .bind(user_id)
        .bind(if name.is_empty() { "sign-in" } else { name.as_str() })
        .bind(now_ms())
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await?;
        token(&row)
    }

    /// Whether token `id` of `user_id` is live (not revoked, not expired); records its use (at most once a minute).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn use_api_token(&self, id: i64, user_id: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let row = sqlx::query("SELECT last_used_at FROM api_tokens WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3")
            .bind(id)
            .bind(user_id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let last: Option<i64> = row.try_get("last_used_at")?;
        if last.is_none_or(|last| last < now - 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(true)
    }

    /// The user's tokens that have not expired, newest first (revoked ones included, marked).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn api_tokens_of(&self, user_id: i64) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 AND expires_at > $2 ORDER BY id DESC LIMIT 200"
        ))
        .bind(user_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token).collect()
    }

    /// Revokes token `id` if it is `user_id`'s; false when there was no such live token.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn revoke_api_token(&self, id: i64, user_id: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes tokens expired more than a day ago; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn delete_expired_api_tokens(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE expires_at < $1")
            .bind(now_ms() - 24 * 60 * 60 * 1000)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
