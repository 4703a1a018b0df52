//! The sign-in throttle of a cluster: the rules of [`super::Throttle`], counted in Redis, so that every node sees every
//! failure and N nodes do not allow N× the guesses.
//!
//! Each key of the local throttle is a Redis hash (`failures`, `open_at` in ms) under the prefix, and a known address
//! is a plain key; two small Lua scripts check and count (or undo, on success) all of an attempt's keys in one atomic
//! step, with Redis's own clock (`TIME`), so the nodes' clocks do not matter. A key expires `window` after it reopens,
//! which is when the local throttle forgets it; a known address after 30 days. Memory stays bounded without a key cap:
//! a node counts an attempt only when it holds a hashing permit, so keys are made at most at the nodes' hashing rate
//! and each lives at most the window plus its delay.
//!
//! Every command has a deadline. The caller ([`super::SignInThrottle`]) falls back to the node's own throttle when
//! Redis fails, so sign-in keeps working (throttled per node) while Redis is away.

use std::net::IpAddr;
use std::time::Duration;

use livebaton::redis::RedisError;
use livebaton::{RedisAddress, RedisCommands};

use super::throttle::{FIRST_DELAY, KNOWN_FOR, KeyKind, ThrottleConfig, Throttled, key_parts};

/// Checks every key of an attempt and, when `ARGV[3]` is `1` and none is closed, counts the attempt as a failure on
/// each, as `Throttle::begin` does. KEYS: known address, account from the address, account, address. ARGV: window
/// ms, first delay ms, count (0 or 1), then limit and longest delay (ms) for the three counting keys. Returns
/// `{wait_ms, address_open_before, address_open_set}`; the account-wide key is skipped when the address is known.
const BEGIN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local first = tonumber(ARGV[2])
local known = redis.call('EXISTS', KEYS[1]) == 1
local wait = 0
for i = 2, 4 do
  if not (known and i == 3) then
    local open_at = tonumber(redis.call('HGET', KEYS[i], 'open_at') or '0')
    if open_at - now > wait then wait = open_at - now end
  end
end
if wait > 0 or ARGV[3] == '0' then return {wait, 0, 0} end
local address_before, address_set = now, now
for i = 2, 4 do
  if not (known and i == 3) then
    local limit = tonumber(ARGV[2 * i])
    local longest = tonumber(ARGV[2 * i + 1])
    local failures = redis.call('HINCRBY', KEYS[i], 'failures', 1)
    local before = tonumber(redis.call('HGET', KEYS[i], 'open_at') or string.format('%.0f', now))
    local delay = 0
    if failures >= limit then delay = math.min(first * 2 ^ math.min(failures - limit, 30), longest) end
    local open_at = math.max(before, now + delay)
    redis.call('HSET', KEYS[i], 'open_at', string.format('%.0f', open_at))
    redis.call('PEXPIREAT', KEYS[i], string.format('%.0f', open_at + window))
    if i == 4 then address_before, address_set = before, open_at end
  end
end
return {0, address_before, address_set}
";

/// A success: the address becomes known to the account, the account's keys are forgotten, and the address gets its
/// count back (and its previous `open_at`, unless a later failure set another). KEYS as [`BEGIN`]; ARGV: how long
/// the address stays known (ms), the address's `open_at` before and as set by the attempt.
const SUCCEEDED: &str = r"
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
local failures = redis.call('HINCRBY', KEYS[4], 'failures', -1)
if failures <= 0 then
  redis.call('DEL', KEYS[4])
elseif redis.call('HGET', KEYS[4], 'open_at') == ARGV[3] then
  redis.call('HSET', KEYS[4], 'open_at', ARGV[2])
end
return 0
";

/// Counts sign-in failures in Redis for every node of a cluster.
pub struct RedisThrottle {
    /// One shared connection, opened on first use; a connect and each command may take 2 s.
    redis: RedisCommands,
    /// Prepended to every key; the nodes of one cluster share it.
    prefix: String,
    config: ThrottleConfig,
}

