// Multi-node: real `livebaton` processes sharing a private Redis and a fresh PostgreSQL database (through proxies the
// tests can cut), driven by the official phoenix.js client. Alice on node 1 and Bob on node 2 edit one record;
// node 1 is killed with SIGKILL; Redis is restarted and flushed mid-session; PostgreSQL goes away mid-save; two nodes
// race the baton hundreds of times while the loser keeps saving; node 1 is cut off Redis (a partition).
//
// Latencies and counts are printed as `[multinode] …` lines. Run: `node --test --test-concurrency=1 multinode.test.mjs`
// (`MULTINODE_SEED=n` replays the split-brain races; `MULTINODE_RACES=n` changes how many).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, PresenceWatch, disconnectAll } from "./client.mjs";
import { Cluster, account, waitUntil } from "./cluster.mjs";
import { sleep, withTimeout } from "./server.mjs";

const LEAVE_GRACE_MS = 300;
/** The node liveness lease (the server's default; there is no flag to change it). */
const LEASE_MS = 5_000;
const EDIT_EVENTS = ["presence_state", "presence_diff", "role", "draft", "saved", "deleted"];
const USERS = [account("Alice"), account("Bob"), account("Carol"), account("Dave")];

let cluster;
let users;
const summary = [];

function report(line) {
  summary.push(line);
  console.log(`[multinode] ${line}`);
}

before(async () => {
  // Generous event limits: the split-brain races send hundreds of saves per socket.
  cluster = new Cluster({
    leaveGraceMs: LEAVE_GRACE_MS,
    nodeArgs: ["--events-per-second", "10000", "--event-burst", "10000"],
  });
  await cluster.start(USERS);
  // One at a time: the first node migrates the fresh database and seeds the demo content.
  await cluster.startNode("n1");
  await cluster.startNode("n2");
  users = await cluster.tokens(cluster.node("n2"));
});

after(async () => {
  disconnectAll();
  if (summary.length) console.log(`[multinode] summary:\n  ${summary.join("\n  ")}`);
  await cluster?.close();
});

const n1 = () => cluster.node("n1");
const n2 = () => cluster.node("n2");

/** A new article record (through `node`'s API), so each test has a session of its own. */
async function newRecord(node, title) {
  return node.apiOk("POST", "/api/entities/article/records", {
    token: users.Alice.token,
    expected: 201,
    body: { title, data: { summary: `created for ${title}` } },
  });
}

function getRecord(node, id) {
  return node.apiOk("GET", `/api/entities/article/records/${id}`, { token: users.Alice.token });
}

function paramsOf(record, changes = {}) {
  return { title: record.title, slug: record.slug, status: record.status, data: { ...record.data }, ...changes };
}

/** The user ids of a phoenix.js Presence list (the editing roster is keyed by connection id). */
function userIdsOf(watch) {
  return watch.presence.list((_, { metas }) => metas[0].user_id).sort();
}

/** Waits until `watch` lists exactly `userIds` (any order, duplicates count). */
async function rosterBecomes(watch, userIds, timeout = 5_000) {
  const want = [...userIds].map(String).sort();
  await waitUntil(
    () => JSON.stringify(userIdsOf(watch)) === JSON.stringify(want),
    timeout,
    () =>
      `${watch.joined.client.label}: roster should be ${JSON.stringify(want)}, is ${JSON.stringify(userIdsOf(watch))}\n` +
      watch.joined.client.transcript(15),
    10,
  );
}

/** A phoenix.js client of `user` on `node`, heartbeating every 3 s (more often than needed: the server pings quiet sockets). */
function connect(node, user, label = `${user.name}@${node.name}`) {
  return new Client(node, { token: user.token, label, socketOptions: { heartbeatIntervalMs: 3_000 } }).connect();
}

/**
 * `user` connects to `node` and joins `edit:data:<id>` with tab `tab`. Returns the client, the channel (with its
 * inbox), the join reply, a Presence watch and `role()` (this member's role now: the reply's, then every `role` push).
 */
async function openForm(node, user, recordId, tab) {
  const client = await connect(node, user);
  return joinForm(client, recordId, tab);
}

async function joinForm(client, recordId, tab) {
  const form = client.channel(`edit:data:${recordId}`, { tab_id: tab }, EDIT_EVENTS);
  const watch = new PresenceWatch(form);
  let role = null;
  form.channel.on("role", (payload) => {
    role = payload.role;
  });
  const reply = await form.join();
  role ??= reply.role;
  return { client, form, watch, reply, role: () => role };
}

/** A push with its own timeout (phoenix.js's default is the socket's 5 s). */
function pushLong(joined, event, payload, ms) {
  const reply = new Promise((done, fail) => {
    joined.channel
      .push(event, payload, ms)
      .receive("ok", (response) => done({ status: "ok", response }))
      .receive("error", (response) => done({ status: "error", response }))
      .receive("timeout", () => fail(new Error(`push ${event} on ${joined.topic}: no reply within ${ms} ms`)));
  });
  return withTimeout(reply, ms + 1_000, `${joined.client.label}: reply to ${event}\n${joined.client.transcript()}`);
}

