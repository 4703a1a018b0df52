//! Running the roster's scripts ([`Node::call`]) on the node's shared command connection, and what their answers
//! and failures mean.

use std::sync::Arc;

use ::redis::aio::MultiplexedConnection;

use super::RedisRosterError;
use super::node::{Node, lock};
use super::scripts::Script;
use crate::redis_link::{LinkError, random_u64, within};

/// A script's answer.
pub(super) enum Reply {
    Ok { generation: Arc<str>, payload: String },
    Absent,
    Conflict,
}

/// Why a script did not run.
pub(super) enum CallError {
    /// The dataset has another generation (Redis lost its data).
    Reset(Arc<str>),
    /// This node was declared dead.
    Reaped,
    /// The connection failed or timed out; retrying may work.
    Conn(String),
    /// Redis refused the URL's credentials: fatal at start; a running node retries like [`CallError::Conn`] (the
    /// operator may be rotating the password).
    Auth(String),
    /// Redis refused; retrying will not help.
    Refused(String),
}

impl CallError {
    pub(super) fn describe(&self) -> String {
        match self {
            CallError::Reset(generation) => format!("the dataset changed (generation {generation})"),
            CallError::Reaped => "this node was declared dead".to_owned(),
            CallError::Conn(reason) | CallError::Auth(reason) | CallError::Refused(reason) => reason.clone(),
        }
    }

    /// What setting up the roster reports for this error.
    pub(super) fn into_setup_error(self, redis: &str) -> RedisRosterError {
        let redis = redis.to_owned();
        match self {
            CallError::Auth(reason) => RedisRosterError::Authentication { redis, reason },
            CallError::Refused(reason) => RedisRosterError::Refused { redis, reason },
            other => RedisRosterError::Unavailable { redis, reason: other.describe() },
        }
    }
}

impl From<LinkError> for CallError {
    fn from(error: LinkError) -> Self {
        if error.is_auth_failure() {
            CallError::Auth(error.to_string())
        } else if error.is_refusal() {
            CallError::Refused(error.to_string())
        } else {
            CallError::Conn(error.to_string())
        }
    }
}

impl Node {
    /// The command connection and the `run_id` of the Redis process it reaches, made when there is none.
    async fn conn(&self) -> Result<(MultiplexedConnection, Arc<str>), CallError> {
        self.conn.get_or_open(|| self.open_conn()).await
    }

    async fn open_conn(&self) -> Result<(MultiplexedConnection, Arc<str>), CallError> {
        let mut conn = self.link.command_connection().await?;
        let info =
            within(self.config.command_timeout, ::redis::cmd("INFO").arg("server").query_async::<String>(&mut conn))
                .await
                .map_err(CallError::from);
        let run_id: Arc<str> = match info {
            Ok(info) => Arc::from(run_id_of(&info).unwrap_or_default()),
            Err(CallError::Refused(reason)) => {
                tracing::warn!(node = %self.id, redis = %self.link.redis(), %reason, "Redis refused INFO: a Redis restored from a snapshot or failed over will not be recognised as a reset");
                Arc::from("")
            }
            Err(error) => return Err(error),
        };
        Ok((conn, run_id))
    }

    /// Runs a script (loading it first if Redis does not know it) with `known_gen` as the generation the caller
    /// believes in.
    pub(super) async fn call(&self, script: Script, known_gen: &str, args: &[String]) -> Result<Reply, CallError> {
        let (mut conn, run_id) = self.conn().await?;
        let mut loaded_now = false;
        loop {
            let cached = lock(&self.shas).get(&script).cloned();
            let sha = match cached {
                Some(sha) => sha,
                None => {
                    let sha: String = within(
                        self.config.command_timeout,
                        ::redis::cmd("SCRIPT").arg("LOAD").arg(script.source()).query_async(&mut conn),
                    )
                    .await
                    .map_err(|error| self.failed(error))?;
                    lock(&self.shas).insert(script, sha.clone());
                    loaded_now = true;
                    sha
                }
            };
            let mut cmd = ::redis::cmd("EVALSHA");
            cmd.arg(&sha)
                .arg(0)
                .arg(&self.config.prefix)
                .arg(known_gen)
                .arg(format!("{:016x}", random_u64()))
                .arg(&*self.id)
                .arg(if script.checks_reaped() { "1" } else { "0" })
                .arg(&*run_id)
                .arg(args);
            match within(self.config.command_timeout, cmd.query_async::<Vec<String>>(&mut conn)).await {
                Ok(reply) => return parse_reply(reply),
                Err(LinkError::Redis(error)) if error.code() == Some("NOSCRIPT") && !loaded_now => {
                    // Redis restarted and forgot the scripts: load it again, once.
                    lock(&self.shas).remove(&script);
                }
                Err(error) => return Err(self.failed(error)),
            }
        }
    }

    /// What a failed command means; a connection that failed (or whose credentials Redis no longer takes) is
    /// replaced by the next call.
    fn failed(&self, error: LinkError) -> CallError {
        let error = CallError::from(error);
        if matches!(error, CallError::Conn(_) | CallError::Auth(_)) {
            self.conn.reset();
        }
        error
    }
}

/// The `run_id` line of `INFO server`.
fn run_id_of(info: &str) -> Option<&str> {
    info.lines().find_map(|line| line.trim().strip_prefix("run_id:"))
}

fn parse_reply(reply: Vec<String>) -> Result<Reply, CallError> {
    let mut parts = reply.into_iter();
    let status = parts.next().unwrap_or_default();
    let generation: Arc<str> = Arc::from(parts.next().unwrap_or_default());
    let payload = parts.next().unwrap_or_default();
    match status.as_str() {
        "ok" => Ok(Reply::Ok { generation, payload }),
        "absent" => Ok(Reply::Absent),
        "conflict" => Ok(Reply::Conflict),
        "reset" => Err(CallError::Reset(generation)),
        "reaped" => Err(CallError::Reaped),
        other => Err(CallError::Refused(format!("unexpected answer {other:?} from a roster script"))),
    }
}
