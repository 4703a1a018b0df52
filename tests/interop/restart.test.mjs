// Reconnect after a server restart: a phoenix.js client joined to a room sees the socket close (1001, "going away")
// when the server stops with SIGTERM, then reconnects and rejoins by itself once the server is back on the same
// address and data directory, and its channel's presence list contains it again.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, PresenceWatch, disconnectAll } from "./client.mjs";
import { Server, account, addUser, freePort, makeDataDir, removeDataDir, withTimeout } from "./server.mjs";

const ALICE = account("Alice");
const BOB = account("Bob");

let dataDir;
let server;

before(async () => {
  dataDir = await makeDataDir();
  await addUser(dataDir, ALICE);
  await addUser(dataDir, BOB);
});

after(async () => {
  disconnectAll();
  try {
    await server?.stop();
  } finally {
    server?.kill();
    await removeDataDir(dataDir);
  }
});

test("restart: the client sees 1001, reconnects, rejoins and is listed again", { timeout: 60_000 }, async () => {
  const port = await freePort();
  const bind = `127.0.0.1:${port}`;
  server = await new Server({ dataDir, bind, demo: false, leaveGraceMs: 300 }).start();
  assert.equal(server.address, bind);
  const alice = await server.token(ALICE.email, ALICE.password);
  const bob = await server.token(BOB.email, BOB.password);

  // Alice with the `token` param, Bob with the `authToken` option: both must survive the restart.
  const topic = "room:restart";
  const clients = [];
  for (const [user, auth] of [
    [{ ...ALICE, ...alice }, "params"],
    [{ ...BOB, ...bob }, "authToken"],
  ]) {
    const client = await new Client(server, { token: user.token, auth, label: user.name }).connect();
    const room = client.channel(topic);
    const presence = new PresenceWatch(room);
    await room.join();
    clients.push({ client, room, presence, user });
  }
  const both = [alice.userId, bob.userId];
  await Promise.all(clients.map(({ presence }) => presence.until(both)));

  // Stop: each socket closes with 1001 (going away), not 1000, so phoenix.js reconnects.
  const seen = clients.map(({ client }) => client.closes.length);
  const closed = clients.map(({ client }, index) =>
    waitUntil(() => client.closes.length > seen[index], 10_000, `${client.label}: socket.onClose`),
  );
  const exit = await server.stop();
  assert.equal(exit.code, 0, `livebaton exits cleanly on SIGTERM: ${JSON.stringify(exit)}\n${server.recentOutput()}`);
  await Promise.all(closed);
  clients.forEach(({ client }, index) => {
    // The first close after the stop is the server's; phoenix.js then retries while the server is down (1006).
    const first = client.closes[seen[index]];
    assert.equal(first.code, 1001, `${client.label} closed with ${first.code} ${first.reason}\n${client.transcript(10)}`);
  });
  const opensBefore = clients.map(({ client }) => client.opens);
  // phoenix.js keeps the last presence list across the restart, so only a list synced after it proves the rejoin.
  const syncsBefore = clients.map(({ presence }) => presence.syncs.length);

  // Start again on the same address and data directory (same secret, so the tokens still verify).
  server = await new Server({ dataDir, bind, demo: false, leaveGraceMs: 300 }).start();

  // phoenix.js reconnects and rejoins on its own; the presence lists contain both again.
  await Promise.all(
    clients.map(({ client }, index) =>
      waitUntil(() => client.opens > opensBefore[index], 15_000, `${client.label}: reopen\n${client.transcript()}`),
    ),
  );
  await Promise.all(
    clients.map(({ client, room }) =>
      waitUntil(() => room.channel.state === "joined", 15_000, `${client.label}'s channel rejoined\n${client.transcript()}`),
    ),
  );
  const everyone = JSON.stringify([...both].map(String).sort());
  await Promise.all(
    clients.map(({ client, presence }, index) =>
      waitUntil(
        () => presence.syncs.slice(syncsBefore[index]).some(({ ids }) => JSON.stringify(ids) === everyone),
        15_000,
        `${client.label}: a presence list synced after the rejoin lists both (now ${JSON.stringify(presence.ids())})\n${client.transcript()}`,
      ),
    ),
  );
});

/** Polls `condition` every 20 ms until it holds or `ms` pass. */
async function waitUntil(condition, ms, message) {
  let timer;
  try {
    await withTimeout(
      new Promise((done) => {
        const poll = () => (condition() ? done() : (timer = setTimeout(poll, 20)));
        poll();
      }),
      ms,
      message,
    );
  } finally {
    clearTimeout(timer);
  }
}
