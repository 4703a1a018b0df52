//! Cookie sessions. The cookie carries a random id; the table keys sessions by the id's SHA-256, so reading the
//! database does not give anyone a usable session.

use serde::Serialize;
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

/// A session as its owner's account page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// SHA-256 of the cookie's id: names the session to end (it cannot be used as a cookie).
    pub id_hash: String,
    /// Signed in, ms since the Unix epoch.
    pub created_at: i64,
    /// Last active (a page or live page opened; at most one write a minute), if known.
    pub last_seen_at: Option<i64>,
    /// The browser's User-Agent when it signed in (at most 300 characters).
    pub user_agent: String,
    /// The client address it signed in from.
    pub address: String,
}

/// Longest User-Agent kept with a session.
const MAX_USER_AGENT_CHARS: usize = 300;

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
        self.create_session_from(session, "", "").await
    }

    /// Stores a new session started by the browser `user_agent` (cut to 300 characters) at `address`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn create_session_from(
        &self,
        session: &Session,
        user_agent: &str,
        address: &str,
    ) -> Result<(), StoreError> {
        let user_agent: String = user_agent.chars().take(MAX_USER_AGENT_CHARS).collect();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, token_generation, user_agent, \
             address, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $4)",
        )
        .bind(&session.id_hash)
        .bind(session.user_id)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at)
        .bind(session.token_generation)
        .bind(user_agent)
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live sessions of `user_id`, most recently active first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn sessions_of(&self, user_id: i64) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id_hash, s.created_at, s.last_seen_at, s.user_agent, s.address FROM sessions s \
             JOIN users u ON u.id = s.user_id AND u.token_generation = s.token_generation \
             WHERE s.user_id = $1 AND s.expires_at > $2 ORDER BY COALESCE(s.last_seen_at, s.created_at) DESC LIMIT 100",
        )
        .bind(user_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SessionInfo {
                    id_hash: row.try_get("id_hash")?,
                    created_at: row.try_get("created_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                    user_agent: row.try_get("user_agent")?,
                    address: row.try_get("address")?,
                })
            })
            .collect()
    }

    /// How many live sessions each user has, by user id (users without one are absent).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn session_counts(&self) -> Result<std::collections::HashMap<i64, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.user_id, COUNT(*) AS n FROM sessions s \
             JOIN users u ON u.id = s.user_id AND u.token_generation = s.token_generation \
             WHERE s.expires_at > $1 GROUP BY s.user_id",
        )
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("user_id")?, row.try_get("n")?))).collect()
    }

    /// Ends session `id_hash` if it is `user_id`'s; false when it was not.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn delete_session_of(&self, user_id: i64, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2")
            .bind(id_hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of `user_id` ("sign out everywhere"); returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn delete_all_sessions_of(&self, user_id: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = delete_sessions_of(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Records that session `id_hash` was active now (at most one write a minute).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn touch_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2 AND (last_seen_at IS NULL OR last_seen_at < $3)",
        )
        .bind(now)
        .bind(id_hash)
        .bind(now - 60_000)
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
