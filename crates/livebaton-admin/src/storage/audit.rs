//! The audit trail of account changes: who invited, promoted, demoted, deactivated or deleted whom, and when.
//!
//! An entry is written in the same transaction as the change it describes ([`Store::change_user_audited`],
//! [`Store::create_link`](super::Store::create_link)), so the trail never claims a change that was rolled back nor
//! misses one that committed. Entries keep the subject's id and email without a foreign key: the trail outlives a
//! deleted account.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, decode_json, encode_json, now_ms};

/// Most entries one page of the trail returns.
pub const MAX_AUDIT_PAGE: i64 = 200;

/// What was done to an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// An invitation was sent (or re-sent).
    Invited,
    /// A pending invitation was revoked.
    InvitationRevoked,
    /// An invitation was accepted: the account exists.
    Joined,
    /// The role changed (`detail`: `from`, `to`).
    RoleChanged,
    /// The name changed.
    Renamed,
    /// The account was deactivated.
    Deactivated,
    /// The account was reactivated.
    Reactivated,
    /// The account was deleted.
    Deleted,
    /// A password reset link was made for the account.
    ResetRequested,
    /// The password was set through a reset link, or changed by its owner.
    PasswordChanged,
}

impl AuditAction {
    /// The name stored and sent (`role_changed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Invited => "invited",
            AuditAction::InvitationRevoked => "invitation_revoked",
            AuditAction::Joined => "joined",
            AuditAction::RoleChanged => "role_changed",
            AuditAction::Renamed => "renamed",
            AuditAction::Deactivated => "deactivated",
            AuditAction::Reactivated => "reactivated",
            AuditAction::Deleted => "deleted",
            AuditAction::ResetRequested => "reset_requested",
            AuditAction::PasswordChanged => "password_changed",
        }
    }
}

/// An entry to write: who (`actor`: id and name; `None` for the system or the subject themself through a link)
/// did `action` to whom.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    /// The actor's id and name.
    pub actor: Option<(i64, String)>,
    /// What was done.
    pub action: AuditAction,
    /// The subject's id (`None` for an invitation not accepted yet).
    pub subject_id: Option<i64>,
    /// The subject's email.
    pub subject_email: String,
    /// Details (`{"from": "editor", "to": "viewer"}`).
    pub detail: Map<String, Value>,
}

/// A stored entry, as the users page and `GET /api/audit` show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Id; newer entries have larger ids (the cursor of `before`).
    pub id: i64,
    /// When, ms since the Unix epoch.
    pub at: i64,
    /// Who did it (their id, `null` when not a user or since deleted).
    pub actor_id: Option<i64>,
    /// Their name then.
    pub actor_name: String,
    /// What (`role_changed`, …).
    pub action: String,
    /// To whom (id, `null` for a pending invitation).
    pub subject_id: Option<i64>,
    /// Their email.
    pub subject_email: String,
    /// Details.
    pub detail: Map<String, Value>,
}

fn entry(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor_id: row.try_get("actor_id")?,
        actor_name: row.try_get("actor_name")?,
        action: row.try_get("action")?,
        subject_id: row.try_get("subject_id")?,
        subject_email: row.try_get("subject_email")?,
        detail: decode_json(&detail, "detail")?,
    })
}

/// Writes `entry` inside the transaction of the change it describes.
pub(super) async fn write_entry(tx: &mut Transaction<'_, Any>, entry: &NewAuditEntry) -> Result<(), StoreError> {
    let (actor_id, actor_name) = match &entry.actor {
        Some((id, name)) => (Some(*id), name.as_str()),
        None => (None, ""),
    };
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor_name, action, subject_id, subject_email, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now_ms())
    .bind(actor_id)
    .bind(actor_name)
    .bind(entry.action.as_str())
    .bind(entry.subject_id)
    .bind(&entry.subject_email)
    .bind(encode_json(&entry.detail))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The audit trail, newest first: at most `limit` entries (capped at [`MAX_AUDIT_PAGE`]) older than the entry
    /// `before` (all when `None`).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn audit_trail(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor_id, actor_name, action, subject_id, subject_email, detail FROM audit_log \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, MAX_AUDIT_PAGE))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Writes an audit entry on its own (for changes that are not a store transaction of their own).
    ///
    /// # Errors
    /// [`StoreError::Database`] on database failure.
    pub async fn write_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        write_entry(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(())
    }
}