/** A fresh join on `node` by `user`: its reply and the user ids of its first `presence_state`. */
async function freshLook(node, user, recordId) {
  const look = await openForm(node, user, recordId, `look-${Date.now()}`);
  const state = await look.form.next("presence_state");
  const ids = Object.values(state)
    .map(({ metas }) => metas[0].user_id)
    .sort();
  const entries = Object.values(state).reduce((count, { metas }) => count + metas.length, 0);
  // Leave first: a closed socket's entry would linger for the leave grace and show up in the next look.
  await look.form.leave();
  await look.client.disconnect();
  return { reply: look.reply, ids, entries, state };
}

const ms = (value) => `${Math.round(value)} ms`;

// -------------------------------------------------------------------------------------------------------------------

test(
  "two nodes: Alice on node 1 owns, Bob on node 2 watches her draft, Alice leaves → Bob promoted with it",
  { timeout: 60_000 },
  async () => {
    const { Alice, Bob, Carol } = users;
    const record = await newRecord(n1(), "Multinode 1");

    const alice = await openForm(n1(), Alice, record.id, "alice-1");
    assert.equal(alice.reply.role, "owner", JSON.stringify(alice.reply));
    assert.equal(alice.reply.owner.user_id, Alice.userId);

    const bob = await openForm(n2(), Bob, record.id, "bob-1");
    assert.equal(bob.reply.role, "spectator", `Bob on node 2: ${JSON.stringify(bob.reply)}`);
    assert.equal(bob.reply.owner?.user_id, Alice.userId, "node 2 names Alice (node 1) as the owner");
    assert.deepEqual(
      bob.reply.queue.map((entry) => entry.user_id),
      [Alice.userId, Bob.userId],
    );
    // Each sees the other across the nodes.
    await rosterBecomes(alice.watch, [Alice.userId, Bob.userId]);
    await rosterBecomes(bob.watch, [Alice.userId, Bob.userId]);

    // Alice types on node 1; Bob receives it on node 2.
    const draftParams = paramsOf(record, { title: "Alice's cross-node draft", data: { summary: "typed on node 1" } });
    const sentAt = Date.now();
    const typed = await alice.form.push("draft", { params: draftParams });
    assert.equal(typed.status, "ok", JSON.stringify(typed.response));
    const draft = await bob.form.next("draft");
    const draftLatency = Date.now() - sentAt;
    assert.deepEqual(draft.params, draftParams);
    assert.equal(draft.updated_by.user_id, Alice.userId);

    // Alice leaves on node 1: Bob on node 2 is promoted and holds her draft.
    const leftAt = Date.now();
    await alice.form.leave();
    const promoted = await bob.form.next("role", { where: (p) => p.role === "owner" });
    const promotionLatency = Date.now() - leftAt;
    assert.equal(promoted.reason, "promoted", JSON.stringify(promoted));
    assert.equal(promoted.owner.user_id, Bob.userId);
    assert.equal(
      promoted.draft?.version,
      typed.response.version,
      `Bob holds Alice's draft: ${JSON.stringify(promoted)}`,
    );
    assert.equal(promoted.draft.updated_by.user_id, Alice.userId);
    await rosterBecomes(bob.watch, [Bob.userId]);

    // A late joiner on node 1 sees Bob as owner and the draft (it lives in Redis, not on Alice's node).
    const carol = await openForm(n1(), Carol, record.id, "carol-1");
    assert.equal(carol.reply.owner?.user_id, Bob.userId, JSON.stringify(carol.reply));
    assert.deepEqual(
      carol.reply.draft?.params,
      draftParams,
      `the late joiner's draft: ${JSON.stringify(carol.reply.draft)}`,
    );

    // Bob saves Alice's draft from node 2; Carol on node 1 is told.
    const saved = await bob.form.push("save", {});
    assert.equal(saved.status, "ok", JSON.stringify(saved.response));
    assert.equal((await getRecord(n1(), record.id)).title, draftParams.title);
    assert.equal((await carol.form.next("saved")).lock_version, saved.response.lock_version);

    report(
      `test 1: draft node 1 → node 2 ${ms(draftLatency)}; owner leaves on node 1 → promoted on node 2 ${ms(promotionLatency)}`,
    );
    for (const side of [alice, bob, carol]) side.client.disconnectNow();
  },
);

// -------------------------------------------------------------------------------------------------------------------

