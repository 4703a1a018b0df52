//! People in the admin: what an admin may do to accounts (invite, reset a password, change a role or name,
//! deactivate, delete), what anyone may do to their own (name, password, sessions, API tokens), and the one-time links
//! that set a password. [`People`] is the one service the JSON API and the live admin pages both call (views get it
//! through their context; it holds no socket endpoint, so views can hold it), so the rules live once:
//!
//! - the actor is re-read from the store at the moment of the change, and must be an active admin (a demotion a second
//!   ago counts);
//! - each change writes its audit entry in its own transaction ([`Store::change_user_audited`]);
//! - a change that revokes (role, password, deactivation, deletion) closes the person's sockets on every node, this
//!   one included (`credentials_changed` on the PubSub, see `live::revocation`), so an open edit form turns
//!   read-only at once;
//! - every change is announced on [`PEOPLE_TOPIC`], so the users page of every admin, on every node, follows.

use std::sync::{Arc, OnceLock};

use livebaton::pubsub::{Message, PubSub, Remote, RemoteMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::mail::{Mail, Mailer};
use super::{MIN_PASSWORD_LEN, PasswordHasher, Role, TOKEN_TTL_MS, TokenSigner, random_token, sha256_hex};
use crate::storage::{
    AccountLink, ApiToken, AuditAction, LinkError, LinkKind, NewAuditEntry, NewLink, Store, StoreError, User,
    UserChange, UserChanged, now_ms,
};

/// How long an invitation link works.
pub const INVITATION_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// How long a password reset link works.
pub const RESET_TTL_MS: i64 = 60 * 60 * 1000;
/// Longest password accepted (Argon2 hashes anything, but a megabyte of password is only a way to burn CPU).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Longest display name.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest email (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Where a one-time link leads: `/account/link/<token>` (the page sets the password).
pub const LINK_PATH: &str = "/account/link";

/// The PubSub topic of account changes the users page follows (any node's change reaches every node's pages).
pub const PEOPLE_TOPIC: &str = "admin:people";

/// "Something about accounts changed": the users page re-reads its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleChanged;

impl Message for PeopleChanged {
    fn event(&self) -> &str {
        "people_changed"
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &json!({}))
    }

    fn remote(&self) -> Option<&dyn Remote> {
        Some(self)
    }
}

impl RemoteMessage for PeopleChanged {
    const CODEC: &'static str = "livebaton_admin.people_changed";
}

/// Why an account change was refused; `Display` is the message shown to the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The actor may not do this (not an admin, or no longer one, or deactivated).
    #[error("only an admin may manage accounts")]
    Forbidden,
    /// No such user (or link).
    #[error("no such user")]
    NotFound,
    /// The last active admin would be gone.
    #[error("this is the last active admin: make someone else an admin first")]
    LastAdmin,
    /// An invalid value: the field and why.
    #[error("{0} {1}")]
    Invalid(&'static str, String),
    /// The current password given for a change of one's own password is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Every password-hashing slot is busy.
    #[error(transparent)]
    Busy(#[from] super::HashingBusy),
    /// The database failed.
    #[error("the database is unavailable; nothing was changed")]
    Store(#[source] StoreError),
}

impl From<StoreError> for AccountError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => AccountError::NotFound,
            StoreError::LastAdmin => AccountError::LastAdmin,
            StoreError::Taken(_) => AccountError::Invalid("email", "has an account already".to_owned()),
            other => AccountError::Store(other),
        }
    }
}

/// A one-time link just made: its URL path (with the token, shown or mailed once, never stored) and its row.
#[derive(Clone, Debug)]
pub struct IssuedLink {
    /// `/account/link/<token>`.
    pub path: String,
    /// The stored link.
    pub link: AccountLink,
    /// Whether it was mailed to its address.
    pub mailed: bool,
}

/// A normalised email, or why it is not one.
pub fn valid_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let shaped = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    });
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(AccountError::Invalid("email", format!("must be at most {MAX_EMAIL_CHARS} characters")));
    }
    if !shaped || email.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"')) {
        return Err(AccountError::Invalid("email", "must be an email address like name@example.com".to_owned()));
    }
    Ok(email)
}

