//! The Lua scripts of the Redis roster. Each runs atomically in Redis, so every change of a topic (its entries, its
//! version, its leader and the event announcing it) happens in one step that no other node can interleave with.
//!
//! # Calling convention
//!
//! Every script is `EVALSHA sha 0 prefix known_gen candidate_gen node check_reaped run_id args…` (no `KEYS`: the
//! scripts build key names from the prefix, which also means the roster needs one Redis server, not Redis Cluster):
//! - `run_id` is the `run_id` of the Redis process the caller's connection reaches (from `INFO server` when the
//!   connection was made; `""` when Redis does not tell). The dataset records the process that last served it
//!   (`P:run`). A different one means the dataset came back from elsewhere: restored from an RDB/AOF snapshot, a replica
//!   promoted after a failover, a restart with persistence. Such a dataset may hold a generation the nodes still
//!   believe in together with entries, leaders and documents older than what they know, and leases that ran out while it
//!   was away. So the first script to run on it (on any node: scripts run one at a time) deletes the whole roster
//!   (every key under the prefix) and records the process, in the same step; from there on it is an empty dataset,
//!   as after a restart without persistence, and the nodes re-assert what is alive. (A dataset with a generation but
//!   no `P:run`, written by an older livebaton, only records the process.)
//! - `known_gen` is the dataset generation the caller believes in. If the dataset has none (new, flushed, restarted or
//!   wiped as above) the script first creates it from `candidate_gen` (a fresh random id), so exactly one generation is
//!   ever created per dataset. If it differs from `known_gen` the script does nothing and answers `{"reset", gen}`.
//! - with `check_reaped` = `"1"`, a node that the others declared dead (its `reaped` flag is set) gets
//!   `{"reaped", gen}` and nothing is done: it must re-assert its entries first.
//!
//! Otherwise the answer is `{status, gen, payload}` with status `ok`, `absent` or `conflict`, and a JSON payload
//! (or an empty string).
//!
//! # Data layout (`P` = the configured prefix)
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:gen` | string | the dataset's generation (random) |
//! | `P:run` | string | the `run_id` of the Redis process that serves the dataset |
//! | `P:t:order:<topic>` | sorted set | member → seq: the topic's order |
//! | `P:t:data:<topic>` | hash | member → `{"k": key, "r": phx_ref, "f": fields, "e": true}` (`e` when eligible; written only by the member's node) |
//! | `P:t:chg:<topic>` | sorted set | member → topic version of its last change (what a joiner may be missing) |
//! | `P:t:elig:<topic>` | sorted set | eligible members → seq (the leader is the first) |
//! | `P:t:owner:<topic>` | hash | `m` = leader member, `f` = its fence |
//! | `P:t:ver:<topic>` | counter | the topic's version: +1 per published event |
//! | `P:t:seq:<topic>` | counter | the last seq handed out |
//! | `P:t:closing:<topic>` | hash | lingering member → reclaim identity |
//! | `P:t:tabs:<topic>` | hash | reclaim identity → JSON list of lingering members, last closed last |
//! | `P:topics` | set | topics with entries |
//! | `P:owned:<node>` | hash | member → topic, for every entry of the node |
//! | `P:nodes` | set | nodes that hold or held entries |
//! | `P:lease:<node>` | string with TTL | the node's liveness lease |
//! | `P:reaped:<node>` | string with TTL | the node was declared dead and its entries removed |
//! | `P:fences` | counter | source of fences (never reset within a generation) |
//! | `P:doc:<key>` | hash with TTL | a shared document, fenced by topic `<key>`: `v`, `u`, `j`, revision `r` |
//! | `P:docrev` | counter | source of document revisions (never reset within a generation) |
//! | `P:docs` | set | document keys |
//! | channel `P:events` | pub/sub | every roster event and document change, in execution order |
//!
//! Member ids are `<node id>#<hex>`; a member's node is everything before its last `#`.

/// Shared by every script: key helpers, the generation and reaped checks, and the roster operations.
const PROLOGUE: &str = r#"
local P = ARGV[1]
local NODE = ARGV[4]
local RUN = ARGV[6]
local function A(i) return ARGV[6 + i] end
local function tk(what, topic) return P .. ':t:' .. what .. ':' .. topic end
local function node_of(member) return string.match(member, '^(.*)#[^#]*$') end
local gen = redis.call('GET', P .. ':gen')
if RUN ~= '' then
  local run = redis.call('GET', P .. ':run')
  if run ~= RUN then
    if gen and run then
      -- Served by another Redis process before (a snapshot, a failover): start again from an empty roster.
      local pattern = string.gsub(P, '[%*%?%[%]\\]', '\\%0') .. ':*'
      local cursor = '0'
      repeat
        local page = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
        cursor = page[1]
        for _, k in ipairs(page[2]) do redis.call('DEL', k) end
      until cursor == '0'
      gen = false
    end
    redis.call('SET', P .. ':run', RUN)
  end