test(
  "kill -9 of node 1 while Alice owns: Bob promoted within lease + 1 s (≤ 6.5 s), Alice gone everywhere, no ghost",
  { timeout: 90_000 },
  async () => {
    const { Alice, Bob, Carol, Dave } = users;
    const record = await newRecord(n2(), "Multinode 2");
    const alice = await openForm(n1(), Alice, record.id, "alice-2");
    assert.equal(alice.reply.role, "owner");
    const bob = await openForm(n2(), Bob, record.id, "bob-2");
    assert.equal(bob.reply.role, "spectator");
    await rosterBecomes(bob.watch, [Alice.userId, Bob.userId]);
    const typed = await alice.form.push("draft", { params: paramsOf(record, { title: "Typed before the crash" }) });
    assert.equal(typed.status, "ok");
    await bob.form.next("draft");

    const killedAt = Date.now();
    await cluster.killNode("n1");
    alice.client.disconnectNow(); // Its node is gone; stop phoenix.js from reconnecting to a restarted node 1.

    const promoted = await bob.form.next("role", { where: (p) => p.role === "owner", timeout: LEASE_MS + 5_000 });
    const crashToPromotion = Date.now() - killedAt;
    report(`test 2: kill -9 of node 1 → Bob promoted on node 2 after ${ms(crashToPromotion)} (lease ${LEASE_MS} ms)`);
    assert.equal(promoted.reason, "promoted", JSON.stringify(promoted));
    assert.equal(promoted.owner.user_id, Bob.userId);
    assert.ok(
      crashToPromotion <= LEASE_MS + 1_500,
      `promotion took ${crashToPromotion} ms, more than the lease + 1.5 s`,
    );
    assert.equal(
      promoted.draft?.version,
      typed.response.version,
      `the crashed owner's draft survives: ${JSON.stringify(promoted)}`,
    );
    await rosterBecomes(bob.watch, [Bob.userId]);

    // Node 2: a fresh join lists only Bob (and the joiner).
    const onN2 = await freshLook(n2(), Carol, record.id);
    assert.deepEqual(
      onN2.ids,
      [Bob.userId, Carol.userId].sort(),
      `fresh join on node 2: ${JSON.stringify(onN2.state)}`,
    );
    assert.equal(onN2.reply.owner?.user_id, Bob.userId);

    // Node 1 again (a new process): its fresh join lists only Bob too.
    await cluster.startNode("n1");
    const onN1 = await freshLook(n1(), Dave, record.id);
    assert.deepEqual(
      onN1.ids,
      [Bob.userId, Dave.userId].sort(),
      `fresh join on restarted node 1: ${JSON.stringify(onN1.state)}`,
    );
    assert.equal(onN1.reply.owner?.user_id, Bob.userId);

    // Another lease later: still nobody but Bob; no role change for Bob.
    await sleep(LEASE_MS + 500);
    assert.deepEqual(userIdsOf(bob.watch), [Bob.userId], "no ghost in Bob's roster a lease later");
    assert.deepEqual(bob.form.inbox.pending("role"), [], "Bob's role did not change again");
    for (const node of [n1(), n2()]) {
      const look = await freshLook(node, Carol, record.id);
      assert.deepEqual(
        look.ids,
        [Bob.userId, Carol.userId].sort(),
        `a lease later, fresh join on ${node.name}: ${JSON.stringify(look.state)}`,
      );
      assert.equal(look.entries, 2, "one entry each");
    }
    bob.client.disconnectNow();
  },
);

// -------------------------------------------------------------------------------------------------------------------

test(
  "a record written through node 2's API appears live on node 1's entity_data:article",
  { timeout: 30_000 },
  async () => {
    const { Carol } = users;
    const client = await connect(n1(), Carol);
    const articles = client.channel("entity_data:article", {}, ["data_created", "data_updated", "data_deleted"]);
    await articles.join();

    const createdAt = Date.now();
    const record = await newRecord(n2(), "Multinode 3: written on node 2");
    const created = await articles.next("data_created", { where: (p) => p.data_id === record.id });
    const createLatency = Date.now() - createdAt;
    assert.equal(created.entity_id, record.entity_id);

    const updatedAt = Date.now();
    await n2().apiOk("PUT", `/api/entities/article/records/${record.id}`, {
      token: users.Alice.token,
      body: { title: "Multinode 3, renamed on node 2", data: record.data, lock_version: record.lock_version },
    });
    await articles.next("data_updated", { where: (p) => p.data_id === record.id });
    const updateLatency = Date.now() - updatedAt;
    report(
      `test 3: API write on node 2 → entity_data on node 1: create ${ms(createLatency)}, update ${ms(updateLatency)} (incl. the HTTP request)`,
    );
    client.disconnectNow();
  },
);

// -------------------------------------------------------------------------------------------------------------------

/**
 * Redis loses everything mid-session (`restart`: killed and started empty on the same port; `flush`: FLUSHALL).
 * Afterwards broadcasts flow again, the roster is re-asserted (a fresh join on either node sees Alice then Bob),
 * exactly one owner (Alice) and both nodes agree, the draft is still there, and a lease later there is no ghost.
 */
