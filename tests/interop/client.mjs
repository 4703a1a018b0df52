// The official phoenix JS client (`Socket`, `Channel`, `Presence` from the `phoenix` package) over `ws`, with the
// helpers the interop tests share: every wait has a timeout, every client records the raw frames it sent and received
// (for failure messages and bug reports), and every event a test listens to is queued so it cannot be missed between
// two awaits.

import assert from "node:assert/strict";

import { Presence, Socket } from "phoenix";
import WebSocket from "ws";

import { withTimeout } from "./server.mjs";

export const WAIT_MS = 5_000;

/** All clients created, so a test file can disconnect whatever is left in its `after` hook. */
const clients = new Set();

export function disconnectAll() {
  for (const client of clients) client.disconnectNow();
}

/**
 * One phoenix.js `Socket` for one signed-in user.
 *
 * `auth: "params"` (default) sends the token as the `token` connect param; `auth: "authToken"` uses phoenix.js 1.8's
 * `authToken` option (the `base64url.bearer.phx.<token>` subprotocol).
 */
export class Client {
  constructor(server, { token, auth = "params", label = "client", socketOptions = {} }) {
    this.label = label;
    this.frames = [];
    this.closes = [];
    this.opens = 0;
    const frames = this.frames;
    const record = (entry) => {
      frames.push({ at: Date.now(), ...entry });
      if (frames.length > 500) frames.shift();
      if (process.env.INTEROP_VERBOSE) process.stderr.write(`[${label}] ${entry.dir} ${entry.text ?? ""}\n`);
    };
    // The `ws` WebSocket, recording the exact text of every frame and the close code.
    class RecordingWebSocket extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols);
        record({ dir: "connect", text: `${url} protocols=${JSON.stringify(protocols ?? [])}` });
        this.addEventListener("message", (event) => record({ dir: "<-", text: String(event.data) }));
        this.addEventListener("close", (event) => record({ dir: "close", text: `${event.code} ${event.reason}` }));
        this.addEventListener("error", (event) => record({ dir: "error", text: String(event.message ?? event) }));
      }

      send(data) {
        record({ dir: "->", text: String(data) });
        super.send(data);
      }
    }
    const options = {
      transport: RecordingWebSocket,
      timeout: WAIT_MS,
      // Reconnect quickly; the defaults (up to 5 s between attempts) only make the restart test slower.
      reconnectAfterMs: (tries) => [50, 100, 200, 300, 500][tries - 1] ?? 500,
      rejoinAfterMs: (tries) => [200, 500, 1000][tries - 1] ?? 1000,
      ...socketOptions,
    };
    if (auth === "authToken") options.authToken = token;
    else options.params = { token };
    this.socket = new Socket(server.socketUrl, options);
    this.socket.onOpen(() => {
      this.opens += 1;
    });
    this.socket.onClose((event) => {
      this.closes.push({ code: event.code, reason: event.reason, at: Date.now() });
    });
    clients.add(this);
  }

  /** Connects and waits for the socket to open. */
  async connect() {
    const opened = new Promise((done, fail) => {
      const refs = [
        this.socket.onOpen(() => {
          this.socket.off(refs);
          done();
        }),
        this.socket.onError((error) => {
          this.socket.off(refs);
          fail(new Error(`${this.label}: socket error while connecting: ${error?.message ?? error}`));
        }),
      ];
    });
    this.socket.connect();
    await withTimeout(opened, WAIT_MS, `${this.label}: socket to open\n${this.transcript()}`);
    return this;
  }

  /** `socket.disconnect()` (a close frame, no `phx_leave`), waiting for the callback. */
  async disconnect() {
    const done = new Promise((resolve) => this.socket.disconnect(() => resolve()));
    await withTimeout(done, WAIT_MS, `${this.label}: socket.disconnect()`);
    clients.delete(this);
  }

  disconnectNow() {
    try {
      this.socket.disconnect();
    } catch {
      // Nothing to close.
    }
    clients.delete(this);
  }

  /** A channel whose `events` are queued from the moment it exists (see `Inbox`). */
  channel(topic, params = {}, events = []) {
    const channel = this.socket.channel(topic, params);
    return new JoinedChannel(this, channel, events);
  }

  /** The last frames of this client, one per line, for failure messages. */
  transcript(last = 40) {
    const start = this.frames[0]?.at ?? Date.now();
    return this.frames
      .slice(-last)
      .map((frame) => `  [${this.label} +${frame.at - start}ms] ${frame.dir} ${frame.text ?? ""}`)
      .join("\n");
  }
}

/** A phoenix.js `Channel` with a queue of the events the test listens to, and promise-returning join and push. */
export class JoinedChannel {
  constructor(client, channel, events) {
    this.client = client;
    this.channel = channel;
    this.topic = channel.topic;
    this.inbox = new Inbox(`${client.label} ${channel.topic}`);
    for (const event of events) channel.on(event, (payload) => this.inbox.add(event, payload));
  }

