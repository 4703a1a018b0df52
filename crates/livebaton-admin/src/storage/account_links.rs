//! One-time account links: invitations (they create an account with the password the invitee sets) and password
//! resets (they set a user's new password). Only the SHA-256 of a link's token is stored; a link works once, until it
//! expires, unless revoked, and using it is one transaction (the link is marked used in the same transaction that
//! creates the account or changes the password, so two uses racing each other cannot both succeed).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::{AuditAction, NewAuditEntry, write_entry};
use super::sessions::delete_sessions_of;
use super::users::User;
use super::{Store, StoreError, now_ms};
use crate::accounts::Role;

/// What a link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Creates the account `email` with `role` and the password the invitee sets.
    Invitation,
    /// Sets the password of the account `user_id`.
    Reset,
}

impl LinkKind {
    fn as_str(self) -> &'static str {
        match self {
            LinkKind::Invitation => "invitation",
            LinkKind::Reset => "reset",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "invitation" => Some(LinkKind::Invitation),
            "reset" => Some(LinkKind::Reset),
            _ => None,
        }
    }
}

/// A stored link (never its token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountLink {
    /// Id.
    pub id: i64,
    /// Invitation or reset.
    pub kind: LinkKind,
    /// The invitee's (or the account's) email.
    pub email: String,
    /// The invitee's name (invitations).
    pub name: String,
    /// The role the invitation gives.
    pub role: Role,
    /// The account a reset is for (an invitation: none until accepted).
    pub user_id: Option<i64>,
    /// Who made it.
    pub created_by: Option<i64>,
    /// Made, ms since the Unix epoch.
    pub created_at: i64,
    /// Expires, ms since the Unix epoch.
    pub expires_at: i64,
    /// When it was used, if it was.
    pub used_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl AccountLink {
    /// Whether it can still be used at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.used_at.is_none() && self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A link to make.
#[derive(Clone, Debug)]
pub struct NewLink {
    /// Invitation or reset.
    pub kind: LinkKind,
    /// Email (stored lowercase).
    pub email: String,
    /// Name.
    pub name: String,
    /// Role (for a reset, the account's current role; unused).
    pub role: Role,
    /// The account of a reset.
    pub user_id: Option<i64>,
    /// SHA-256 (hex) of the link's token.
    pub token_hash: String,
    /// Expiry, ms since the Unix epoch.
    pub expires_at: i64,
}

/// Why a link could not be used; each is a page the visitor understands.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No such link.
    #[error("this link is not valid")]
    Unknown,
    /// Used before.
    #[error("this link was already used")]
    Used,
    /// Too late.
    #[error("this link has expired")]
    Expired,
    /// Revoked by an admin (or replaced by a newer one).
    #[error("this link was withdrawn")]
    Revoked,
    /// An invitation whose email has an account by now.
    #[error("an account with this email exists already")]
    AccountExists,
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str = "id, kind, email, name, role, user_id, created_by, created_at, expires_at, used_at, revoked_at";

fn link(row: &AnyRow) -> Result<AccountLink, StoreError> {
    let (kind, role): (String, String) = (row.try_get("kind")?, row.try_get("role")?);
    Ok(AccountLink {
        id: row.try_get("id")?,
        kind: LinkKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("unknown link kind {kind:?}")))?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        user_id: row.try_get("user_id")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Stores a new link, and revokes the usable links of the same kind for the same email (a re-sent invitation
    /// or a second reset replaces the first), with `audit` in the same transaction.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn create_link(
        &self,
        new: &NewLink,
        created_by: Option<i64>,
        audit: &NewAuditEntry,
    ) -> Result<AccountLink, StoreError> {
        let now = now_ms();
        let email = new.email.trim().to_lowercase();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE account_links SET revoked_at = $1 WHERE email = $2 AND kind = $3 AND used_at IS NULL \
             AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&email)
        .bind(new.kind.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "INSERT INTO account_links (token_hash, kind, email, name, role, user_id, created_by, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
        ))
        .bind(&new.token_hash)
        .bind(new.kind.as_str())
        .bind(&email)
        .bind(&new.name)
        .bind(new.role.as_str())
        .bind(new.user_id)
        .bind(created_by)
        .bind(now)
        .bind(new.expires_at)
        .fetch_one(&mut *tx)
        .await?;
        write_entry(&mut tx, audit).await?;
        tx.commit().await?;
        link(&row)
    }

    /// The link whose token has this SHA-256, usable or not.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn find_link(&self, token_hash: &str) -> Result<Option<AccountLink>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM account_links WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(link).transpose()
    }

    /// Invitations not used, revoked or expired yet, newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn pending_invitations(&self) -> Result<Vec<AccountLink>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM account_links WHERE kind = 'invitation' AND used_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $1 ORDER BY id DESC"
        ))
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(link).collect()
    }

    /// Revokes link `id` if it is still usable; the link as it was, or `None` when there was nothing to revoke.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn revoke_link(&self, id: i64, audit: &NewAuditEntry) -> Result<Option<AccountLink>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE account_links SET revoked_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL \
             RETURNING {COLUMNS}"
        ))
        .bind(now_ms())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let revoked = link(&row)?;
        let mut audit = audit.clone();
        audit.subject_email.clone_from(&revoked.email);
        write_entry(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Uses the link whose token has this SHA-256, with the new password's hash: an invitation creates its account,
    /// a reset sets the account's password (revoking its sessions and tokens, as any password change). One
    /// transaction, which marks the link used first: of two uses racing, one wins and the other finds it used.
    ///
    /// # Errors
    /// [`LinkError`].
    pub async fn use_link(&self, token_hash: &str, password_hash: &str) -> Result<User, LinkError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let claimed = sqlx::query(&format!(
            "UPDATE account_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $1 RETURNING {COLUMNS}"
        ))
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let Some(row) = claimed else {
            drop(tx);
            // Why not: read it again outside the transaction.
            let found = self.find_link(token_hash).await?;
            return Err(match found {
                None => LinkError::Unknown,
                Some(found) if found.used_at.is_some() => LinkError::Used,
                Some(found) if found.revoked_at.is_some() => LinkError::Revoked,
                Some(_) => LinkError::Expired,
            });
        };
        let used = link(&row)?;
        let (user_row, action) = match used.kind {
            LinkKind::Invitation => {
                let inserted = sqlx::query(&format!(
                    "INSERT INTO users (email, name, password_hash, role, created_at, updated_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $5, $5, NULL) RETURNING {}",
                    super::users::COLUMNS
                ))
                .bind(&used.email)
                .bind(&used.name)
                .bind(password_hash)
                .bind(used.role.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|error| StoreError::taken_or(error, "email"));
                match inserted {
                    Ok(row) => (row, AuditAction::Joined),
                    Err(StoreError::Taken(_)) => return Err(LinkError::AccountExists),
                    Err(error) => return Err(error.into()),
                }
            }
            LinkKind::Reset => {
                let user_id = used.user_id.ok_or(LinkError::Unknown)?;
                let row = sqlx::query(&format!(
                    "UPDATE users SET password_hash = $1, token_generation = token_generation + 1, updated_at = $2 \
                     WHERE id = $3 AND deactivated_at IS NULL RETURNING {}",
                    super::users::COLUMNS
                ))
                .bind(password_hash)
                .bind(now)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from)?;
                let Some(row) = row else { return Err(LinkError::Unknown) };
                delete_sessions_of(&mut tx, user_id).await?;
                (row, AuditAction::PasswordChanged)
            }
        };
        let user = super::users::user(&user_row)?;
        let audit = NewAuditEntry {
            actor: Some((user.id, user.name.clone())),
            action,
            subject_id: Some(user.id),
            subject_email: user.email.clone(),
            detail: serde_json::Map::new(),
        };
        write_entry(&mut tx, &audit).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(user)
    }
}
