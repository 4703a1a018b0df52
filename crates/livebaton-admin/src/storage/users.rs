//! Users, and the one way their credentials change: [`Store::change_user`], which revokes what the old password or
//! role gave (API tokens through the user's token generation, cookie sessions by deleting them) in one transaction,
//! and never leaves the store without an active admin.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::{NewAuditEntry, write_entry};
use super::sessions::delete_sessions_of;
use super::{Dialect, Store, StoreError, now_ms};
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
    /// When the account was deactivated (it cannot sign in); `None` while active.
    pub deactivated_at: Option<i64>,
    /// The last sign-in or live page opened, ms since the Unix epoch; `None` before the first.
    pub last_seen_at: Option<i64>,
    /// How many times the password or role changed. API tokens carry the generation they were issued at and are
    /// refused once it moves ([`Store::change_user`]).
    #[serde(skip)]
    pub token_generation: i64,
}

impl User {
    /// Whether the account may sign in (it was not deactivated).
    pub fn active(&self) -> bool {
        self.deactivated_at.is_none()
    }
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

/// A change to an account, for [`Store::change_user`].
#[derive(Clone, Copy, Debug)]
pub enum UserChange<'a> {
    /// New values; `None` keeps the current one. Pass a password hash only for a new password (a fresh hash of the
    /// same password differs too, and revokes).
    Update {
        /// Display name.
        name: Option<&'a str>,
        /// Argon2id PHC string of the new password.
        password_hash: Option<&'a str>,
        /// Role.
        role: Option<Role>,
    },
    /// Deactivates (`false`: the account cannot sign in, and everything it held is revoked) or reactivates it.
    SetActive(bool),
    /// Deletes the account.
    Delete,
}

impl UserChange<'_> {
    /// Whether the change can leave the store without an active admin: a role change, a deactivation, a deletion.
    fn may_remove_an_admin(&self) -> bool {
        match self {
            UserChange::Update { role, .. } => role.is_some_and(|role| role != Role::Admin),
            UserChange::SetActive(active) => !active,
            UserChange::Delete => true,
        }
    }
}

/// What [`Store::change_user`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserChanged {
    /// The account as it is now; `None` once deleted.
    pub user: Option<User>,
    /// Whether the user's credentials were revoked (the password or role changed, or the account was deleted): their
    /// token generation moved and their sessions are gone. Their live sockets must be closed next.
    pub revoked: bool,
}

pub(super) const COLUMNS: &str =
    "id, email, name, password_hash, role, created_at, deactivated_at, last_seen_at, token_generation";

