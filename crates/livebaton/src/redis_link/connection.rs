//! Opening connections to one Redis server: commands on a multiplexed connection, subscriptions on a connection of
//! their own, and reconnecting either with backoff until it works or the link is no longer wanted.

use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::watch;

use super::{LinkConfig, LinkError, RedisAddress, Subscription, within};

/// How to reach one Redis server, with the deadlines of every step. Cheap to clone into each task that connects.
#[derive(Clone)]
pub(crate) struct Link {
    client: Client,
    /// Host and port, without credentials, for logs and errors.
    redis: String,
    /// Whether the address is `rediss://`, for the hints of connection errors.
    tls: bool,
    config: LinkConfig,
}

impl Link {
    /// A link to `address`; nothing is opened yet.
    ///
    /// # Errors
    /// If the address is unusable ([`RedisAddress::client`]).
    pub(crate) fn new(address: &RedisAddress, config: LinkConfig) -> Result<Self, RedisError> {
        let client = address.client()?;
        let redis = client.get_connection_info().addr().to_string();
        Ok(Link { client, redis, tls: address.is_tls(), config })
    }

    /// Host and port, without credentials.
    pub(crate) fn redis(&self) -> &str {
        &self.redis
    }

    /// Whether connections use TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls
    }

    /// The link's timings.
    pub(crate) fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// A multiplexed connection for commands, opened within `connect_timeout`, each of whose commands fails after
    /// `command_timeout`. Opening it sends no command when the URL has no password: whoever must know that Redis
    /// answers sends one.
    pub(crate) async fn command_connection(&self) -> Result<MultiplexedConnection, LinkError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.command_timeout));
        within(self.config.connect_timeout, self.client.get_multiplexed_async_connection_with_config(&config)).await
    }

    /// A connection subscribed to `channel` (the `SUBSCRIBE` is confirmed when this returns).
    pub(crate) async fn subscribe(&self, channel: &str) -> Result<Subscription, LinkError> {
        let pubsub = within(self.config.connect_timeout, self.client.get_async_pubsub()).await?;
        let (mut sink, stream) = pubsub.split();
        within(self.config.command_timeout, sink.subscribe(channel)).await?;
        Ok(Subscription::new(sink, stream, &self.config))
    }

    /// Opens a connection with `open` until it succeeds, waiting as [`LinkConfig::backoff`] says before each attempt
    /// (the first at once). `None` when `stopped` changes or its sender is dropped meanwhile. `node` and `role` name
    /// the connection in logs.
    pub(crate) async fn reconnect<T, E, F, Fut>(
        &self,
        node: &str,
        role: &'static str,
        stopped: &mut watch::Receiver<bool>,
        mut open: F,
    ) -> Option<T>
    where
        E: Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let lost_at = Instant::now();
        let mut backoff = self.config.backoff();
        for attempt in 1u64.. {
            let attempt_result = tokio::select! {
                biased;
                _ = stopped.changed() => return None,
                result = async {
                    tokio::time::sleep(backoff.next_delay()).await;
                    open().await
                } => result,
            };
            match attempt_result {
                Ok(connection) => {
                    tracing::info!(node, redis = %self.redis, role, attempt, down_for = ?lost_at.elapsed(), "reconnected to Redis");
                    return Some(connection);
                }
                // Every attempt at debug level; a reminder at warn level about every 20 (100 s at the default maximum).
                Err(error) if attempt % 20 == 0 => {
                    tracing::warn!(node, redis = %self.redis, role, attempt, down_for = ?lost_at.elapsed(), %error, "still cannot reconnect to Redis");
                }
                Err(error) => {
                    tracing::debug!(node, redis = %self.redis, role, attempt, %error, "could not reconnect to Redis yet");
                }
            }
        }
        None
    }
}

/// A connection opened on first use and shared by every caller (a multiplexed connection is made for that), dropped
/// after a failure so that the next caller opens a new one. `C` is the connection's handle, with whatever its
/// opening learned (the roster keeps the `run_id` of the Redis process beside it).
pub(crate) struct SharedConnection<C> {
    /// A std `Mutex` around a clone-able handle: held only to copy or replace it.
    current: Mutex<Option<C>>,
    /// Serialises opening, so concurrent callers wait for one connection instead of each opening its own. A Tokio
    /// mutex: held across the connect.
    opening: tokio::sync::Mutex<()>,
}

impl<C: Clone> SharedConnection<C> {
    /// No connection yet.
    pub(crate) fn new() -> Self {
        SharedConnection { current: Mutex::new(None), opening: tokio::sync::Mutex::new(()) }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<C>> {
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection, opened with `open` when there is none.
    ///
    /// # Errors
    /// `open`'s error; the next call tries again.
    pub(crate) async fn get_or_open<E, Fut>(&self, open: impl FnOnce() -> Fut) -> Result<C, E>
    where
        Fut: Future<Output = Result<C, E>>,
    {
        if let Some(connection) = self.current().clone() {
            return Ok(connection);
        }
        let _opening = self.opening.lock().await;
        if let Some(connection) = self.current().clone() {
            return Ok(connection);
        }
        let connection = open().await?;
        *self.current() = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets the connection (it failed): the next caller opens a new one.
    pub(crate) fn reset(&self) {
        self.current().take();
    }
}
