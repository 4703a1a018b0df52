//! One connection for an application's occasional Redis commands beside the engine's own (kept drafts, the admin
//! app's sign-in throttle): opened on first use, shared by every caller, dropped after an error so that the next
//! command reconnects, and every step under a deadline, so a Redis that does not answer costs a caller at most that.

use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, RedisError};

use crate::RedisAddress;

/// A lazily opened, shared connection with deadlines. See the module documentation.
pub struct RedisCommands {
    client: Client,
    /// The connection, opened on first use and dropped after an error. A tokio `Mutex`: it is held across the
    /// connect, so that commands arriving while Redis is being reached wait for one connection instead of each opening
    /// its own; commands run on a clone (a multiplexed connection's handle), outside the lock.
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The deadline of a connect and of each command.
    timeout: Duration,
}

fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

impl RedisCommands {
    /// Commands to the Redis at `address`, each (and the connect) given at most `timeout`. Connects on first use.
    ///
    /// # Errors
    /// If the address is unusable ([`RedisAddress::client`]).
    pub fn new(address: &RedisAddress, timeout: Duration) -> Result<Self, RedisError> {
        Ok(RedisCommands { client: address.client()?, connection: tokio::sync::Mutex::new(None), timeout })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connection =
            tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection_with_config(&config))
                .await
                .map_err(|_| timed_out())??;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `command`; drops the connection when it fails, so the next command reconnects.
    ///
    /// # Errors
    /// Redis's error, or a timeout.
    pub async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, RedisError> {
        let mut connection = self.connection().await?;
        let result = tokio::time::timeout(self.timeout, command.query_async::<T>(&mut connection))
            .await
            .map_err(|_| timed_out())
            .and_then(|result| result);
        if result.is_err() {
            *self.connection.lock().await = None;
        }
        result
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