/// A trimmed display name of 1 to [`MAX_NAME_CHARS`] characters.
pub fn valid_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(AccountError::Invalid("name", "can't be blank".to_owned()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AccountError::Invalid("name", format!("must be at most {MAX_NAME_CHARS} characters")));
    }
    Ok(name.to_owned())
}

/// A password of [`MIN_PASSWORD_LEN`] to [`MAX_PASSWORD_CHARS`] characters.
pub fn valid_password(password: &str) -> Result<(), AccountError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(AccountError::Invalid("password", format!("must be at least {MIN_PASSWORD_LEN} characters")));
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(AccountError::Invalid("password", format!("must be at most {MAX_PASSWORD_CHARS} characters")));
    }
    Ok(())
}

/// "an admin", "an editor", "a viewer".
pub fn article(role: Role) -> &'static str {
    if role == Role::Viewer { "a" } else { "an" }
}

fn audit(actor: &User, action: AuditAction, subject_email: &str, detail: Map<String, Value>) -> NewAuditEntry {
    NewAuditEntry {
        actor: Some((actor.id, actor.name.clone())),
        action,
        subject_id: None,
        subject_email: subject_email.to_owned(),
        detail,
    }
}

/// Where links are mailed from: the mailer, and the public origin of the links.
type MailSetup = (Arc<dyn Mailer>, Arc<str>);

/// The accounts service (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct People {
    /// Accounts, links, the audit trail, tokens and sessions.
    store: Store,
    /// Announces revocations (every node closes the person's sockets) and account changes (users pages refresh).
    pubsub: PubSub,
    /// Bounds the Argon2id computations of new passwords, shared with sign-in.
    hasher: Arc<PasswordHasher>,
    /// Signs the API tokens it issues and checks the ones it is shown.
    signer: TokenSigner,
    /// Sends invitations and reset links by mail, with links on this public origin (`--smtp-url`, `--public-url`);
    /// unset: links are shown to the admin to pass on, and there is no self-service reset. A `OnceLock` shared by every
    /// clone: the views' copy is made before the server configures mail, once, at start.
    mail: Arc<OnceLock<MailSetup>>,
}

impl People {
    /// The service over `store`, announcing on `pubsub`, hashing through `hasher`, signing with `signer`.
    pub fn new(store: Store, pubsub: PubSub, hasher: Arc<PasswordHasher>, signer: TokenSigner) -> Self {
        People { store, pubsub, hasher, signer, mail: Arc::new(OnceLock::new()) }
    }

    /// Mails links from now on through `mailer`, as links on `public_url` (`https://cms.example.com`, where people reach
    /// the site: never taken from a request, which a visitor controls). Every clone of this service mails too. Once:
    /// false when mail was configured already (the first configuration stays).
    pub fn set_mail(&self, mailer: Arc<dyn Mailer>, public_url: &str) -> bool {
        self.mail.set((mailer, public_url.trim_end_matches('/').into())).is_ok()
    }

    /// Whether links are mailed (and "forgot password" exists).
    pub fn mails(&self) -> bool {
        self.mail.get().is_some()
    }