end
if not gen then
  gen = ARGV[3]
  redis.call('SET', P .. ':gen', gen)
end
if ARGV[2] ~= '' and gen ~= ARGV[2] then return {'reset', gen} end
if ARGV[5] == '1' and redis.call('EXISTS', P .. ':reaped:' .. NODE) == 1 then return {'reaped', gen} end

local function untab(topic, tab, member)
  local key = tk('tabs', topic)
  local raw = redis.call('HGET', key, tab)
  if not raw then return end
  local kept = {}
  for _, m in ipairs(cjson.decode(raw)) do if m ~= member then table.insert(kept, m) end end
  if #kept == 0 then redis.call('HDEL', key, tab) else redis.call('HSET', key, tab, cjson.encode(kept)) end
end

local function add_tab(topic, tab, member)
  local key = tk('tabs', topic)
  local raw = redis.call('HGET', key, tab)
  local kept = {}
  if raw then
    for _, m in ipairs(cjson.decode(raw)) do if m ~= member then table.insert(kept, m) end end
  end
  table.insert(kept, member)
  redis.call('HSET', key, tab, cjson.encode(kept))
  redis.call('HSET', tk('closing', topic), member, tab)
end

local function remove_member(topic, m)
  local seq = redis.call('ZSCORE', tk('order', topic), m)
  if not seq then return false end
  redis.call('ZREM', tk('order', topic), m)
  redis.call('HDEL', tk('data', topic), m)
  redis.call('ZREM', tk('chg', topic), m)
  redis.call('ZREM', tk('elig', topic), m)
  local tab = redis.call('HGET', tk('closing', topic), m)
  if tab then
    redis.call('HDEL', tk('closing', topic), m)
    untab(topic, tab, m)
  end
  local n = node_of(m)
  if n then redis.call('HDEL', P .. ':owned:' .. n, m) end
  return tonumber(seq)
end

local function insert_member(topic, m, seq, ver, data, elig)
  redis.call('ZADD', tk('order', topic), seq, m)
  redis.call('HSET', tk('data', topic), m, data)
  redis.call('ZADD', tk('chg', topic), ver, m)
  if elig then redis.call('ZADD', tk('elig', topic), seq, m) else redis.call('ZREM', tk('elig', topic), m) end
  local n = node_of(m)
  if n then redis.call('HSET', P .. ':owned:' .. n, m, topic) end
  redis.call('SADD', P .. ':topics', topic)
  redis.call('PERSIST', tk('ver', topic))
  redis.call('PERSIST', tk('seq', topic))
end

local function refresh_owner(topic)
  local first = redis.call('ZRANGE', tk('elig', topic), 0, 0)[1]
  local key = tk('owner', topic)
  local current = redis.call('HGET', key, 'm')
  if first then
    if current ~= first then redis.call('HSET', key, 'm', first, 'f', redis.call('INCR', P .. ':fences')) end
  elseif current then
    redis.call('DEL', key)
  end
end

local function authority(topic)
  local o = redis.call('HMGET', tk('owner', topic), 'm', 'f')
  return {o[1] or '', tonumber(o[2] or '0')}
end

local function tidy(topic)
  if redis.call('ZCARD', tk('order', topic)) == 0 then
    redis.call('DEL', tk('order', topic), tk('data', topic), tk('chg', topic), tk('elig', topic), tk('owner', topic),
      tk('closing', topic), tk('tabs', topic))
    redis.call('SREM', P .. ':topics', topic)
    redis.call('PEXPIRE', tk('ver', topic), 86400000)
    redis.call('PEXPIRE', tk('seq', topic), 86400000)
  end
end

local function publish(topic, ver, first, ops)
  redis.call('PUBLISH', P .. ':events',
    cjson.encode({x = 'r', g = gen, o = NODE, t = topic, v = ver, f = first, ops = ops, a = authority(topic)}))
end

local function entry(topic, m, seq)
  return {m = m, s = seq, c = tonumber(redis.call('ZSCORE', tk('chg', topic), m) or '0'),
    d = redis.call('HGET', tk('data', topic), m) or ''}