async function redisLoss(how) {
  const { Alice, Bob, Carol, Dave } = users;
  const record = await newRecord(n1(), `Multinode 4 (${how})`);
  const scratch = await newRecord(n2(), `Multinode 4 scratch (${how})`);
  const alice = await openForm(n1(), Alice, record.id, `alice-4-${how}`);
  assert.equal(alice.reply.role, "owner");
  assert.equal((await alice.form.next("role")).reason, "first");
  const bob = await openForm(n2(), Bob, record.id, `bob-4-${how}`);
  assert.equal(bob.reply.role, "spectator");
  await rosterBecomes(bob.watch, [Alice.userId, Bob.userId]);
  const draftParams = paramsOf(record, { title: `Draft before the Redis ${how}` });
  assert.equal((await alice.form.push("draft", { params: draftParams })).status, "ok");
  await bob.form.next("draft");
  const listener = await connect(n1(), Carol, "Carol@n1 (list)");
  const articles = listener.channel("entity_data:article", {}, ["data_updated"]);
  await articles.join();

  const lostAt = Date.now();
  if (how === "restart") await cluster.redis.restart();
  else await cluster.redis.flushAll();

  // Pubsub resumes: a write through node 2 reaches node 1's list again (retry: a broadcast sent while a node is
  // still reconnecting may be lost; Redis pub/sub is at-most-once).
  let lockVersion = scratch.lock_version;
  let attempts = 0;
  await waitUntil(
    async () => {
      attempts += 1;
      const row = await n2().apiOk("PUT", `/api/entities/article/records/${scratch.id}`, {
        token: Alice.token,
        body: { title: `scratch ${attempts}`, data: scratch.data, lock_version: lockVersion },
      });
      lockVersion = row.lock_version;
      try {
        await articles.next("data_updated", { where: (p) => p.data_id === scratch.id, timeout: 300 });
        return true;
      } catch {
        return false;
      }
    },
    15_000,
    `after the Redis ${how}, a write through node 2 never reached node 1's entity_data:article\n${cluster.logs(15)}`,
    0,
  );
  const pubsubBack = Date.now() - lostAt;

  // The roster is re-asserted: wait until Redis holds this session's entries again, then look from both nodes.
  await waitUntil(
    async () => (await cluster.redis.cli("--scan", "--pattern", `*data_edit:${record.id}*`)).length > 0,
    10_000,
    `after the Redis ${how}, no key of data_edit:${record.id} came back: ${await cluster.redis.cli("--scan")}\n${cluster.logs(15)}`,
  );
  const rosterBack = Date.now() - lostAt;
  await sleep(300);
  const looks = [await freshLook(n1(), Carol, record.id), await freshLook(n2(), Dave, record.id)];
  for (const [look, joiner, node] of [
    [looks[0], Carol, "node 1"],
    [looks[1], Dave, "node 2"],
  ]) {
    assert.equal(
      look.reply.owner?.user_id,
      Alice.userId,
      `after the Redis ${how}, a fresh join on ${node} names Alice: ${JSON.stringify(look.reply)}`,
    );
    assert.deepEqual(
      look.reply.queue.map((entry) => entry.user_id),
      [Alice.userId, Bob.userId, joiner.userId],
      `after the Redis ${how}, ${node}'s queue keeps Alice before Bob, once each`,
    );
    assert.deepEqual(
      look.reply.draft?.params,
      draftParams,
      `after the Redis ${how}, the draft is still there (${node})`,
    );
  }

  // Exactly one owner, and the two clients agree.
  assert.equal(alice.role(), "owner", `Alice's role after the Redis ${how}\n${alice.client.transcript(10)}`);
  assert.equal(bob.role(), "spectator", `Bob's role after the Redis ${how}\n${bob.client.transcript(10)}`);
  const aliceTypes = await alice.form.push("draft", {
    params: { ...draftParams, title: `Typed after the Redis ${how}` },
  });
  const bobTypes = await bob.form.push("draft", { params: { ...draftParams, title: "Bob's forged draft" } });
  assert.equal(aliceTypes.status, "ok", `Alice (owner) may type: ${JSON.stringify(aliceTypes.response)}`);
  assert.equal(bobTypes.response.reason, "not_owner", `Bob (spectator) may not: ${JSON.stringify(bobTypes.response)}`);
  const reached = await bob.form.next("draft", { where: (p) => p.params.title === `Typed after the Redis ${how}` });
  assert.equal(reached.updated_by.user_id, Alice.userId);
  // The fence works again: the owner's save goes through; the spectator's is refused.
  const refused = await bob.form.push("save", { params: paramsOf(record, { title: "Bob's forged save" }) });
  assert.equal(refused.response.reason, "not_owner", JSON.stringify(refused.response));
  const saved = await alice.form.push("save", {});
  assert.equal(
    saved.status,
    "ok",
    `Alice's save after the Redis ${how}: ${JSON.stringify(saved.response)}\n${cluster.logs(15)}`,
  );

  // No ghost: a lease later the session still has exactly Alice and Bob, one entry each, and nobody's role moved.
  await sleep(LEASE_MS + 1_000);
  const rolesAfter = [...alice.form.inbox.pending("role"), ...bob.form.inbox.pending("role")].map(
    (item) => item.payload,
  );
  for (const node of [n1(), n2()]) {
    const look = await freshLook(node, Carol, record.id);
    assert.deepEqual(
      look.ids,
      [Alice.userId, Bob.userId, Carol.userId].sort(),
      `a lease after the Redis ${how}, ${node.name}: ${JSON.stringify(look.state)}`,
    );
    assert.equal(look.entries, 3, `one entry each: ${JSON.stringify(look.state)}`);
    assert.equal(look.reply.owner?.user_id, Alice.userId);
  }
  assert.deepEqual(userIdsOf(bob.watch), [Alice.userId, Bob.userId].sort(), "Bob's roster a lease later");
  assert.deepEqual(userIdsOf(alice.watch), [Alice.userId, Bob.userId].sort(), "Alice's roster a lease later");
  assert.equal(alice.role(), "owner");
  assert.equal(bob.role(), "spectator");
  for (const role of rolesAfter)
    assert.equal(role.owner?.user_id, Alice.userId, `a role push named another owner: ${JSON.stringify(role)}`);
  report(
    `test 4 (${how}): broadcasts resumed after ${ms(pubsubBack)} (${attempts} writes), roster back in Redis after ${ms(rosterBack)}; ` +
      `role pushes since: ${JSON.stringify(rolesAfter.map((role) => `${role.role}/${role.reason}`))}`,
  );
  for (const side of [alice, bob]) side.client.disconnectNow();
  listener.disconnectNow();
}

