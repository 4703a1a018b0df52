//! Users.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};
use crate::accounts::Role;

/// A user account. The password hash never leaves the server (it is skipped when serialised).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Email, lowercase.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Created, ms since the Unix epoch.
    pub created_at: i64,
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Email (stored lowercase).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string (hash with `accounts::hash_password`).
    pub password_hash: String,
    /// Role.
    pub role: Role,
}

const COLUMNS: &str = "id, email, name, password_hash, role, created_at";

fn user(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Creates a user.
    ///
    /// # Errors
    /// [`StoreError::Taken`] (`email`) if the email is in use.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        let now = now_ms();
        let row = sqlx::query(&format!(
            "INSERT INTO users (email, name, password_hash, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
        ))
        .bind(new.email.trim().to_lowercase())
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(new.role.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| StoreError::taken_or(error, "email"))?;
        user(&row)
    }

    /// Sets a user's password hash, role and name.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if there is no such user.
    pub async fn update_user(&self, id: i64, name: &str, password_hash: &str, role: Role) -> Result<User, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE users SET name = $1, password_hash = $2, role = $3, updated_at = $4 WHERE id = $5 RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        user(&row.ok_or(StoreError::NotFound)?)
    }

    /// The user with `email` (case-insensitive).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
    }

    /// The user with `id`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
    }

    /// Every user, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY id")).fetch_all(&self.pool).await?;
        rows.iter().map(user).collect()
    }

    /// Number of users with `role`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn count_users_with_role(&self, role: Role) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = $1")
            .bind(role.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}
