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
  "socket: a quiet phoenix.js socket heartbeating every 3 s (as docs/protocol.md says) outlives the 10 s idle timeout",
  { timeout: 60_000 },
  async () => {
    const { Alice, Bob } = setup.accounts;
    // The server closes sockets silent for 10 s (fast ghost cleanup), so clients must heartbeat more often than
    // phoenix.js's 30 s default. Bob watches the room to see whether Alice flaps.
    const alice = await new Client(setup.server, {
      token: Alice.token,
      label: "Alice",
      socketOptions: { heartbeatIntervalMs: 3_000 },
    }).connect();
    await alice.channel("room:quiet").join();
    const bob = await new Client(setup.server, {
      token: Bob.token,
      label: "Bob",
      socketOptions: { heartbeatIntervalMs: 2_000 },
    }).connect();
    const bobRoom = bob.channel("room:quiet");
    const bobPresence = new PresenceWatch(bobRoom);
    await bobRoom.join();
    await bobPresence.until([Alice.userId, Bob.userId]);
    const syncsBefore = bobPresence.syncs.length;

    // Quiet (apart from heartbeats) for longer than the server's default idle timeout (10 s).
    await sleep(12_000);
    assert.deepEqual(
      alice.closes,
      [],
      "a heartbeating phoenix.js client was disconnected while idle " +
        `(server default --idle-timeout-secs 10, heartbeatIntervalMs 3000)\n${alice.transcript(8)}`,
    );
    assert.deepEqual(
      bobPresence.syncs.slice(syncsBefore),
      [],
      "and the room saw Alice leave and come back",
    );
  },
);