end

local function ok(payload) return {'ok', gen, payload or ''} end

-- Removes every entry node n owns, publishing the leaves (one event per topic); used by REAP and RETIRE.
local function remove_node_entries(n)
  local owned = redis.call('HGETALL', P .. ':owned:' .. n)
  local by_topic, topics = {}, {}
  for i = 1, #owned, 2 do
    local m, topic = owned[i], owned[i + 1]
    if not by_topic[topic] then
      by_topic[topic] = {}
      table.insert(topics, topic)
    end
    if remove_member(topic, m) then table.insert(by_topic[topic], {k = 'l', m = m}) end
  end
  for _, topic in ipairs(topics) do
    if #by_topic[topic] > 0 then
      local ver = redis.call('INCR', tk('ver', topic))
      refresh_owner(topic)
      publish(topic, ver, false, by_topic[topic])
      tidy(topic)
    end
  end
end
"#;

/// `topic member data eligible tab floor known_ver` → `{s, v, r, e, a}`: numbers a join (or takes the place of the
/// lingering member of the same reclaim identity `tab`), records it, recomputes the leader and publishes the event;
/// answers the seq, the topic's version, the reclaimed member (`""` if none), every other node's entry changed since
/// `known_ver` (all of them when it is 0) and the leader. A join of a member already present (a retry) changes nothing and
/// answers the same way. `floor` raises the seq counter first (see `JoinCall::floor`).
const JOIN: &str = r#"
local topic, m, data, elig, tab = A(1), A(2), A(3), A(4) == '1', A(5)
local floor, known = tonumber(A(6)), tonumber(A(7))
local order = tk('order', topic)
local function changed_since(v)
  local out = {}
  local ms = redis.call('ZRANGEBYSCORE', tk('chg', topic), '(' .. v, '+inf')
  for _, x in ipairs(ms) do
    -- The joiner's own entries are its own truth already.
    if node_of(x) ~= NODE then table.insert(out, entry(topic, x, tonumber(redis.call('ZSCORE', order, x)))) end
  end
  return out
end
local existing = redis.call('ZSCORE', order, m)
if existing then
  local ver = tonumber(redis.call('GET', tk('ver', topic)) or '0')
  return ok(cjson.encode({s = tonumber(existing), v = ver, r = '', e = changed_since(known), a = authority(topic)}))
