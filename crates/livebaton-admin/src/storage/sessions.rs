//! Cookie sessions. The cookie carries a random id; the table keys sessions by the id's SHA-256, so reading the
//! database does not give anyone a usable session.

use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, now_ms};

/// A signed-in browser session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie's id, hex.
    pub id_hash: String,
    /// Who is signed in.
    pub user_id: i64,
    /// The CSRF token bound to this session (forms and WebSocket connects must echo it).
    pub csrf_token: String,
    /// Expiry, ms since the Unix epoch.
    pub expires_at: i64,
    /// The user's token generation when they signed in (the one their password was checked against): the session
    /// is found only while the user still has it, so a sign-in that raced a password or role change is void.
    pub token_generation: i64,
}

/// Deletes every session of user `user_id`, inside the transaction `tx` (a change of their credentials).
pub(super) async fn delete_sessions_of(tx: &mut Transaction<'_, Any>, user_id: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut **tx).await?;
    Ok(done.rows_affected())
}

impl Store {
    /// Stores a new session.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, token_generation) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.id_hash)
        .bind(session.user_id)
        .bind(&session.csrf_token)
        .bind(now_ms())
        .bind(session.expires_at)
        .bind(session.token_generation)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired session with this id hash, if its user still has the token generation it was created at.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_session(&self, id_hash: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id_hash, s.user_id, s.csrf_token, s.expires_at, s.token_generation FROM sessions s \
             JOIN users u ON u.id = s.user_id AND u.token_generation = s.token_generation \
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Session {
            id_hash: row.try_get("id_hash")?,
            user_id: row.try_get("user_id")?,
            csrf_token: row.try_get("csrf_token")?,
            expires_at: row.try_get("expires_at")?,
            token_generation: row.try_get("token_generation")?,
        }))
    }

    /// Ends a session (sign-out).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn delete_expired_sessions(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now_ms()).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
