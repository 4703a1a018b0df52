//! One connection for an application's occasional Redis commands beside the engine's own (kept drafts, the admin
//! app's sign-in throttle): opened on first use, shared by every caller, dropped after an error so that the next
//! command reconnects, and every step under a deadline, so a Redis that does not answer costs a caller at most that.

use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{Cmd, FromRedisValue, RedisError};

use super::{Link, LinkConfig, SharedConnection, within};
use crate::RedisAddress;

/// A lazily opened, shared connection with deadlines. See the module documentation.
pub struct RedisCommands {
    link: Link,
    connection: SharedConnection<MultiplexedConnection>,
}

impl RedisCommands {
    /// Commands to the Redis at `address`, each (and the connect) given at most `timeout`. Connects on first use.
    ///
    /// # Errors
    /// If the address is unusable ([`RedisAddress::client`]).
    pub fn new(address: &RedisAddress, timeout: Duration) -> Result<Self, RedisError> {
        let config = LinkConfig {
            connect_timeout: timeout,
            command_timeout: timeout,
            // Never pinged nor reconnected by itself: the next command reconnects.
            ping_interval: timeout,
            reconnect_min: Duration::ZERO,
            reconnect_max: Duration::ZERO,
        };
        Ok(RedisCommands { link: Link::new(address, config)?, connection: SharedConnection::new() })
    }

    /// Runs `command`; drops the connection when it fails, so the next command reconnects.
    ///
    /// # Errors
    /// Redis's error, or a timeout.
    pub async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, RedisError> {
        let result = async {
            let mut connection = self.connection.get_or_open(|| self.link.command_connection()).await?;
            within(self.link.config().command_timeout, command.query_async::<T>(&mut connection)).await
        };
        result.await.map_err(|error| {
            self.connection.reset();
            error.into_redis_error()
        })
    }

    /// Runs the Lua `script` with `keys` and `args` (a slice or a tuple: each item one argument), with `EVAL`; see
    /// [`RedisCommands::query`].
    ///
    /// # Errors
    /// As [`RedisCommands::query`].
    pub async fn eval<T: FromRedisValue>(
        &self,
        script: &str,
        keys: &[String],
        args: impl ::redis::ToRedisArgs,
    ) -> Result<T, RedisError> {
        let mut command = ::redis::cmd("EVAL");
        command.arg(script).arg(keys.len()).arg(keys).arg(args);
        self.query(&command).await
    }
}