/// The keys of one attempt, and what the attempt set on the address (to undo it on success).
pub struct RedisAttempt {
    keys: [String; 4],
    address_open: (i64, i64),
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl RedisThrottle {
    /// The default key prefix.
    pub const PREFIX: &str = "livebaton:signin";

    /// A throttle with `config` in the Redis at `address`, its keys under `prefix`. Connects on first use.
    ///
    /// # Errors
    /// If the address is unusable ([`RedisAddress::client`]).
    pub fn new(address: &RedisAddress, prefix: &str, config: ThrottleConfig) -> Result<Self, RedisError> {
        Ok(RedisThrottle {
            redis: RedisCommands::new(address, Duration::from_secs(2))?,
            prefix: prefix.to_owned(),
            config,
        })
    }

    fn keys(&self, email: &str, address: IpAddr) -> [String; 4] {
        let (account, address) = key_parts(email, address);
        let account: String = account.iter().map(|byte| format!("{byte:02x}")).collect();
        let prefix = &self.prefix;
        [
            format!("{prefix}:known:{account}:{address}"),
            format!("{prefix}:account-from:{account}:{address}"),
            format!("{prefix}:account:{account}"),
            format!("{prefix}:address:{address}"),
        ]
    }

    /// Runs `script` with `keys` and `args`.
    async fn eval<T: livebaton::redis::FromRedisValue>(
        &self,
        script: &str,
        keys: &[String; 4],
        args: &[u64],
    ) -> Result<T, RedisError> {
        self.redis.eval(script, keys, args).await
    }

    /// The script arguments of [`BEGIN`].
    fn begin_args(&self, count: bool) -> Vec<u64> {
        let mut args = vec![ms(self.config.window), ms(FIRST_DELAY), u64::from(count)];
        for kind in [KeyKind::AccountFrom, KeyKind::Account, KeyKind::Address] {
            args.push(u64::from(self.config.limit(kind)));
            args.push(ms(self.config.longest_delay(kind)));
        }
        args
    }

    /// Whether an attempt for `email` from `address` could start now, without counting one.
    ///
    /// # Errors
    /// The outer error if Redis failed; the inner [`Throttled`] with the time to wait.
    pub async fn check(&self, email: &str, address: IpAddr) -> Result<Result<(), Throttled>, RedisError> {
        let keys = self.keys(email, address);
        let (wait, _, _): (u64, i64, i64) = self.eval(BEGIN, &keys, &self.begin_args(false)).await?;
        Ok(if wait == 0 { Ok(()) } else { Err(Throttled { retry_after: Duration::from_millis(wait) }) })
    }

    /// Starts an attempt: checks every key and, if all are open, counts the attempt as a failure on each, atomically.
    ///
    /// # Errors
    /// The outer error if Redis failed (nothing is known to be counted then); the inner [`Throttled`] with the time to
    /// wait (nothing was counted).
    pub async fn begin(&self, email: &str, address: IpAddr) -> Result<Result<RedisAttempt, Throttled>, RedisError> {
        let keys = self.keys(email, address);
        let (wait, before, set): (u64, i64, i64) = self.eval(BEGIN, &keys, &self.begin_args(true)).await?;
        if wait > 0 {
            return Ok(Err(Throttled { retry_after: Duration::from_millis(wait) }));
        }
        Ok(Ok(RedisAttempt { keys, address_open: (before, set) }))
    }

    /// The attempt's password was right: forgets the account's failures and gives the address its count back.
    ///
    /// # Errors
    /// If Redis failed (the attempt then stays counted as a failure, as a local attempt dropped without a verdict).
    pub async fn succeeded(&self, attempt: RedisAttempt) -> Result<(), RedisError> {
        let (before, set) = attempt.address_open;
        let args = [ms(KNOWN_FOR), u64::try_from(before).unwrap_or(0), u64::try_from(set).unwrap_or(0)];
        self.eval::<i64>(SUCCEEDED, &attempt.keys, &args).await.map(|_| ())
    }
}
