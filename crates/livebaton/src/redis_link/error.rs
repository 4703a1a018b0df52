//! What can go wrong on a Redis link, and how each caller tells the cases apart: a deadline missed, credentials
//! refused (never fixed by retrying), a command refused (retrying the same command cannot help), or a lost connection
//! (anything else: reconnecting may help).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ::redis::{ErrorKind, RedisError, RetryMethod};

/// Why a step on a Redis link (a connect, a command) failed.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// Redis, or the connection to it, failed.
    Redis(RedisError),
    /// No answer within the deadline.
    Timeout(Duration),
}

impl LinkError {
    /// Redis refused the URL's credentials (see [`is_auth_failure`]).
    pub(crate) fn is_auth_failure(&self) -> bool {
        matches!(self, LinkError::Redis(error) if is_auth_failure(error))
    }

    /// Redis refused the command (see [`is_refusal`]).
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, LinkError::Redis(error) if is_refusal(error))
    }

    /// As a [`RedisError`], a missed deadline being an I/O timeout.
    pub(crate) fn into_redis_error(self) -> RedisError {
        match self {
            LinkError::Redis(error) => error,
            LinkError::Timeout(_) => RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        }
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Redis(error) => error.fmt(f),
            LinkError::Timeout(timeout) => write!(f, "no answer within {timeout:?}"),
        }
    }
}

/// Runs `future`, failing with [`LinkError`] when it fails or takes longer than `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    future: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, LinkError> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(LinkError::Redis(error)),
        Err(_) => Err(LinkError::Timeout(limit)),
    }
}

/// Redis answered with an error that sending the same commands again cannot fix (e.g. missing permission). Anything
/// else (I/O errors, timeouts, a server still loading) counts as a lost connection.
pub(crate) fn is_refusal(error: &RedisError) -> bool {
    matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
        && matches!(error.retry_method(), RetryMethod::NoRetry)
}

/// Redis refused the credentials (a wrong password or user: `WRONGPASS`), or wants some and got none (`NOAUTH`).
/// Retrying with the same URL cannot help.
pub(crate) fn is_auth_failure(error: &RedisError) -> bool {
    error.kind() == ErrorKind::AuthenticationFailed || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
}

/// What probably went wrong when connecting failed with `error` (empty when nothing is likely), for the message:
/// a certificate the roots do not vouch for, or a plain connection that a TLS-only server closed.
pub(crate) fn connect_hint(error: &RedisError, tls: bool) -> &'static str {
    // redis-rs keeps rustls's error behind a private representation; its text is rustls's `InvalidCertificate`.
    let certificate = error.to_string().contains("invalid peer certificate");
    let closed = error.is_connection_dropped() && !error.is_connection_refusal();
    if certificate {
        " (the server's certificate is not signed by a CA trusted here: give that CA's certificate with the Redis \
         address, or add it to the system's roots)"
    } else if closed && !tls {
        " (the server closed the connection: if it speaks TLS, use a rediss:// URL)"
    } else {
        ""
    }
}
