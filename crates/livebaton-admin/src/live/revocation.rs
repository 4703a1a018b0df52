//! Revocation: when a user's password or role changes, or the account is deleted, what the old credentials gave ends.
//!
//! - In the database, in one transaction ([`Store::change_user`]): the user's token generation moves, so every API
//!   token issued before is refused, and their cookie sessions are deleted.
//! - On every node: their live sockets close with 1001 and the reason [`CREDENTIALS_REVOKED`]. The kick travels as the application message
//!   `credentials_changed {user_id}` on the PubSub topic [`USERS_TOPIC`]; every node subscribes at start
//!   ([`close_sockets_on_revocation`]) and closes that user's sockets on its own endpoint. The client reconnects, and
//!   its old credentials no longer open a socket.
//! - A write that was already under way on a socket is fenced by [`super::WriteAccess`]: live views and `edit:*`
//!   channels re-read the user before every write. That also covers a change made where no kick reaches: the
//!   `livebaton user add` command runs in its own process, and reaches the sockets only of a cluster, through Redis
//!   ([`announce_revocation_over_redis`], with `--redis-url`); a single node's sockets are fenced, not closed.

use std::time::Duration;

use livebaton::pubsub::{Message, PubSub, PubSubConfig, RecvError, RedisBackend, RedisConfig, Remote, RemoteMessage};
use livebaton_web::endpoint::{CREDENTIALS_REVOKED, LiveEndpoint};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::storage::{NewAuditEntry, StoreError, UserChange, UserChanged};

/// The PubSub topic of account changes that every node acts on.
pub const USERS_TOPIC: &str = "admin:users";

/// The event name of [`CredentialsChanged`].
pub const CREDENTIALS_CHANGED: &str = "credentials_changed";

/// What a socket was opened with, attached to its user (`UserInfo::with_data`): ending that one credential closes
/// only the sockets it opened, on every node ([`CredentialEnded`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketCredential {
    /// A browser session (the SHA-256 of its cookie, as the store keys it).
    Session(String),
    /// An API token (its id).
    Token(i64),
}

/// The message on [`USERS_TOPIC`] telling every node to close the sockets one credential of a user opened: one
/// session ended ("End" on the account page), one token revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialEnded {
    /// Whose.
    pub user_id: i64,
    /// Which credential.
    pub credential: SocketCredential,
}

impl Message for CredentialEnded {
    fn event(&self) -> &str {
        "credential_ended"
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }

    fn remote(&self) -> Option<&dyn Remote> {
        Some(self)
    }
}

impl RemoteMessage for CredentialEnded {
    const CODEC: &'static str = "livebaton_admin.credential_ended";
}

/// Tells every node (this one included) to close the sockets that `credential` of user `user_id` opened. Best effort,
/// as [`announce_revocation`]: the credential itself is already refused by the store.
pub fn announce_credential_ended(pubsub: &PubSub, user_id: i64, credential: SocketCredential) {
    if let Err(error) = pubsub.broadcast(USERS_TOPIC, CredentialEnded { user_id, credential }) {
        tracing::warn!(%error, user_id, "the nodes were not told to close an ended credential's sockets");
    }
}

/// The message on [`USERS_TOPIC`] telling every node to close a user's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsChanged {
    /// Whose credentials changed.
    pub user_id: i64,
}

impl Message for CredentialsChanged {
    fn event(&self) -> &str {
        CREDENTIALS_CHANGED
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }

    fn remote(&self) -> Option<&dyn Remote> {
        Some(self)
    }
}

impl RemoteMessage for CredentialsChanged {
    const CODEC: &'static str = "livebaton_admin.credentials_changed";
}

impl AppState {
    /// Changes or deletes user `id` ([`Store::change_user`](crate::storage::Store::change_user)) and, when that
    /// revoked their credentials, closes their live sockets on every node. The way for the server (and future admin
    /// pages) to change a password or role, or delete an account.
    ///
    /// # Errors
    /// As [`Store::change_user`](crate::storage::Store::change_user); nothing is closed then.
    pub async fn change_user(&self, id: i64, change: UserChange<'_>) -> Result<UserChanged, StoreError> {
        self.change_user_audited(id, change, None).await
    }