    /// Mails `issued` to its email, saying `what` it is for; false when no mailer is configured or sending failed
    /// (logged: the admin is then shown the link to pass on).
    async fn mail_link(&self, issued: &IssuedLink, subject: &str, intro: &str) -> bool {
        let Some((mailer, public_url)) = self.mail.get() else { return false };
        let url = format!("{public_url}{}", issued.path);
        let body = format!(
            "{intro}\n\n{url}\n\nThe link works once, until {} (UTC). If you did not expect this message, ignore it.\n",
            livebaton_web::collab::date_time(issued.link.expires_at)
        );
        let mail = Mail { to: issued.link.email.clone(), subject: subject.to_owned(), body };
        match mailer.send(mail).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "a link was not mailed");
                false
            }
        }
    }

    /// The actor as the store has them now, if they are an active admin.
    async fn admin_now(&self, actor_id: i64) -> Result<User, AccountError> {
        match self.store.find_user(actor_id).await? {
            Some(actor) if actor.active() && actor.role >= Role::Admin => Ok(actor),
            _ => Err(AccountError::Forbidden),
        }
    }

    /// Tells every users page that accounts changed. Best effort (a page missing it shows its list until reload).
    fn announce_people(&self) {
        if let Err(error) = self.pubsub.broadcast(PEOPLE_TOPIC, PeopleChanged) {
            tracing::warn!(%error, "the users pages were not told about an account change");
        }
    }

    /// Hashes `password` through the bounded hasher (503 when every slot stays busy).
    async fn hash_new_password(&self, password: &str) -> Result<String, AccountError> {
        valid_password(password)?;
        let permit = self.hasher.permit().await?;
        Ok(self.hasher.hash(permit, password).await)
    }

    /// Makes a one-time link of `kind` for `email`, revoking earlier usable ones of the same kind for that email.
    async fn issue_link(
        &self,
        actor: Option<&User>,
        kind: LinkKind,
        (email, name, role, user_id): (&str, &str, Role, Option<i64>),
        action: AuditAction,
    ) -> Result<IssuedLink, AccountError> {
        let token = random_token(32);
        let ttl = if kind == LinkKind::Invitation { INVITATION_TTL_MS } else { RESET_TTL_MS };
        let new = NewLink {
            kind,
            email: email.to_owned(),
            name: name.to_owned(),
            role,
            user_id,
            token_hash: sha256_hex(&token),
            expires_at: now_ms() + ttl,
        };
        let mut detail = Map::new();
        detail.insert("role".into(), json!(role.as_str()));
        let entry = NewAuditEntry {
            actor: actor.map(|actor| (actor.id, actor.name.clone())),
            action,
            subject_id: user_id,
            subject_email: email.to_owned(),
            detail,
        };
        let link = self.store.create_link(&new, actor.map(|actor| actor.id), &entry).await?;
        self.announce_people();
        Ok(IssuedLink { path: format!("{LINK_PATH}/{token}"), link, mailed: false })
    }

    /// Invites `email` with `role` (an admin only): a link that creates the account with the password the invitee
    /// sets. A second invitation to the same address replaces the first.
    ///
    /// # Errors
    /// [`AccountError`]: not an admin, an invalid email or name, an address that has an account.
    pub async fn invite(
        &self,
        actor_id: i64,
        email: &str,
        role: Role,
        name: Option<&str>,
    ) -> Result<IssuedLink, AccountError> {
        let actor = self.admin_now(actor_id).await?;
        let email = valid_email(email)?;
        let name = match name.map(str::trim).filter(|name| !name.is_empty()) {
            Some(name) => valid_name(name)?,
            None => email.split('@').next().unwrap_or_default().to_owned(),
        };
        if self.store.find_user_by_email(&email).await?.is_some() {
            return Err(AccountError::Invalid("email", "has an account already".to_owned()));
        }
        let mut issued = self
            .issue_link(Some(&actor), LinkKind::Invitation, (&email, &name, role, None), AuditAction::Invited)
            .await?;
        let intro =
            format!("{} invites you to livebaton as {} {role}. Choose your password here:", actor.name, article(role));
        issued.mailed = self.mail_link(&issued, "You are invited to livebaton", &intro).await;
        Ok(issued)
    }

    /// Revokes pending invitation `id` (an admin only).
    ///
    /// # Errors
    /// [`AccountError::NotFound`] when nothing was pending under that id.
    pub async fn revoke_invitation(&self, actor_id: i64, id: i64) -> Result<AccountLink, AccountError> {
        let actor = self.admin_now(actor_id).await?;
        let entry = audit(&actor, AuditAction::InvitationRevoked, "", Map::new());
        let revoked = self.store.revoke_link(id, &entry).await?.ok_or(AccountError::NotFound)?;
        self.announce_people();
        Ok(revoked)
    }

    /// A password reset link for user `user_id` (an admin only), replacing earlier ones. The password changes only
    /// when the link is used.
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn reset_link(&self, actor_id: i64, user_id: i64) -> Result<IssuedLink, AccountError> {
        let actor = self.admin_now(actor_id).await?;
        let user = self.store.find_user(user_id).await?.ok_or(AccountError::NotFound)?;
        if !user.active() {
            return Err(AccountError::Invalid("user", "is deactivated: reactivate the account first".to_owned()));
        }
        let subject = (user.email.as_str(), user.name.as_str(), user.role, Some(user.id));
        let mut issued = self.issue_link(Some(&actor), LinkKind::Reset, subject, AuditAction::ResetRequested).await?;
        let intro = format!("{} made a link for you to choose a new livebaton password:", actor.name);
        issued.mailed = self.mail_link(&issued, "Choose a new livebaton password", &intro).await;
        Ok(issued)
    }

    /// "Forgot password" (only where links are mailed): when `email` names an active account, a reset link is made and
    /// mailed, in a task of its own; whether it does is never said, and the caller answers at once in the same way
    /// either way, so neither the answer nor its time tells whether the address has an account.
    pub fn request_reset(&self, email: &str) {
        if !self.mails() {
            return;
        }
        let (people, email) = (self.clone(), email.trim().to_lowercase());
        tokio::spawn(async move {
            let user = match people.store.find_user_by_email(&email).await {
                Ok(Some(user)) if user.active() => user,
                Ok(_) => return,
                Err(error) => return tracing::warn!(%error, "a password reset was not looked up"),
            };
            let subject = (user.email.as_str(), user.name.as_str(), user.role, Some(user.id));
            match people.issue_link(None, LinkKind::Reset, subject, AuditAction::ResetRequested).await {
                Ok(issued) => {
                    let intro = "Someone (we hope you) asked to choose a new livebaton password for this address:";
                    people.mail_link(&issued, "Choose a new livebaton password", intro).await;
                }
                Err(error) => tracing::warn!(%error, "a password reset link was not made"),
            }
        });
    }

    /// Uses a one-time link with the password the visitor chose: creates the invited account or sets the reset one's
    /// password (revoking its sessions and tokens, and closing its sockets).
    ///
    /// # Errors
    /// [`LinkError`] for the link, [`AccountError`] for the password (checked first: a refused password does not use
    /// the link up).
    pub async fn use_link(&self, token: &str, password: &str) -> Result<Result<User, LinkError>, AccountError> {
        let hash = self.hash_new_password(password).await?;
        let used = self.store.use_link(&sha256_hex(token), &hash).await;
        if let Ok(user) = &used {
            // A reset ended the account's sessions and tokens in the store; close its sockets too.
            crate::live::announce_revocation(&self.pubsub, user.id);
            self.announce_people();
        }
        Ok(used)
    }

    /// Changes user `id`'s role, name or active state (an admin only), each audited; takes effect at once on every
    /// node (a demoted editor's open form turns read-only, a deactivated person's pages close).
    ///
    /// # Errors
    /// [`AccountError`]: not an admin, no such user, the last admin, an invalid name.
    pub async fn update_account(
        &self,
        actor_id: i64,
        id: i64,
        role: Option<Role>,
        active: Option<bool>,
        name: Option<&str>,
    ) -> Result<User, AccountError> {
        let actor = self.admin_now(actor_id).await?;
        let before = self.store.find_user(id).await?.ok_or(AccountError::NotFound)?;
        let name = name.map(valid_name).transpose()?;
        if let Some(name) = name.filter(|name| *name != before.name) {
            let mut detail = Map::new();
            detail.insert("from".into(), json!(before.name));
            detail.insert("to".into(), json!(name));
            let change = UserChange::Update { name: Some(&name), password_hash: None, role: None };
            self.change_user_with(id, change, audit(&actor, AuditAction::Renamed, &before.email, detail)).await?;
        }
        if let Some(role) = role.filter(|role| *role != before.role) {
            let mut detail = Map::new();
            detail.insert("from".into(), json!(before.role.as_str()));
            detail.insert("to".into(), json!(role.as_str()));
            let change = UserChange::Update { name: None, password_hash: None, role: Some(role) };
            self.change_user_with(id, change, audit(&actor, AuditAction::RoleChanged, &before.email, detail)).await?;
        }
        if let Some(active) = active.filter(|active| *active != before.active()) {
            let action = if active { AuditAction::Reactivated } else { AuditAction::Deactivated };
            let entry = audit(&actor, action, &before.email, Map::new());
            self.change_user_with(id, UserChange::SetActive(active), entry).await?;
        }
        self.store.find_user(id).await?.ok_or(AccountError::NotFound)
    }

    /// Deletes user `id` (an admin only), audited; their sockets close on every node.
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn delete_account(&self, actor_id: i64, id: i64) -> Result<(), AccountError> {
        let actor = self.admin_now(actor_id).await?;
        let before = self.store.find_user(id).await?.ok_or(AccountError::NotFound)?;
        let entry = audit(&actor, AuditAction::Deleted, &before.email, Map::new());
        self.change_user_with(id, UserChange::Delete, entry).await?;
        Ok(())
    }

    /// Changes user `id` with an audit entry in the same transaction; when that revoked their credentials, every
    /// node (this one too) closes their sockets; then tells the users pages.
    async fn change_user_with(
        &self,
        id: i64,
        change: UserChange<'_>,
        entry: NewAuditEntry,
    ) -> Result<UserChanged, AccountError> {
        let changed = self.store.change_user_audited(id, change, Some(entry)).await?;
        if changed.revoked {
            crate::live::announce_revocation(&self.pubsub, id);
        }
        self.announce_people();
        Ok(changed)
    }

    /// Changes one's own password (the current one required); every session and token of the account ends, this
    /// browser's included (the page signs in again).
    ///
    /// # Errors
    /// [`AccountError::WrongPassword`], an invalid new password, [`AccountError::Busy`].
    pub async fn change_own_password(&self, user_id: i64, current: &str, new: &str) -> Result<(), AccountError> {
        let user = self.store.find_user(user_id).await?.filter(User::active).ok_or(AccountError::Forbidden)?;
        valid_password(new)?;
        let permit = self.hasher.permit().await?;
        if !self.hasher.verify(permit, current, Some(&user.password_hash)).await {
            return Err(AccountError::WrongPassword);
        }
        let hash = self.hash_new_password(new).await?;
        let entry = NewAuditEntry {
            actor: Some((user.id, user.name.clone())),
            action: AuditAction::PasswordChanged,
            subject_id: Some(user.id),
            subject_email: user.email.clone(),
            detail: Map::new(),
        };
        let change = UserChange::Update { name: None, password_hash: Some(&hash), role: None };
        self.change_user_with(user.id, change, entry).await?;
        Ok(())
    }

    /// Changes one's own display name.
    ///
    /// # Errors
    /// An invalid name; the database.
    pub async fn rename_self(&self, user_id: i64, name: &str) -> Result<User, AccountError> {
        let name = valid_name(name)?;
        let change = UserChange::Update { name: Some(&name), password_hash: None, role: None };
        let changed = self.store.change_user(user_id, change).await?;
        self.announce_people();
        changed.user.ok_or(AccountError::NotFound)
    }

    /// Issues an API token named `name` for `user` (its row first, then the signed token naming it).
    ///
    /// # Errors
    /// The database.
    pub async fn issue_token(&self, user: &User, name: &str) -> Result<(String, ApiToken), StoreError> {
        let row = self.store.create_api_token(user.id, name, now_ms() + TOKEN_TTL_MS).await?;
        let token = self.signer.sign(user.id, user.token_generation, row.id, row.expires_at);
        Ok((token, row))
    }

    /// The user a bearer token names, if the token is genuine, unexpired, not revoked on its own, of the user's
    /// current token generation, and the user is active.
    ///
    /// # Errors
    /// The database.
    pub async fn bearer_user(&self, token: &str) -> Result<Option<User>, StoreError> {
        Ok(self.bearer(token).await?.map(|(user, _)| user))
    }

    /// [`People::bearer_user`] with the token's id (what a socket remembers it connected with).
    ///
    /// # Errors
    /// The database.
    pub async fn bearer(&self, token: &str) -> Result<Option<(User, i64)>, StoreError> {
        let Some(bearer) = self.signer.verify(token.trim(), now_ms()) else { return Ok(None) };
        let Some(token_id) = bearer.token_id else { return Ok(None) };
        if !self.store.use_api_token(token_id, bearer.user_id).await? {
            return Ok(None);
        }
        let user = self.store.find_user(bearer.user_id).await?;
        Ok(user.filter(|user| user.token_generation == bearer.generation && user.active()).map(|user| (user, token_id)))
    }
}