  /** `channel.join()`; resolves with the ok reply's response, rejects with the error reply or on timeout. */
  async join() {
    const reply = new Promise((done, fail) => {
      this.channel
        .join()
        .receive("ok", (response) => done(response))
        .receive("error", (response) => fail(new Error(`join ${this.topic} refused: ${JSON.stringify(response)}`)))
        .receive("timeout", () => fail(new Error(`join ${this.topic}: no reply`)));
    });
    return withTimeout(reply, WAIT_MS + 1_000, `${this.client.label}: join ${this.topic}\n${this.client.transcript()}`);
  }

  /** `channel.push(event, payload)`; resolves with `{status, response}` for ok and error replies alike. */
  async push(event, payload) {
    const reply = new Promise((done, fail) => {
      this.channel
        .push(event, payload)
        .receive("ok", (response) => done({ status: "ok", response }))
        .receive("error", (response) => done({ status: "error", response }))
        .receive("timeout", () => fail(new Error(`push ${event} on ${this.topic}: no reply`)));
    });
    return withTimeout(reply, WAIT_MS + 1_000, `${this.client.label}: reply to ${event}\n${this.client.transcript()}`);
  }

  /** `channel.leave()`; resolves when the leave was acknowledged. */
  async leave() {
    const left = new Promise((done, fail) => {
      this.channel
        .leave()
        .receive("ok", () => done())
        .receive("timeout", () => fail(new Error(`leave ${this.topic}: no reply`)));
    });
    return withTimeout(left, WAIT_MS + 1_000, `${this.client.label}: leave ${this.topic}\n${this.client.transcript()}`);
  }

  /** The next queued `event` matching `where` (waiting up to `timeout`). */
  next(event, options = {}) {
    return this.inbox.next(event, { ...options, transcript: () => this.client.transcript() });
  }
}

/**
 * Events as they arrive, consumed in order by `next(event, {where})`. An event that arrived before the test asked for
 * it is still there; each one is handed out once.
 */
export class Inbox {
  constructor(label) {
    this.label = label;
    this.items = [];
    this.waiters = [];
  }

  add(event, payload) {
    this.items.push({ event, payload, at: Date.now(), taken: false });
    for (const waiter of [...this.waiters]) waiter();
  }

  find(event, where) {
    return this.items.find((item) => !item.taken && item.event === event && where(item.payload));
  }

  /** Unconsumed `event`s matching `where` so far. */
  pending(event, where = () => true) {
    return this.items.filter((item) => !item.taken && item.event === event && where(item.payload));
  }

  async next(event, { where = () => true, timeout = WAIT_MS, transcript = () => "" } = {}) {
    const found = this.find(event, where);
    if (found) {
      found.taken = true;
      return found.payload;
    }
    let waiter;
    const arrival = new Promise((done) => {
      waiter = () => {
        const item = this.find(event, where);
        if (item) {
          item.taken = true;
          done(item.payload);
        }
      };
      this.waiters.push(waiter);
    });
    try {
      return await withTimeout(arrival, timeout, `${this.label}: event ${event}\n${transcript()}`);
    } finally {
      this.waiters = this.waiters.filter((other) => other !== waiter);
    }
  }
}

/**
 * A phoenix.js `Presence` on a channel, with a way to wait until its `list` (after an `onSync`) satisfies a test.
 * `ids()` is the sorted list of presence keys (user ids in `room:*`).
 */
export class PresenceWatch {
  constructor(joined) {
    this.joined = joined;
    this.presence = new Presence(joined.channel);
    this.syncs = [];
    this.listeners = new Set();
    this.presence.onSync(() => {
      const ids = this.ids();
      this.syncs.push({ at: Date.now(), ids });
      for (const listener of [...this.listeners]) listener(ids);
    });
  }

  ids() {
    return this.presence.list((id) => id).sort();
  }

  /** Waits until an `onSync` (or the current list) gives exactly `expected` (any order); returns when it happened. */
  async until(expected, { timeout = WAIT_MS } = {}) {
    const want = [...expected].map(String).sort();
    const matches = (ids) => JSON.stringify(ids) === JSON.stringify(want);
    if (matches(this.ids())) return Date.now();
    let listener;
    const reached = new Promise((done) => {
      listener = (ids) => {
        if (matches(ids)) done(Date.now());
      };
      this.listeners.add(listener);
    });
    try {
      return await withTimeout(
        reached,
        timeout,
        `${this.joined.client.label}: Presence.list on ${this.joined.topic} to be ${JSON.stringify(want)}; ` +
          `it is ${JSON.stringify(this.ids())}\n${this.joined.client.transcript()}`,
      );
    } finally {
      this.listeners.delete(listener);
    }
  }

  /** Asserts the list stays `expected` for `ms` (no sync in that time changes it). */
  async staysFor(expected, ms) {
    const want = [...expected].map(String).sort();
    const since = Date.now();
    await new Promise((done) => setTimeout(done, ms));
    const changes = this.syncs.filter((sync) => sync.at >= since && JSON.stringify(sync.ids) !== JSON.stringify(want));
    const { client, topic } = this.joined;
    const listed = JSON.stringify(want);
    assert.deepEqual(this.ids(), want, `${client.label}: ${topic} should still list ${listed}\n${client.transcript()}`);
    assert.equal(changes.length, 0, `list changed meanwhile: ${JSON.stringify(changes)}`);
  }
}