pub(super) fn user(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        created_at: row.try_get("created_at")?,
        deactivated_at: row.try_get("deactivated_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        token_generation: row.try_get("token_generation")?,
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

    /// Sets a user's password hash, role and name, through [`Store::change_user`] (so a new password or role
    /// revokes the user's tokens and sessions).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if there is no such user.
    pub async fn update_user(&self, id: i64, name: &str, password_hash: &str, role: Role) -> Result<User, StoreError> {
        let change = UserChange::Update { name: Some(name), password_hash: Some(password_hash), role: Some(role) };
        self.change_user(id, change).await?.user.ok_or(StoreError::NotFound)
    }

    /// Changes or deletes user `id`. Every change of a password or role, and every deletion, goes through here: when
    /// the password hash or the role actually changes, or the user is deleted, the user's token generation moves
    /// (every API token issued before is refused from now on) and their cookie sessions are deleted, in the same
    /// transaction as the change. A change of the name alone revokes nothing.
    ///
    /// The caller then closes the user's live sockets when [`UserChanged::revoked`] says so; the application does both
    /// in [`crate::app::AppState::change_user`], which should be preferred wherever the server runs.
    ///
    /// The last active admin can be neither demoted, deactivated nor deleted, also under concurrent changes: the check
    /// counts the active admins after the write, in the same transaction, and on PostgreSQL the active admins' rows are
    /// locked first, so two transactions demoting the last two admins run one after the other and the second sees the
    /// first's demotion (SQLite runs one writing transaction at a time anyway).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if there is no such user; [`StoreError::LastAdmin`]; [`StoreError::Database`].
    pub async fn change_user(&self, id: i64, change: UserChange<'_>) -> Result<UserChanged, StoreError> {
        self.change_user_audited(id, change, None).await
    }

    /// [`Store::change_user`], writing `audit` in the same transaction (when given; its `subject_id` is set to `id`).
    ///
    /// # Errors
    /// As [`Store::change_user`].
    pub async fn change_user_audited(
        &self,
        id: i64,
        change: UserChange<'_>,
        audit: Option<NewAuditEntry>,
    ) -> Result<UserChanged, StoreError> {
        let mut tx = self.pool.begin().await?;
        let guard_admins = change.may_remove_an_admin();
        if guard_admins && self.dialect == Dialect::Postgres {
            sqlx::query("SELECT id FROM users WHERE role = 'admin' AND deactivated_at IS NULL FOR UPDATE")
                .execute(&mut *tx)
                .await?;
        }
        // Writes first on SQLite, so it takes its write lock at the first statement (a read first would have to
        // upgrade its lock, which fails at once under a concurrent writer instead of waiting). The subject's role
        // before the change comes from a write that changes nothing: only removing an active admin is guarded (a
        // store without any admin, as tests make, may still change its other users).
        let mut was_active_admin = false;
        if guard_admins {
            let before =
                sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1 RETURNING role, deactivated_at")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
            let (role, deactivated_at): (String, Option<i64>) =
                (before.try_get("role")?, before.try_get("deactivated_at")?);
            was_active_admin = role == Role::Admin.as_str() && deactivated_at.is_none();
        }
        let (user, revoked) = match change {
            UserChange::Update { name, password_hash, role } => {
                let role = role.map(|role| role.as_str());
                // Compares with the values before the change: SET expressions read the old row.
                let bumped = sqlx::query(
                    "UPDATE users SET token_generation = token_generation + 1 \
                     WHERE id = $1 AND (COALESCE($2, password_hash) <> password_hash OR COALESCE($3, role) <> role)",
                )
                .bind(id)
                .bind(password_hash)
                .bind(role)
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query(&format!(
                    "UPDATE users SET name = COALESCE($1, name), password_hash = COALESCE($2, password_hash), \
                     role = COALESCE($3, role), updated_at = $4 WHERE id = $5 RETURNING {COLUMNS}"
                ))
                .bind(name)
                .bind(password_hash)
                .bind(role)
                .bind(now_ms())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                (Some(user(&row.ok_or(StoreError::NotFound)?)?), bumped.rows_affected() > 0)
            }
            UserChange::SetActive(active) => {
                // Deactivating revokes like a password change; reactivating gives nothing back (the old sessions and
                // tokens stay void, the person signs in again).
                let row = sqlx::query(&format!(
                    "UPDATE users SET deactivated_at = CASE WHEN $1 = 1 THEN NULL ELSE COALESCE(deactivated_at, $2) END, \
                     token_generation = token_generation + CASE WHEN $1 = 1 OR deactivated_at IS NOT NULL THEN 0 ELSE 1 END, \
                     updated_at = $2 WHERE id = $3 RETURNING {COLUMNS}"
                ))
                .bind(i64::from(active))
                .bind(now_ms())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                (Some(user(&row.ok_or(StoreError::NotFound)?)?), !active)
            }
            UserChange::Delete => {
                let deleted = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
                if deleted.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                (None, true)
            }
        };
        if was_active_admin {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND deactivated_at IS NULL")
                .fetch_one(&mut *tx)
                .await?;
            let admins: i64 = row.try_get("n")?;
            if admins == 0 {
                // Dropping the transaction rolls the change back.
                return Err(StoreError::LastAdmin);
            }
        }
        if revoked {
            // Also on delete: the foreign key cascades only where SQLite enforces foreign keys.
            delete_sessions_of(&mut tx, id).await?;
        }
        if let Some(mut audit) = audit {
            audit.subject_id = Some(id);
            write_entry(&mut tx, &audit).await?;
        }
        tx.commit().await?;
        Ok(UserChanged { user, revoked })
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

    /// Records that user `id` was seen now (signed in, opened a live page). Best effort, and at most once a minute per
    /// user, so busy pages do not write on every mount.
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn touch_user(&self, id: i64) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query("UPDATE users SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $3)")
            .bind(now)
            .bind(id)
            .bind(now - 60_000)
            .execute(&self.pool)
            .await?;
        Ok(())
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