test(
  "Redis restarted mid-session: pubsub resumes, rosters re-asserted, exactly one owner, no ghost",
  { timeout: 90_000 },
  async () => {
    await redisLoss("restart");
  },
);

test(
  "Redis flushed (FLUSHALL) mid-session: pubsub resumes, rosters re-asserted, exactly one owner, no ghost",
  { timeout: 90_000 },
  async () => {
    await redisLoss("flush");
  },
);

// -------------------------------------------------------------------------------------------------------------------

test(
  "PostgreSQL gone mid-save: the save fails with a clear message and the draft stays; back → the save succeeds",
  { timeout: 120_000 },
  async () => {
    const { Alice, Bob, Carol } = users;
    const record = await newRecord(n1(), "Multinode 5");
    const alice = await openForm(n1(), Alice, record.id, "alice-5");
    assert.equal(alice.reply.role, "owner");
    const bob = await openForm(n2(), Bob, record.id, "bob-5");
    const draftParams = paramsOf(record, { title: "Saved once PostgreSQL is back" });
    const typed = await alice.form.push("draft", { params: draftParams });
    assert.equal(typed.status, "ok");
    await bob.form.next("draft");

    let restored = false;
    await cluster.pgProxy.cut();
    try {
      const savedAt = Date.now();
      const failed = await pushLong(alice.form, "save", {}, 45_000);
      const failLatency = Date.now() - savedAt;
      report(`test 5: save with PostgreSQL cut answered after ${ms(failLatency)}: ${JSON.stringify(failed)}`);
      assert.equal(failed.status, "error", JSON.stringify(failed));
      assert.equal(
        failed.response.reason,
        "unavailable",
        `the save's error: ${JSON.stringify(failed.response)}\n${cluster.logs(10)}`,
      );
      assert.match(failed.response.message ?? "", /draft is kept/, JSON.stringify(failed.response));
      // Nobody was told the draft ended or the row was saved.
      await sleep(200);
      assert.deepEqual(bob.form.inbox.pending("saved"), []);
      assert.deepEqual(bob.form.inbox.pending("draft"), [], "no draft push (the draft did not change)");

      await cluster.pgProxy.restore();
      restored = true;
    } finally {
      if (!restored) await cluster.pgProxy.restore();
    }

    // The draft is still the session's: a late joiner on node 2 sees it.
    const carol = await openForm(n2(), Carol, record.id, "carol-5");
    assert.deepEqual(
      carol.reply.draft?.params,
      draftParams,
      `the draft after the failed save: ${JSON.stringify(carol.reply.draft)}`,
    );
    assert.equal(carol.reply.owner?.user_id, Alice.userId);

    // PostgreSQL is back: the same save succeeds (the pool may need a moment to reconnect).
    const retryAt = Date.now();
    const saved = await pushLong(alice.form, "save", {}, 40_000);
    report(
      `test 5: the same save after PostgreSQL came back answered after ${ms(Date.now() - retryAt)}: ${saved.status}`,
    );
    assert.equal(saved.status, "ok", `save after the restore: ${JSON.stringify(saved.response)}\n${cluster.logs(10)}`);
    assert.equal(saved.response.lock_version, record.lock_version + 1);
    assert.equal((await getRecord(n2(), record.id)).title, draftParams.title);
    assert.equal((await carol.form.next("saved")).lock_version, saved.response.lock_version);
    for (const side of [alice, bob, carol]) side.client.disconnectNow();
  },
);

// -------------------------------------------------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with MULTINODE_SEED. */
function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RACE_EVENTS = ["role", "saved"];

/** A channel for one race: tracks the last `lock_version` it heard of and when it was told it is a spectator. */
async function raceJoin(client, recordId, tab, knowledge) {
  const joined = client.channel(`edit:data:${recordId}`, { tab_id: tab }, RACE_EVENTS);
  const side = { joined, demotedAt: null, promotedAt: null, role: null };
  joined.channel.on("role", (payload) => {
    side.role = payload.role;
    if (payload.role === "spectator" && side.demotedAt === null) side.demotedAt = Date.now();
    if (payload.role === "owner" && side.promotedAt === null) side.promotedAt = Date.now();
  });
  joined.channel.on("saved", (payload) => {
    knowledge.known = Math.max(knowledge.known, payload.lock_version);
  });
  side.reply = await joined.join();
  side.role ??= side.reply.role;
  knowledge.known = Math.max(knowledge.known, side.reply.lock_version);
  return side;
}