end
local first = redis.call('ZCARD', order) == 0
local ops = {}
local seq = false
local reclaimed = ''
if tab ~= '' then
  local raw = redis.call('HGET', tk('tabs', topic), tab)
  if raw then
    local list = cjson.decode(raw)
    local last = list[#list]
    if last then
      local s = remove_member(topic, last)
      if s then
        seq = s
        reclaimed = last
        table.insert(ops, {k = 'l', m = last})
      end
    end
  end
end
local seqkey = tk('seq', topic)
if floor > tonumber(redis.call('GET', seqkey) or '0') then redis.call('SET', seqkey, floor) end
if not seq then seq = redis.call('INCR', seqkey) end
local ver = redis.call('INCR', tk('ver', topic))
insert_member(topic, m, seq, ver, data, elig)
refresh_owner(topic)
table.insert(ops, {k = 'j', m = m, s = seq, c = ver, d = data})
publish(topic, ver, first, ops)
return ok(cjson.encode({s = seq, v = ver, r = reclaimed, e = changed_since(known), a = authority(topic)}))
"#;

/// `topic member`: removes the member (if present) and publishes its leave (also when absent, so replicas that still
/// list it drop it).
const LEAVE: &str = r#"
local topic, m = A(1), A(2)
remove_member(topic, m)
local ver = redis.call('INCR', tk('ver', topic))
refresh_owner(topic)
publish(topic, ver, false, {{k = 'l', m = m}})
tidy(topic)
return ok()
"#;

/// `topic member data eligible`: replaces a member's data; `absent` if it is gone.
const UPDATE: &str = r#"
local topic, m, data, elig = A(1), A(2), A(3), A(4) == '1'
local seq = redis.call('ZSCORE', tk('order', topic), m)
if not seq then return {'absent', gen, ''} end
local ver = redis.call('INCR', tk('ver', topic))
redis.call('HSET', tk('data', topic), m, data)
redis.call('ZADD', tk('chg', topic), ver, m)
if elig then redis.call('ZADD', tk('elig', topic), seq, m) else redis.call('ZREM', tk('elig', topic), m) end
refresh_owner(topic)
publish(topic, ver, false, {{k = 'u', m = m, c = ver, d = data}})
return ok()
"#;

/// `topic member tab`: marks a member as lingering, reclaimable by `tab`; `absent` if it is gone. Nothing visible
/// changes, so nothing is published.
const CLOSE: &str = r#"
local topic, m, tab = A(1), A(2), A(3)
if not redis.call('ZSCORE', tk('order', topic), m) then return {'absent', gen, ''} end
add_tab(topic, tab, m)
return ok()
"#;

/// `topic m1 s1 m2 s2`: exchanges the places of two members if they are still at `s1` and `s2` (`conflict` if not).
const SWAP: &str = r#"
local topic = A(1)
local order = tk('order', topic)
local a, b = redis.call('ZSCORE', order, A(2)), redis.call('ZSCORE', order, A(4))
if not a or not b or tonumber(a) ~= tonumber(A(3)) or tonumber(b) ~= tonumber(A(5)) then
  return {'conflict', gen, ''}
end
local sa, sb = tonumber(a), tonumber(b)
local ver = redis.call('INCR', tk('ver', topic))
for _, mv in ipairs({{A(2), sb}, {A(4), sa}}) do
  redis.call('ZADD', order, mv[2], mv[1])
  if redis.call('ZSCORE', tk('elig', topic), mv[1]) then redis.call('ZADD', tk('elig', topic), mv[2], mv[1]) end
  redis.call('ZADD', tk('chg', topic), ver, mv[1])
end
refresh_owner(topic)
publish(topic, ver, false, {{k = 'm', m = A(2), s = sb, c = ver}, {k = 'm', m = A(4), s = sa, c = ver}})
return ok()
"#;

/// `topic mode entries stale`: makes the topic hold exactly this node's `entries` (JSON list of
/// `{m, s, d, e, t, x}`: member, seq as this node knows it, data, eligible, reclaim identity, lingering; sorted by
/// seq) and none of its `stale` members (JSON list). A missing entry is inserted: with mode `restore` at its old seq
/// when that is free (after Redis lost its data, so the order survives), otherwise (mode `rejoin`, after this node was
/// declared dead) at the back, keeping the relative order. One event for the whole topic. Answers `"<changes>
/// <inserted>"`: how many changes it made, and how many of them put back an entry Redis did not hold.
const RECONCILE: &str = r#"
local topic, mode = A(1), A(2)
local entries, stale = cjson.decode(A(3)), cjson.decode(A(4))
local order = tk('order', topic)
local seqkey = tk('seq', topic)
local first = redis.call('ZCARD', order) == 0
local ops, touched, inserted = {}, {}, 0
for _, m in ipairs(stale) do
  if remove_member(topic, m) then table.insert(ops, {k = 'l', m = m}) end
end
for _, e in ipairs(entries) do
  local current = redis.call('ZSCORE', order, e.m)
  if current then
    if redis.call('HGET', tk('data', topic), e.m) ~= e.d then
      redis.call('HSET', tk('data', topic), e.m, e.d)
      if e.e then redis.call('ZADD', tk('elig', topic), current, e.m) else redis.call('ZREM', tk('elig', topic), e.m) end
      table.insert(touched, e.m)
      table.insert(ops, {k = 'u', m = e.m, d = e.d})
    end
    if e.x and e.t ~= '' and not redis.call('HGET', tk('closing', topic), e.m) then add_tab(topic, e.t, e.m) end
  else
    local seq
    if mode == 'restore' and e.s > 0 and #redis.call('ZRANGEBYSCORE', order, e.s, e.s, 'LIMIT', 0, 1) == 0 then
      seq = e.s
      if seq > tonumber(redis.call('GET', seqkey) or '0') then redis.call('SET', seqkey, seq) end
    else
      seq = redis.call('INCR', seqkey)
    end
    insert_member(topic, e.m, seq, 0, e.d, e.e)
    inserted = inserted + 1
    if e.x and e.t ~= '' then add_tab(topic, e.t, e.m) end
    table.insert(touched, e.m)
    table.insert(ops, {k = 'j', m = e.m, s = seq, d = e.d})
  end
end
if #ops == 0 then return ok('0 0') end
local ver = redis.call('INCR', tk('ver', topic))
for _, m in ipairs(touched) do redis.call('ZADD', tk('chg', topic), ver, m) end
for _, op in ipairs(ops) do op.c = ver end
refresh_owner(topic)
publish(topic, ver, first, ops)
tidy(topic)
return ok(tostring(#ops) .. ' ' .. tostring(inserted))
"#;

/// `lease_ms`: refreshes this node's lease (`reaped` if it was declared dead meanwhile).
const LEASE: &str = r#"
redis.call('SET', P .. ':lease:' .. NODE, '1', 'PX', A(1))
redis.call('SADD', P .. ':nodes', NODE)
return ok()
"#;

/// `lease_ms`: clears this node's `reaped` flag and takes a lease again, before it re-asserts its entries.
const REVIVE: &str = r#"
redis.call('DEL', P .. ':reaped:' .. NODE)
redis.call('SET', P .. ':lease:' .. NODE, '1', 'PX', A(1))
redis.call('SADD', P .. ':nodes', NODE)
return ok()
"#;

/// Removes every entry of every node (but the caller) whose lease expired, publishing the leaves (one event per
/// topic), and flags those nodes as reaped. Answers how many nodes were reaped. Whichever node runs it first does the
/// work; for the others there is nothing left.
const REAP: &str = r#"
local dead = 0
for _, n in ipairs(redis.call('SMEMBERS', P .. ':nodes')) do
  if n ~= NODE and redis.call('EXISTS', P .. ':lease:' .. n) == 0 then
    remove_node_entries(n)
    redis.call('DEL', P .. ':owned:' .. n)
    redis.call('SREM', P .. ':nodes', n)
    redis.call('SET', P .. ':reaped:' .. n, '1', 'EX', 86400)
    dead = dead + 1
  end
end
return ok(tostring(dead))
"#;

/// Removes every entry of this node and its lease (an orderly shutdown), publishing the leaves.
const RETIRE: &str = r#"
remove_node_entries(NODE)
redis.call('DEL', P .. ':owned:' .. NODE, P .. ':lease:' .. NODE)
redis.call('SREM', P .. ':nodes', NODE)
return ok()
"#;

/// `topic` → `{v, e, a}`: the topic's version, every entry, and its leader.
const SNAPSHOT: &str = r#"
local topic = A(1)
local ms = redis.call('ZRANGE', tk('order', topic), 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #ms, 2 do table.insert(out, entry(topic, ms[i], tonumber(ms[i + 1]))) end
return ok(cjson.encode({v = tonumber(redis.call('GET', tk('ver', topic)) or '0'), e = out, a = authority(topic)}))
"#;

/// → JSON list of the topics that have entries.
const TOPICS: &str = r#"
return ok(cjson.encode(redis.call('SMEMBERS', P .. ':topics')))
"#;

/// → JSON flat list `[member, topic, …]` of this node's entries in Redis.
const OWNED: &str = r#"
return ok(cjson.encode(redis.call('HGETALL', P .. ':owned:' .. NODE)))
"#;

/// `topic member fence` → `{ok, d}`: whether `member` still leads `topic` with `fence` and its node's lease is alive,
/// and the current leader's data (`""` if none). Called with the token's generation as `known_gen`, so a token from
/// before a Redis restart gets `reset`.
const CHECK: &str = r#"
local topic = A(1)
local o = redis.call('HMGET', tk('owner', topic), 'm', 'f')
local valid = o[1] == A(2) and o[2] == A(3)
if valid then
  local n = node_of(A(2))
  valid = n ~= nil and redis.call('EXISTS', P .. ':lease:' .. n) == 1
end
local d = ''
if o[1] then d = redis.call('HGET', tk('data', topic), o[1]) or '' end
return ok(cjson.encode({ok = valid, d = d}))
"#;

/// `key version updated_at json ttl_ms mode member fence` → `{ok, r, j}`: stores a shared document and publishes it,
/// numbered by a new revision `r` (from `P:docrev`, which only grows within a generation), so every node applies the
/// writes of a document in Redis's order. With a `member`, the write is fenced: it is accepted only while `member`
/// leads the topic named like the document with `fence` (a member that lost the lead, maybe before its node heard of
/// it, or whose node was reaped, cannot overwrite the new leader's document). Mode `restore` (after Redis lost its
/// data) writes only if Redis has no newer version. Mode `rejoin` (a node declared dead is back, and kept the document
/// of a topic its entries stayed in) writes only if Redis has no version at all and the topic's entries are all the
/// writer's (nobody elsewhere joined the topic meanwhile). A write not made answers `ok = false` with the document
/// Redis keeps (`j` empty if none) and its revision (when there is none, in mode `rejoin`, the latest revision of any
/// document, so the writer's copy drops it), so the writer's node can take it back.
const DOC_PUT: &str = r#"
local key = P .. ':doc:' .. A(1)
local function refused()
  local current = redis.call('HMGET', key, 'r', 'j')
  local r = current[1]
  if not r and A(6) == 'rejoin' then r = redis.call('GET', P .. ':docrev') end
  return ok(cjson.encode({ok = false, r = tonumber(r or '0'), j = current[2] or ''}))
end
if A(6) == 'rejoin' then
  if redis.call('EXISTS', key) == 1 then return refused() end
  local members = redis.call('ZRANGE', tk('order', A(1)), 0, -1)
  if #members == 0 then return refused() end
  for _, m in ipairs(members) do
    if node_of(m) ~= NODE then return refused() end
  end
end
if A(6) == 'restore' then
  local current = redis.call('HGET', key, 'v')
  if current and tonumber(current) >= tonumber(A(2)) then return refused() end
end
if A(7) ~= '' then
  local o = redis.call('HMGET', tk('owner', A(1)), 'm', 'f')
  if o[1] ~= A(7) or o[2] ~= A(8) then return refused() end
end
local r = redis.call('INCR', P .. ':docrev')
redis.call('HSET', key, 'v', A(2), 'u', A(3), 'j', A(4), 'r', r)
redis.call('PEXPIRE', key, A(5))
redis.call('SADD', P .. ':docs', A(1))
redis.call('PUBLISH', P .. ':events',
  cjson.encode({x = 'd', g = gen, o = NODE, k = A(1), j = A(4), v = A(2), u = A(3), r = r}))
return ok(cjson.encode({ok = true, r = r, j = ''}))
"#;

/// `key version updated_at`: removes a shared document if it is still that version (a newer one is kept), and
/// publishes the removal with a new revision.
const DOC_DEL: &str = r#"
local key = P .. ':doc:' .. A(1)
local current = redis.call('HMGET', key, 'v', 'u')
if current[1] and (current[1] ~= A(2) or current[2] ~= A(3)) then return ok('newer') end
redis.call('DEL', key)
redis.call('SREM', P .. ':docs', A(1))
local r = redis.call('INCR', P .. ':docrev')
redis.call('PUBLISH', P .. ':events',
  cjson.encode({x = 'd', g = gen, o = NODE, k = A(1), j = '', v = A(2), u = A(3), r = r}))
return ok()
"#;

/// → JSON list of `{k, j, r}`: every shared document with its revision (forgetting those whose TTL ran out).
const DOCS: &str = r#"
local out = {}
for _, k in ipairs(redis.call('SMEMBERS', P .. ':docs')) do
  local d = redis.call('HMGET', P .. ':doc:' .. k, 'j', 'r')
  if d[1] then
    table.insert(out, {k = k, j = d[1], r = tonumber(d[2] or '0')})
  else
    redis.call('SREM', P .. ':docs', k)
  end
end
return ok(cjson.encode(out))
"#;

/// Only the generation check (creating one if the dataset has none).
const GEN: &str = r#"
return ok()
"#;

/// One script of the roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Script {
    Join,
    Leave,
    Update,
    Close,
    Swap,
    Reconcile,
    Lease,
    Revive,
    Reap,
    Retire,
    Snapshot,
    Topics,
    Owned,
    Check,
    DocPut,
    DocDel,
    Docs,
    Gen,
}

impl Script {
    /// The full source: the prologue, then the body.
    pub(super) fn source(self) -> String {
        let body = match self {
            Script::Join => JOIN,
            Script::Leave => LEAVE,
            Script::Update => UPDATE,
            Script::Close => CLOSE,
            Script::Swap => SWAP,
            Script::Reconcile => RECONCILE,
            Script::Lease => LEASE,
            Script::Revive => REVIVE,
            Script::Reap => REAP,
            Script::Retire => RETIRE,
            Script::Snapshot => SNAPSHOT,
            Script::Topics => TOPICS,
            Script::Owned => OWNED,
            Script::Check => CHECK,
            Script::DocPut => DOC_PUT,
            Script::DocDel => DOC_DEL,
            Script::Docs => DOCS,
            Script::Gen => GEN,
        };
        format!("{PROLOGUE}{body}")
    }

    /// Whether the script refuses to run for a node flagged as reaped.
    pub(super) fn checks_reaped(self) -> bool {
        matches!(self, Script::Join | Script::Leave | Script::Update | Script::Close | Script::Swap | Script::Lease)
    }
}
