// `room:*` presence with the official phoenix.js `Presence`: every client's `Presence.list` (after `onSync`) follows
// joins, an explicit `channel.leave()` (gone at once) and an abrupt `socket.disconnect()` (gone after the leave grace).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, PresenceWatch, disconnectAll } from "./client.mjs";
import { account, startWithUsers } from "./server.mjs";

// Long enough to tell "at once" from "after the grace" on a busy machine, short enough to keep the test quick.
const LEAVE_GRACE_MS = 1_500;

let setup;

before(async () => {
  setup = await startWithUsers([account("Alice"), account("Bob"), account("Carol")], {
    leaveGraceMs: LEAVE_GRACE_MS,
    demo: false,
  });
});

after(async () => {
  disconnectAll();
  await setup?.close();
});

async function joinRoom(server, user, topic, auth = "params") {
  const client = await new Client(server, { token: user.token, auth, label: user.name }).connect();
  const room = client.channel(topic);
  const presence = new PresenceWatch(room);
  const reply = await room.join();
  return { client, room, presence, reply };
}

const NAME = "room presence: Presence.list on each client follows joins, a leave and a disconnect";

test(NAME, { timeout: 60_000 }, async () => {
  const { server, accounts } = setup;
  const { Alice, Bob, Carol } = accounts;
  const topic = "room:interop";

  // Two clients.
  const alice = await joinRoom(server, Alice, topic);
  await alice.presence.until([Alice.userId]);
  const bob = await joinRoom(server, Bob, topic);
  await Promise.all([alice.presence.until([Alice.userId, Bob.userId]), bob.presence.until([Alice.userId, Bob.userId])]);

  // A third, authenticated with phoenix.js 1.8's `authToken` option instead of the `token` param.
  const carol = await joinRoom(server, Carol, topic, "authToken");
  const everyone = [Alice.userId, Bob.userId, Carol.userId];
  await Promise.all([alice.presence.until(everyone), bob.presence.until(everyone), carol.presence.until(everyone)]);

  // The metas carry the member's name (Phoenix's `{metas: [...]}` shape, one meta per connection).
  const listed = carol.presence.presence.list((id, presence) => ({ id, presence }));
  const bobAsSeenByCarol = listed.find((entry) => entry.id === Bob.userId)?.presence;
  assert.ok(bobAsSeenByCarol, "Carol lists Bob");
  assert.equal(bobAsSeenByCarol.metas.length, 1);
  assert.equal(bobAsSeenByCarol.metas[0].name, "Bob");
  assert.ok(bobAsSeenByCarol.metas[0].phx_ref, "each meta has a phx_ref");

  // An explicit leave: the others drop Bob at once (well before the grace could have expired).
  const leftAt = Date.now();
  await bob.room.leave();
  const [aliceSawIt, carolSawIt] = await Promise.all([
    alice.presence.until([Alice.userId, Carol.userId]),
    carol.presence.until([Alice.userId, Carol.userId]),
  ]);
  const leaveLatency = Math.max(aliceSawIt, carolSawIt) - leftAt;
  assert.ok(
    leaveLatency < LEAVE_GRACE_MS / 2,
    `a channel.leave() should remove the member at once; it took ${leaveLatency} ms (grace ${LEAVE_GRACE_MS} ms)`,
  );

  // An abrupt disconnect (no phx_leave): Carol stays listed during the grace, then disappears.
  const disconnectedAt = Date.now();
  await carol.client.disconnect();
  await alice.presence.staysFor([Alice.userId, Carol.userId], LEAVE_GRACE_MS / 3);
  const droppedAt = await alice.presence.until([Alice.userId], { timeout: LEAVE_GRACE_MS + 5_000 });
  const disconnectLatency = droppedAt - disconnectedAt;
  assert.ok(
    disconnectLatency >= LEAVE_GRACE_MS - 250,
    `a disconnected member should linger for the grace (${LEAVE_GRACE_MS} ms); it went after ${disconnectLatency} ms`,
  );

  // Bob's socket is still open and can join again; everyone sees him.
  const bobAgain = bob.client.channel(topic);
  const bobAgainPresence = new PresenceWatch(bobAgain);
  await bobAgain.join();
  await Promise.all([
    alice.presence.until([Alice.userId, Bob.userId]),
    bobAgainPresence.until([Alice.userId, Bob.userId]),
  ]);
});
