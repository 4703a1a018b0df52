//! The right of a live page or an `edit:*` channel to write, re-checked against the store before every write.
//!
//! A socket authenticated its user once, at connect. Their role may change, or their password, or the account may go,
//! while the socket stays open: the kick that closes it ([`super::revocation`]) may still be on its way, or may never
//! come (`livebaton user add` runs in another process). So a page or channel loads its user when it mounts or joins,
//! and before each write reads the user again (one lookup by primary key) and refuses when:
//! - the user is gone, or their token generation moved (a password or role change since the mount), or their role is
//!   no longer the role the socket authenticated with: "sign in again";
//! - their role no longer permits the write: "Your role changed: you may no longer edit."
//!
//! Saves and deletes always read the user. Drafts (one per debounced keystroke batch) may use a check made within the
//! last second ([`DRAFT_CHECK_AGE`]), so a demoted owner's drafts stop within a second without a query per draft.
//! A socket remembers the token generation it authenticated with ([`UserInfo::credential`]): a page mounted on it
//! after a password or role change is refused too.

use std::time::Duration;

use livebaton_web::channel::UserInfo;
use tokio::time::Instant;

use crate::accounts::Role;
use crate::storage::{Store, StoreError};

pub use livebaton_web::collab::DRAFT_CHECK_AGE;

/// How old a check an event may rely on: none for `save`, [`DRAFT_CHECK_AGE`] for anything else (drafts).
pub fn max_age(event: &str) -> Duration {
    if event == "save" { Duration::ZERO } else { DRAFT_CHECK_AGE }
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The user's role no longer permits the write.
    RoleChanged,
    /// The user's password or role changed, or the account was deleted, since the page mounted or the socket
    /// connected: they must sign in again.
    CredentialsChanged,
    /// The store could not be asked; nothing was written.
    Unavailable,
}

impl Refusal {
    /// The `reason` of a channel's error reply.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::RoleChanged => "role_changed",
            Refusal::CredentialsChanged => "credentials_changed",
            Refusal::Unavailable => "unavailable",
        }
    }

    /// What to tell the user.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::RoleChanged => "Your role changed: you may no longer edit.",
            Refusal::CredentialsChanged => "Your password or role changed: sign in again to edit.",
            Refusal::Unavailable => {
                "The database is unavailable: nothing was saved, and your draft is kept. Try again."
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// One page's or channel's right to write (see the module header).
#[derive(Debug)]
pub struct WriteAccess {
    /// The user, or `None` for a socket that is not a stored user's (a public page's visitor).
    user_id: Option<i64>,
    /// The user's token generation when this access was loaded.
    generation: i64,
    /// Which roles may make the writes this access guards.
    permits: fn(&Role) -> bool,
    /// Once refused for good (revoked, or never permitted), every later check says so without asking the store.
    refused: Option<Refusal>,
    /// When the store last confirmed the access.
    confirmed_at: Option<Instant>,
}

impl WriteAccess {
    /// The access of the socket user `user` to writes that `permits` allows, as the store says now.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be asked.
    pub async fn load(store: &Store, user: &UserInfo, permits: fn(&Role) -> bool) -> Result<Self, StoreError> {
        let user_id = user.id().parse::<i64>().ok();
        let stored = match user_id {
            Some(id) => store.find_user(id).await?,
            None => None,
        };
        let (generation, refused) = match stored {
            None => (0, Some(Refusal::CredentialsChanged)),
            // The socket authenticated another role, or other credentials (a password changed since it connected, and
            // no kick reached it): revoked.
            Some(stored)
                if Role::parse(user.role()) != Some(stored.role)
                    || u64::try_from(stored.token_generation).ok() != Some(user.credential()) =>
            {
                (stored.token_generation, Some(Refusal::CredentialsChanged))
            }
            Some(stored) if !permits(&stored.role) => (stored.token_generation, Some(Refusal::RoleChanged)),
            Some(stored) => (stored.token_generation, None),
        };
        Ok(WriteAccess { user_id, generation, permits, refused, confirmed_at: refused.is_none().then(Instant::now) })
    }

    /// Whether the user may make these writes, as of the load or the last check (a page shows its form editable, and
    /// may hold the baton, only then).
    pub fn permitted(&self) -> bool {
        self.refused.is_none()
    }

    /// Checks that the user may still write: asks the store unless it confirmed the access within `max_age`
    /// ([`Duration::ZERO`] for a save or a delete, [`DRAFT_CHECK_AGE`] for a draft).
    ///
    /// # Errors
    /// The [`Refusal`]; a revocation is final for this page or channel.
    pub async fn check(&mut self, store: &Store, max_age: Duration) -> Result<(), Refusal> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        if !max_age.is_zero() && self.confirmed_at.is_some_and(|at| at.elapsed() < max_age) {
            return Ok(());
        }
        let Some(user_id) = self.user_id else { return Err(Refusal::CredentialsChanged) };
        let stored = match store.find_user(user_id).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(%error, "the user could not be re-read before a write");
                return Err(Refusal::Unavailable);
            }
        };
        let refused = match stored {
            None => Refusal::CredentialsChanged,
            Some(stored) if !(self.permits)(&stored.role) => Refusal::RoleChanged,
            Some(stored) if stored.token_generation != self.generation => Refusal::CredentialsChanged,
            Some(_) => {
                self.confirmed_at = Some(Instant::now());
                return Ok(());
            }
        };
        metrics::counter!("livebaton_events_refused_total", "reason" => refused.reason()).increment(1);
        self.refused = Some(refused);
        Err(refused)
    }
}

/// Re-checks `access` right before a save, a create or a delete (`None`: the store could not be asked at mount).
///
/// # Errors
/// The [`Refusal`] to show the user; nothing may be written.
pub async fn check_before_write(access: &mut Option<WriteAccess>, store: &Store) -> Result<(), Refusal> {
    match access {
        Some(access) => access.check(store, Duration::ZERO).await,
        None => Err(Refusal::Unavailable),
    }
}