test(
  "forced split brain: saves fenced by a stale ownership are refused (0 lost updates over many randomized races)",
  { timeout: 240_000 },
  async () => {
    const races = Number(process.env.MULTINODE_RACES || 200);
    const seed = Number(process.env.MULTINODE_SEED || Date.now() % 1_000_000);
    const random = prng(seed);
    const between = (low, high) => low + Math.floor(random() * (high - low + 1));
    const { Alice, Bob } = users;
    const nodes = [n1(), n2()];
    const alices = [
      await connect(nodes[0], Alice, "Alice@n1 (races)"),
      await connect(nodes[1], Alice, "Alice@n2 (races)"),
    ];
    const bobs = [await connect(nodes[0], Bob, "Bob@n1 (races)"), await connect(nodes[1], Bob, "Bob@n2 (races)")];
    const pool = [];
    for (let index = 0; index < 12; index += 1) pool.push(await newRecord(nodes[index % 2], `Race record ${index}`));

    const lost = [];
    const stats = {
      take: 0,
      "rejoin-take": 0,
      leave: 0,
      loserSaves: 0,
      loserAccepted: 0,
      loserAcceptedInWindow: 0,
      loserRefused: 0,
      loserConflicts: 0,
      loserUnavailable: 0,
      fenceOnly: 0,
      winnerRetries: 0,
      winnerConflicts: 0,
    };
    const accepted = new Map(); // record id → [{lock_version, title, by}]
    const startedAt = Date.now();

    for (let race = 0; race < races; race += 1) {
      const record = pool[race % pool.length];
      const loserNode = between(0, 1);
      const winnerNode = 1 - loserNode;
      const kind = ["take", "rejoin-take", "leave"][between(0, 2)];
      stats[kind] += 1;
      const where = `race ${race} (${kind}, loser on ${nodes[loserNode].name}, seed ${seed})`;
      const loserKnows = { known: 0 };
      const winnerKnows = { known: 0 };
      const loserClient = alices[loserNode];
      const winnerClient = kind === "leave" ? bobs[winnerNode] : alices[winnerNode];

      // The loser joins first and owns; the winner joins on the other node as a spectator.
      let loser = await raceJoin(loserClient, record.id, `L-${race}`, loserKnows);
      if (loser.role !== "owner") {
        // The previous race's leaves may still be on their way to this node: wait for the baton.
        await waitUntil(
          () => loser.role === "owner",
          3_000,
          `${where}: the loser never became owner: ${JSON.stringify(loser.reply)}`,
          5,
        );
      }
      let winner = await raceJoin(winnerClient, record.id, `W-${race}`, winnerKnows);
      if (winner.reply.role !== "spectator")
        lost.push({ where, what: `two owners at join: ${JSON.stringify(winner.reply)}` });
      if (kind === "rejoin-take") {
        await winner.joined.leave();
        winner = await raceJoin(winnerClient, record.id, `W-${race}`, winnerKnows);
        if (winner.reply.role !== "spectator")
          lost.push({ where, what: `two owners at rejoin: ${JSON.stringify(winner.reply)}` });
      }

      const handoverDelay = between(0, 12);
      const loserDelay = between(0, 12);
      let handedOverAt = null; // when the winner was told it holds the baton (take_here's ok, or its promotion)
      let winnerCommit = null;
      let winnerDone = false;
      const loserSaves = [];

      const winnerSide = (async () => {
        await sleep(handoverDelay);
        if (kind === "leave") {
          await waitUntil(
            () => winner.promotedAt !== null,
            5_000,
            `${where}: Bob was never promoted\n${winnerClient.transcript(10)}`,
            2,
          );
          handedOverAt = winner.promotedAt;
        } else {
          const taken = await winner.joined.push("take_here", {});
          if (taken.status !== "ok") throw new Error(`${where}: take_here refused: ${JSON.stringify(taken.response)}`);
          handedOverAt = Date.now();
        }
        const deadline = Date.now() + 5_000;
        for (let attempt = 0; ; attempt += 1) {
          if (Date.now() > deadline)
            throw new Error(`${where}: the winner could not save within 5 s\n${winnerClient.transcript(20)}`);
          const sent = winnerKnows.known;
          const title = `W ${race}.${attempt}`;
          const reply = await winner.joined.push("save", {
            params: { title, data: { summary: title } },
            lock_version: sent,
          });
          if (reply.status === "ok") {
            winnerCommit = { lock_version: reply.response.lock_version, sent, title, at: Date.now() };
            break;
          }
          if (reply.response.reason === "conflict") {
            stats.winnerConflicts += 1;
            winnerKnows.known = Math.max(winnerKnows.known, reply.response.lock_version);
          } else if (reply.response.reason === "not_owner" || reply.response.reason === "unavailable") {
            stats.winnerRetries += 1;
            await sleep(3);
          } else {
            throw new Error(`${where}: the winner's save: ${JSON.stringify(reply.response)}`);
          }
        }
        winnerDone = true;
      })();

      const loserSide = (async () => {
        await sleep(loserDelay);
        let channel = loser;
        let rejoined = false;
        let refusedAfterWinner = 0;
        const deadline = Date.now() + 4_000;
        for (let attempt = 0; attempt < 60 && Date.now() < deadline; attempt += 1) {
          if (winnerDone && refusedAfterWinner >= 2) break;
          if (kind === "leave" && !rejoined && attempt === 1 + (race % 3)) {
            // The loser's tab leaves and comes straight back (same tab id): it queues behind Bob and must never save.
            await channel.joined.leave();
            channel = await raceJoin(loserClient, record.id, `L-${race}`, loserKnows);
            rejoined = true;
            loser = channel;
          }
          // Once the winner committed, the loser reloads the row (as a client does after a `saved` push), so its
          // save names the current version and only the owner fence can refuse it.
          if (winnerCommit) loserKnows.known = Math.max(loserKnows.known, winnerCommit.lock_version);
          const sent = loserKnows.known;
          const title = `L ${race}.${attempt}`;
          const sentAt = Date.now();
          const demotedBefore = channel.demotedAt !== null && channel.demotedAt <= sentAt;
          const winnerCommittedBefore = winnerCommit !== null;
          const reply = await channel.joined.push("save", {
            params: { title, data: { summary: title } },
            lock_version: sent,
          });
          stats.loserSaves += 1;
          const entry = { title, sent, sentAt, rejoined, demotedBefore, winnerCommittedBefore, reply };
          loserSaves.push(entry);
          if (reply.status === "ok") {
            loserKnows.known = Math.max(loserKnows.known, reply.response.lock_version);
          } else if (reply.response.reason === "conflict") {
            stats.loserConflicts += 1;
            loserKnows.known = Math.max(loserKnows.known, reply.response.lock_version);
          } else if (reply.response.reason === "not_owner") {
            stats.loserRefused += 1;
            if (winnerDone) refusedAfterWinner += 1;
          } else if (reply.response.reason === "unavailable") {
            stats.loserUnavailable += 1;
            if (winnerDone) refusedAfterWinner += 1;
          } else {
            throw new Error(`${where}: the loser's save: ${JSON.stringify(reply.response)}`);
          }
          await sleep(between(0, 3));
        }
      })();

      await Promise.all([winnerSide, loserSide]);

      // Judge the race.
      const list = accepted.get(record.id) ?? [];
      accepted.set(record.id, list);
      list.push({ ...winnerCommit, by: "winner", race });
      // Refusals that only the owner fence could make: the save named the row's current version (the winner's
      // commit, already done when it was sent), so the lock_version check alone would have let it through.
      stats.fenceOnly += loserSaves.filter(
        (save) =>
          save.reply.status === "error" && save.winnerCommittedBefore && save.sent === winnerCommit.lock_version,
      ).length;
      for (const save of loserSaves.filter((entry) => entry.reply.status === "ok")) {
        const version = save.reply.response.lock_version;
        stats.loserAccepted += 1;
        list.push({ lock_version: version, sent: save.sent, title: save.title, by: "loser", race });
        if (handedOverAt !== null && save.sentAt >= handedOverAt) stats.loserAcceptedInWindow += 1;
        const reasons = [];
        if (version > winnerCommit.lock_version)
          reasons.push(`committed as v${version} after the winner's v${winnerCommit.lock_version}`);
        if (save.rejoined) reasons.push("sent after the loser had left the session");
        if (save.demotedBefore) reasons.push("sent after the loser was told it is a spectator");
        if (save.winnerCommittedBefore) reasons.push("sent after the winner's save was accepted");
        if (reasons.length)
          lost.push({
            where,
            what: `the loser's save ${save.title} (lock_version ${save.sent}) was accepted: ${reasons.join("; ")}`,
          });
      }
      // The loser is told it lost the baton (take kinds: a role push on its channel; leave: its new join said so).
      if (kind !== "leave") {
        try {
          await waitUntil(() => loser.role === "spectator", 2_000, "", 5);
        } catch {
          lost.push({ where, what: `the loser still believes it owns (role ${loser.role}) 2 s after the hand-over` });
        }
      } else if (loser.reply.role !== "spectator") {
        lost.push({ where, what: `the loser's rejoin says ${JSON.stringify(loser.reply)}` });
      }
      // The row is the last accepted save, at its version.
      const row = await getRecord(nodes[race % 2], record.id);
      const last = list.reduce((best, save) => (save.lock_version > best.lock_version ? save : best));
      if (row.lock_version !== last.lock_version || row.title !== last.title) {
        lost.push({
          where,
          what: `the row is v${row.lock_version} "${row.title}", the last accepted save was v${last.lock_version} "${last.title}"`,
        });
      }
      await Promise.all([loser.joined.leave(), winner.joined.leave()]);
    }

    // Across all races: every accepted save was based on the version just before it, and no version was accepted twice
    // (a write overwritten without a conflict would break one of these).
    for (const [id, list] of accepted) {
      const seen = new Map();
      for (const save of list) {
        if (save.lock_version !== save.sent + 1)
          lost.push({
            where: `record ${id}`,
            what: `${save.title} sent lock_version ${save.sent} and got v${save.lock_version}`,
          });
        if (seen.has(save.lock_version))
          lost.push({
            where: `record ${id}`,
            what: `v${save.lock_version} accepted twice: ${seen.get(save.lock_version)} and ${save.title}`,
          });
        seen.set(save.lock_version, save.title);
      }
    }
    const seconds = (Date.now() - startedAt) / 1000;
    report(
      `test 6: ${races} split-brain races in ${seconds.toFixed(1)} s (seed ${seed}; take ${stats.take}, rejoin+take ${stats["rejoin-take"]}, leave ${stats.leave}): ` +
        `loser saves ${stats.loserSaves} → accepted ${stats.loserAccepted} (of which sent after the winner was told it owns: ${stats.loserAcceptedInWindow}), ` +
        `not_owner ${stats.loserRefused}, conflict ${stats.loserConflicts}, unavailable ${stats.loserUnavailable}; ` +
        `refused although their lock_version was current (only the owner fence stopped them): ${stats.fenceOnly}; ` +
        `winner saves ${races} (retries while its node caught up: ${stats.winnerRetries}, conflicts: ${stats.winnerConflicts}); LOST UPDATES: ${lost.length}`,
    );
    for (const client of [...alices, ...bobs]) client.disconnectNow();
    assert.ok(
      stats.fenceOnly >= races,
      `the races must exercise the owner fence itself (current lock_version, stale owner): ${stats.fenceOnly}`,
    );
    assert.equal(
      lost.length,
      0,
      `lost updates:\n${lost
        .slice(0, 20)
        .map((item) => `${item.where}: ${item.what}`)
        .join("\n")}\n${cluster.logs(20)}`,
    );
  },
);

