// Socket-level interop with phoenix.js defaults: authentication refusals, the closing handshake, and the heartbeat.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, PresenceWatch, disconnectAll } from "./client.mjs";
import { account, sleep, startWithUsers, withTimeout } from "./server.mjs";

let setup;

before(async () => {
  // The server's defaults on purpose (idle timeout, leave grace): these tests are about phoenix.js's defaults meeting
  // them.
  setup = await startWithUsers([account("Alice"), account("Bob")], { demo: false });
});

after(async () => {
  disconnectAll();
  await setup?.close();
});

test("socket: a connect with a bad token is refused and never opens", { timeout: 30_000 }, async () => {
  const client = new Client(setup.server, {
    token: "lb1.not-a-token.signature",
    label: "intruder",
    socketOptions: { reconnectAfterMs: () => 10_000 },
  });
  const errored = new Promise((done) => client.socket.onError(() => done()));
  client.socket.connect();
  await withTimeout(errored, 5_000, "socket.onError for a refused upgrade");
  assert.equal(client.opens, 0, `a bad token must not open a socket\n${client.transcript()}`);
  client.disconnectNow();
});

test("socket: socket.disconnect() gets a close frame back (a clean close, not 1006)", { timeout: 30_000 }, async () => {
  const { Alice } = setup.accounts;
  const client = await new Client(setup.server, { token: Alice.token, label: "Alice" }).connect();
  await client.channel("room:close").join();
  const closed = new Promise((done) => client.socket.onClose((event) => done(event)));
  // phoenix.js sends a Close frame (here with 1000 "bye"); RFC 6455 5.5.1: the server must answer with a Close frame.
  client.socket.disconnect(undefined, 1000, "bye");
  const event = await withTimeout(closed, 5_000, "socket.onClose after socket.disconnect()");
  assert.notEqual(
    event.code,
    1006,
    "the server dropped the TCP connection without answering the client's Close frame (ws reports 1006, " +
      `wasClean ${event.wasClean})\n${client.transcript(8)}`,
  );
  assert.equal(event.wasClean, true);
});

test(
  "socket: phoenix.js with default options (30 s heartbeat) is never closed while alive; a frozen peer leaves within 10 s",
  { timeout: 180_000 },
  async () => {
    const { Alice, Bob } = setup.accounts;
    // phoenix.js heartbeats every 30 s by default; the server's idle timeout is 10 s. The server pings a socket quiet
    // for 5 s, and `ws` (like every browser) answers with a pong that counts as life. Bob watches the room to see
    // whether Alice flaps.
    const defaults = { reconnectAfterMs: undefined, rejoinAfterMs: undefined };
    const alice = await new Client(setup.server, { token: Alice.token, label: "Alice", socketOptions: defaults }).connect();
    await alice.channel("room:quiet").join();
    const bob = await new Client(setup.server, { token: Bob.token, label: "Bob", socketOptions: defaults }).connect();
    const bobRoom = bob.channel("room:quiet");
    const bobPresence = new PresenceWatch(bobRoom);
    await bobRoom.join();
    await bobPresence.until([Alice.userId, Bob.userId]);
    const syncsBefore = bobPresence.syncs.length;

    // Alice's second socket goes silent without closing (a laptop lid shut, a cable pulled): it stops reading, so
    // it answers no ping, and it never heartbeats.
    const frozen = await new Client(setup.server, {
      token: Alice.token,
      label: "Alice (frozen)",
      socketOptions: { heartbeatIntervalMs: 600_000 },
    }).connect();
    await frozen.channel("room:frozen").join();
    const watch = bob.channel("room:frozen");
    const frozenPresence = new PresenceWatch(watch);
    await watch.join();
    await frozenPresence.until([Alice.userId, Bob.userId]);
    const frozeAt = Date.now();
    frozen.socket.conn._socket.pause();
    const leftAt = await frozenPresence.until([Bob.userId], { timeout: 15_000 });
    const detection = leftAt - frozeAt;
    process.stderr.write(`a frozen peer's presence left ${detection} ms after it stopped answering\n`);
    assert.ok(detection <= 10_500, `a silent peer must leave within the 10 s idle timeout; it took ${detection} ms`);

    // Two minutes: four of phoenix.js's heartbeat intervals, twelve idle timeouts.
    await sleep(120_000);
    assert.deepEqual(
      alice.closes,
      [],
      "a phoenix.js client with default options was disconnected while idle " +
        `(server default --idle-timeout-secs 10, heartbeatIntervalMs 30000)\n${alice.transcript(8)}`,
    );
    assert.deepEqual(bob.closes, [], `Bob was disconnected\n${bob.transcript(8)}`);
    // Alice never flapped: every list the room showed Bob since has her in it.
    const flaps = bobPresence.syncs.slice(syncsBefore).filter((sync) => !sync.ids.includes(String(Alice.userId)));
    assert.deepEqual(flaps, [], `the room saw Alice leave and come back\n${bob.transcript(12)}`);
    frozen.disconnectNow();
  },
);