    /// [`AppState::change_user`] writing `audit` in the change's transaction.
    ///
    /// # Errors
    /// As [`Store::change_user`](crate::storage::Store::change_user).
    pub async fn change_user_audited(
        &self,
        id: i64,
        change: UserChange<'_>,
        audit: Option<NewAuditEntry>,
    ) -> Result<UserChanged, StoreError> {
        let changed = self.store.change_user_audited(id, change, audit).await?;
        if changed.revoked {
            // This node's sockets close now; the broadcast reaches every other node (and this one again, harmlessly).
            self.live.disconnect_user(&id.to_string(), CREDENTIALS_REVOKED);
            announce_revocation(&self.engine.pubsub, id);
        }
        Ok(changed)
    }
}

/// Tells every node (this one included) to close user `user_id`'s sockets. Best effort: a PubSub that cannot reach
/// the other nodes is logged, and their sockets' writes are still refused by [`super::WriteAccess`].
pub fn announce_revocation(pubsub: &PubSub, user_id: i64) {
    if let Err(error) = pubsub.broadcast(USERS_TOPIC, CredentialsChanged { user_id }) {
        tracing::warn!(%error, user_id, "the other nodes were not told to close the user's sockets");
    }
}

/// [`announce_revocation`] from a process that is not a node of the cluster (the `livebaton user add` command): joins
/// the Redis channel of `config` as a throwaway node, publishes, and waits until Redis acknowledged it.
///
/// # Errors
/// If Redis cannot be reached, refuses the message, or does not acknowledge it within 5 s.
pub async fn announce_revocation_over_redis(
    redis: impl Into<livebaton::RedisAddress>,
    config: RedisConfig,
    user_id: i64,
) -> anyhow::Result<()> {
    let backend = RedisBackend::connect(redis, None, config).await?;
    let pubsub = PubSub::with_backend(PubSubConfig::default(), backend.clone());
    announce_revocation(&pubsub, user_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = backend.stats();
        if stats.published > 0 {
            return Ok(());
        }
        anyhow::ensure!(stats.refused == 0, "Redis refused the message");
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "Redis did not acknowledge the message within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Subscribes to [`USERS_TOPIC`] now and, in a task, closes the sockets of every user a `credentials_changed` names
/// on `endpoint` (1001). The task ends with the PubSub (in practice, with the runtime). Must be called inside a Tokio
/// runtime.
pub fn close_sockets_on_revocation(pubsub: &PubSub, endpoint: &LiveEndpoint) -> tokio::task::JoinHandle<()> {
    pubsub.register::<CredentialsChanged>();
    // The users pages' refresh travels between nodes too, and so does the end of one session or token.
    pubsub.register::<crate::accounts::PeopleChanged>();
    pubsub.register::<CredentialEnded>();
    let mut subscription = pubsub.subscribe(USERS_TOPIC);
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        loop {
            match subscription.recv().await {
                Ok(broadcast) => {
                    if let Some(&CredentialsChanged { user_id }) = broadcast.downcast() {
                        tracing::info!(user_id, "credentials changed: closing the user's sockets");
                        endpoint.disconnect_user(&user_id.to_string(), CREDENTIALS_REVOKED);
                    } else if let Some(CredentialEnded { user_id, credential }) =
                        broadcast.downcast::<CredentialEnded>()
                    {
                        let opened_with = |user: &livebaton_web::channel::UserInfo| user.data() == Some(credential);
                        endpoint.disconnect_user_where(&user_id.to_string(), CREDENTIALS_REVOKED, opened_with);
                    }
                }
                // Only a flood of account changes could lag this topic; their writes are fenced regardless.
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "missed account changes: some revoked sockets may stay open");
                }
                Err(RecvError::Closed) => break,
            }
        }
    })
}