// -------------------------------------------------------------------------------------------------------------------

test(
  "partition: node 1 cut off Redis while Alice owns there → her saves refused, Bob promoted, one owner after healing",
  { timeout: 90_000 },
  async () => {
    const { Alice, Bob, Carol, Dave } = users;
    const record = await newRecord(n2(), "Multinode partition");
    const alice = await openForm(n1(), Alice, record.id, "alice-p");
    assert.equal(alice.reply.role, "owner");
    const bob = await openForm(n2(), Bob, record.id, "bob-p");
    assert.equal(bob.reply.role, "spectator");
    await rosterBecomes(bob.watch, [Alice.userId, Bob.userId]);

    const proxy = cluster.redisProxies.get("n1");
    let healed = false;
    const aliceSaves = [];
    let bobSaved = null;
    let promotedAfter = null;
    try {
      const cutAt = Date.now();
      await proxy.cut();
      // Alice keeps saving on node 1 while it cannot reach Redis: none of these may be accepted.
      let version = record.lock_version;
      const aliceLoop = (async () => {
        while (Date.now() - cutAt < LEASE_MS + 2_500) {
          const title = `Alice during the partition ${aliceSaves.length}`;
          const reply = await pushLong(
            alice.form,
            "save",
            { params: { title, data: {} }, lock_version: version },
            15_000,
          );
          aliceSaves.push({ at: Date.now() - cutAt, title, reply });
          if (reply.status === "error" && reply.response.reason === "conflict") version = reply.response.lock_version;
          await sleep(250);
        }
      })();
      const promoted = await bob.form.next("role", { where: (p) => p.role === "owner", timeout: LEASE_MS + 5_000 });
      promotedAfter = Date.now() - cutAt;
      assert.equal(promoted.reason, "promoted", JSON.stringify(promoted));
      const saved = await bob.form.push("save", {
        params: { title: "Bob during the partition", data: {} },
        lock_version: record.lock_version,
      });
      assert.equal(saved.status, "ok", `Bob's save on node 2: ${JSON.stringify(saved.response)}`);
      bobSaved = saved.response.lock_version;
      await aliceLoop;

      await proxy.restore();
      healed = true;
    } finally {
      if (!healed) await proxy.restore();
    }
    const accepted = aliceSaves.filter((save) => save.reply.status === "ok");
    const reasons = aliceSaves.map((save) => save.reply.response.reason ?? "ok");
    report(
      `partition: Bob promoted ${ms(promotedAfter)} after node 1 lost Redis; Alice's ${aliceSaves.length} saves on node 1 meanwhile: ` +
        `${JSON.stringify(reasons.reduce((counts, reason) => ({ ...counts, [reason]: (counts[reason] ?? 0) + 1 }), {}))}`,
    );
    assert.deepEqual(
      accepted.map((save) => save.title),
      [],
      `saves accepted on the cut-off node: ${JSON.stringify(accepted)}`,
    );
    assert.ok(promotedAfter <= LEASE_MS + 2_000, `promotion took ${promotedAfter} ms`);
    const row = await getRecord(n2(), record.id);
    assert.equal(row.title, "Bob during the partition");
    assert.equal(row.lock_version, bobSaved);

    // Healed: exactly one owner (Bob), both nodes agree, Alice is told she is a spectator.
    await waitUntil(
      () => alice.role() === "spectator",
      10_000,
      () =>
        `Alice still ${alice.role()} after the partition healed\n${alice.client.transcript(15)}\n${cluster.logs(20)}`,
    );
    await sleep(500);
    const looks = [await freshLook(n1(), Carol, record.id), await freshLook(n2(), Dave, record.id)];
    for (const look of looks)
      assert.equal(look.reply.owner?.user_id, Bob.userId, `after healing: ${JSON.stringify(look.reply)}`);
    assert.deepEqual(
      looks[0].reply.queue.map((entry) => entry.user_id),
      looks[1].reply.queue.map((entry) => entry.user_id).map((id) => (id === Dave.userId ? Carol.userId : id)),
      "both nodes list the same queue",
    );
    const aliceTypes = await alice.form.push("draft", { params: { title: "Alice after healing", data: {} } });
    assert.equal(aliceTypes.response.reason, "not_owner", JSON.stringify(aliceTypes.response));
    assert.equal(bob.role(), "owner");
    report(
      `partition healed: queue on node 1 ${JSON.stringify(looks[0].reply.queue.map((entry) => entry.name))}, node 2 ${JSON.stringify(looks[1].reply.queue.map((entry) => entry.name))}`,
    );
    for (const side of [alice, bob]) side.client.disconnectNow();
  },
);
