// Two nodes behind a real nginx (Debian's package) running deploy/nginx-livebaton.conf as documented, only its ports
// replaced: phoenix.js clients connect through nginx, least_conn puts Alice and Bob on different nodes (checked with
// each node's /metrics), and the editing scenario works across them: Alice owns, Bob sees her draft, Alice leaves,
// Bob is promoted with her draft and saves it. A client sending a browser's Origin for the nginx address is accepted
// (nginx forwards Host with its port) and a foreign Origin is refused.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import WebSocket from "ws";

import { Client, disconnectAll } from "./client.mjs";
import { Cluster, Nginx, account, endpoint, freePortPair, socketsOpen, waitUntil } from "./cluster.mjs";

const EDIT_EVENTS = ["presence_state", "presence_diff", "role", "draft", "saved"];

let cluster;
let nginx;
let front;
let users;

before(async () => {
  // Fail first, and clearly, when nginx is missing (tests/interop/run installs it with scripts/ensure-nginx).
  Nginx.requireInstalled();
  cluster = new Cluster({ leaveGraceMs: 300 });
  await cluster.start([account("Alice"), account("Bob")]);
  const [first, second, listen] = await freePortPair(3);
  await cluster.startNode("n1", { port: first });
  await cluster.startNode("n2", { port: second });
  nginx = await new Nginx({ upstreamPorts: [first, second], listenPort: listen }).start();
  front = endpoint(nginx.address);
  users = await cluster.tokens(front); // POST /api/tokens through nginx
});

after(async () => {
  disconnectAll();
  try {
    await nginx?.stop();
  } finally {
    await cluster?.close();
  }
});

/** A WebSocket class for phoenix.js that sends `Origin` like a browser on a page of `origin`. */
function withOrigin(origin) {
  return class BrowserLikeWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin });
    }
  };
}

/** Which node serves each open socket now: `{n1: count, n2: count}` from their /metrics. */
async function socketCounts() {
  return {
    n1: await socketsOpen(cluster.node("n1")),
    n2: await socketsOpen(cluster.node("n2")),
  };
}

test(
  "nginx: clients reach both nodes through the documented config, and the editing scenario works across them",
  { timeout: 60_000 },
  async () => {
    const { Alice, Bob } = users;
    const record = await front.apiOk("POST", "/api/entities/article/records", {
      token: Alice.token,
      expected: 201,
      body: { title: "Through nginx", data: { summary: "created through nginx" } },
    });
    assert.deepEqual(await socketCounts(), { n1: 0, n2: 0 });

    // Alice's socket sends the Origin a browser on http://<nginx>/admin would send.
    const alice = await new Client(front, {
      token: Alice.token,
      label: "Alice via nginx",
      socketOptions: { heartbeatIntervalMs: 3_000, transport: withOrigin(`http://${nginx.address}`) },
    }).connect();
    const afterAlice = await waitUntil(
      async () => {
        const counts = await socketCounts();
        return counts.n1 + counts.n2 === 1 ? counts : null;
      },
      5_000,
      "Alice's socket to be open on one node",
    );
    const aliceNode = afterAlice.n1 === 1 ? "n1" : "n2";

    const bob = await new Client(front, {
      token: Bob.token,
      label: "Bob via nginx",
      socketOptions: { heartbeatIntervalMs: 3_000 },
    }).connect();
    const afterBob = await waitUntil(
      async () => {
        const counts = await socketCounts();
        return counts.n1 + counts.n2 === 2 ? counts : null;
      },
      5_000,
      "Bob's socket to be open",
    );
    assert.deepEqual(afterBob, { n1: 1, n2: 1 }, `least_conn puts Bob on the other node (Alice is on ${aliceNode})`);
    console.log(
      `[nginx] Alice's socket on ${aliceNode}, Bob's on ${aliceNode === "n1" ? "n2" : "n1"} (livebaton_sockets_open ${JSON.stringify(afterBob)})`,
    );

    // The editing scenario across the two nodes, through nginx.
    const aliceForm = alice.channel(`edit:data:${record.id}`, { tab_id: "alice-nginx" }, EDIT_EVENTS);
    const aliceReply = await aliceForm.join();
    assert.equal(aliceReply.role, "owner", JSON.stringify(aliceReply));
    const bobForm = bob.channel(`edit:data:${record.id}`, { tab_id: "bob-nginx" }, EDIT_EVENTS);
    const bobReply = await bobForm.join();
    assert.equal(bobReply.role, "spectator", JSON.stringify(bobReply));
    assert.equal(bobReply.owner?.user_id, Alice.userId);

    const params = {
      title: "Alice's draft through nginx",
      slug: record.slug,
      status: record.status,
      data: { summary: "typed via nginx" },
    };
    const sentAt = Date.now();
    const typed = await aliceForm.push("draft", { params });
    assert.equal(typed.status, "ok", JSON.stringify(typed.response));
    const draft = await bobForm.next("draft");
    const draftLatency = Date.now() - sentAt;
    assert.deepEqual(draft.params, params);

    const leftAt = Date.now();
    await aliceForm.leave();
    const promoted = await bobForm.next("role", { where: (p) => p.role === "owner" });
    const promotionLatency = Date.now() - leftAt;
    assert.equal(promoted.reason, "promoted", JSON.stringify(promoted));
    assert.equal(promoted.draft?.version, typed.response.version, "Bob holds Alice's draft");

    const saved = await bobForm.push("save", {});
    assert.equal(saved.status, "ok", JSON.stringify(saved.response));
    const row = await front.apiOk("GET", `/api/entities/article/records/${record.id}`, { token: Bob.token });
    assert.equal(row.title, params.title);
    assert.equal(row.lock_version, saved.response.lock_version);
    console.log(`[nginx] through nginx: draft ${draftLatency} ms, owner leaves → promoted ${promotionLatency} ms`);
    alice.disconnectNow();
    bob.disconnectNow();
  },
);

test(
  "nginx: a foreign Origin is refused through nginx (the node checks Origin against the forwarded Host)",
  { timeout: 30_000 },
  async () => {
    const { Alice } = users;
    const url = `ws://${nginx.address}/live/websocket?vsn=2.0.0&token=${encodeURIComponent(Alice.token)}`;
    const outcome = (origin) =>
      new Promise((done) => {
        const socket = new WebSocket(url, { origin });
        socket.once("open", () => {
          socket.close();
          done("open");
        });
        socket.once("unexpected-response", (_, response) => {
          done(`HTTP ${response.statusCode}`);
          socket.terminate();
        });
        socket.once("error", (error) => done(`error ${error.message}`));
      });
    assert.equal(
      await outcome(`http://${nginx.address}`),
      "open",
      "the page's own origin (nginx's address) is accepted",
    );
    const foreign = await outcome("http://evil.example");
    assert.match(foreign, /^HTTP 403$/, `a foreign origin: ${foreign}`);
  },
);
