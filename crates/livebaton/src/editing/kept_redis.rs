//! Kept drafts in Redis, for every node of a cluster: a draft whose session ended on one node is offered to its author
//! on any node.
//!
//! Each kept draft is a hash (`json`, `updated_at`, `version`, `kept_at`) under `<prefix>:d:<topic>:<user>` that
//! expires by itself after the retention (a discarded one keeps all but `json` until then); two sorted sets by `kept_at` (`<prefix>:all`, and `<prefix>:u:<user>` per
//! user) find the oldest when a limit is exceeded. One Lua script keeps a draft atomically: newer than the one kept or
//! nothing (every node of the cluster keeps the same draft when a session ends), then trims expired index entries and
//! the oldest beyond each limit. Times are Redis's own (`TIME`), so node clocks do not matter. Reads are one `HMGET` of
//! one draft: nothing is loaded when a node (re)connects.

use std::time::Duration;

use super::draft::Draft;
use super::kept::{KeptDraft, KeptDraftError, KeptDraftLimits, KeptDraftStore};
use super::target::EditTarget;
use crate::BoxFuture;
use crate::RedisAddress;
use crate::RedisCommands;

/// ARGV: prefix, topic, user, json, updated_at, version, retention ms, max drafts, max per user. Returns 1 when kept,
/// 0 when the kept draft was as new or newer.
const KEEP: &str = r"
local p, topic, user = ARGV[1], ARGV[2], ARGV[3]
local key = p .. ':d:' .. topic .. ':' .. user
local updated_at, version = tonumber(ARGV[5]), tonumber(ARGV[6])
local old = redis.call('HMGET', key, 'updated_at', 'version')
if old[1] then
  local old_at, old_version = tonumber(old[1]), tonumber(old[2])
  if old_at > updated_at or (old_at == updated_at and old_version >= version) then return 0 end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retention = tonumber(ARGV[7])
local all, mine = p .. ':all', p .. ':u:' .. user
redis.call('HSET', key, 'json', ARGV[4], 'updated_at', ARGV[5], 'version', ARGV[6], 'kept_at', string.format('%.0f', now))
redis.call('PEXPIRE', key, retention)
redis.call('ZADD', all, now, topic .. '|' .. user)
redis.call('ZADD', mine, now, topic)
redis.call('PEXPIRE', mine, retention)
local function forget(member)
  local bar = string.find(member, '|', 1, true)
  local t, u = string.sub(member, 1, bar - 1), string.sub(member, bar + 1)
  redis.call('DEL', p .. ':d:' .. t .. ':' .. u)
  redis.call('ZREM', all, member)
  redis.call('ZREM', p .. ':u:' .. u, t)
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', all, '-inf', string.format('%.0f', now - retention), 'LIMIT', 0, 100)) do
  forget(member)
end
local excess = redis.call('ZCARD', mine) - tonumber(ARGV[9])
if excess > 0 then
  for _, t in ipairs(redis.call('ZRANGE', mine, 0, excess - 1)) do forget(t .. '|' .. user) end
end
excess = redis.call('ZCARD', all) - tonumber(ARGV[8])
if excess > 0 then
  for _, member in ipairs(redis.call('ZRANGE', all, 0, excess - 1)) do forget(member) end
end
return 1
";

/// ARGV: prefix, topic, user, updated_at. Discards the kept draft if it is still that one (its values go; its
/// version stays until the key expires, so a late keep of the same draft is refused); returns 1 if discarded.
const DISCARD: &str = r"
local p, topic, user = ARGV[1], ARGV[2], ARGV[3]
local key = p .. ':d:' .. topic .. ':' .. user
if redis.call('HGET', key, 'updated_at') ~= ARGV[4] or redis.call('HEXISTS', key, 'json') == 0 then return 0 end
redis.call('HDEL', key, 'json')
return 1
";

/// A [`KeptDraftStore`] in Redis. See the module documentation.
pub struct RedisKeptDrafts {
    redis: RedisCommands,
    /// Prepended to every key; the nodes of one cluster share it.
    prefix: String,
    limits: KeptDraftLimits,
}

impl RedisKeptDrafts {
    /// Kept drafts in the Redis at `address`, under `prefix`, within `limits`. Connects on first use; each command
    /// may take 2 s (the keeper retries a failed keep).
    ///
    /// # Errors
    /// If the address is unusable ([`RedisAddress::client`]).
    pub fn new(address: &RedisAddress, prefix: &str, limits: KeptDraftLimits) -> Result<Self, ::redis::RedisError> {
        Ok(RedisKeptDrafts {
            redis: RedisCommands::new(address, Duration::from_secs(2))?,
            prefix: prefix.to_owned(),
            limits,
        })
    }

    fn key(&self, target: &EditTarget, user_id: &str) -> String {
        format!("{}:d:{}:{user_id}", self.prefix, target.presence_topic())
    }
}

impl KeptDraftStore for RedisKeptDrafts {
    fn keep<'a>(&'a self, target: &'a EditTarget, draft: &'a Draft) -> BoxFuture<'a, Result<(), KeptDraftError>> {
        Box::pin(async move {
            let json = serde_json::to_string(draft).map_err(KeptDraftError::unavailable)?;
            let args = (
                &self.prefix,
                target.presence_topic(),
                &draft.updated_by.user_id,
                json,
                draft.updated_at,
                draft.version,
                self.limits.retention_ms().max(1),
                self.limits.max_drafts,
                self.limits.max_per_user,
            );
            self.redis.eval::<i64>(KEEP, &[], args).await.map_err(KeptDraftError::unavailable)?;
            Ok(())
        })
    }

    fn find<'a>(
        &'a self,
        target: &'a EditTarget,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeptDraft>, KeptDraftError>> {
        Box::pin(async move {
            let mut command = ::redis::cmd("HMGET");
            command.arg(self.key(target, user_id)).arg("json").arg("kept_at");
            let (json, kept_at): (Option<String>, Option<u64>) =
                self.redis.query(&command).await.map_err(KeptDraftError::unavailable)?;
            let (Some(json), Some(kept_at)) = (json, kept_at) else { return Ok(None) };
            match serde_json::from_str::<Draft>(&json) {
                Ok(draft) => Ok(Some(KeptDraft { target: target.clone(), draft, kept_at })),
                Err(error) => {
                    tracing::warn!(%target, %error, "ignored an unreadable kept draft in Redis");
                    Ok(None)
                }
            }
        })
    }

    fn discard<'a>(
        &'a self,
        target: &'a EditTarget,
        user_id: &'a str,
        updated_at: u64,
    ) -> BoxFuture<'a, Result<bool, KeptDraftError>> {
        Box::pin(async move {
            let args = (&self.prefix, target.presence_topic(), user_id, updated_at);
            let removed: i64 = self.redis.eval(DISCARD, &[], args).await.map_err(KeptDraftError::unavailable)?;
            Ok(removed == 1)
        })
    }
}
