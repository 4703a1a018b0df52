// Reconnect storm: N official phoenix.js clients in one room (some also in editing sessions) while the server is
// stopped with SIGTERM and started again on the same address and data directory. A benchmark, not a test file of
// the suite (it is not named *.test.mjs); `bench/run reconnect-storm` runs it.
//
//   cd tests/interop && npm ci
//   taskset -c 1 node storm.mjs --clients 2000 --server-cpus 0 [--server-args="--presence-coalesce-ms 0"]
//
// 1. Creates --users editors and one viewer (the observer) with `livebaton user add`, starts the release binary
//    (LIVEBATON_BIN, default <target>/release/livebaton) on a free port with `--max-sockets-per-address 0
//    --max-http-connections-per-address 0` (every client is 127.0.0.1) and --server-args, under `taskset -c
//    --server-cpus` when given, and signs them in.
// 2. Connects --clients phoenix.js `Socket`s with the client's defaults (reconnect after 10, 50, 100, 150, 200, 250,
//    500 ms, 1, 2 s, then every 5 s; heartbeat every 30 s, or --heartbeat-ms; 10 s push timeout; no jitter, unless
//    --jitter J spreads each reconnect delay uniformly over ±J of it), --batch at a time. Client i signs in as user
//    i mod --users and joins `room:storm` (with --rooms R > 1: `room:storm-<i mod R>`); the first --sessions ×
//    --editors clients also join `edit:data:<id>` of one of --sessions records (round robin), with their own tab id.
//    Each client remembers its role in its session: from the join reply, then from every `role` push; none while its
//    channel is not joined.
// 3. When every client is joined, sends SIGTERM, waits for the exit and starts the server again at once (after
//    --down-ms). phoenix.js reconnects and rejoins by itself.
// 4. Waits (at most --timeout-secs) until every client has its room, and its session, joined again on the new
//    server, then watches --hold-secs more (longer than a heartbeat period, so idle or heartbeat closes would show).
//    Every 100 ms it counts, per session, the clients that believe they own it.
// 5. A fresh observer (the viewer) joins each room and each session: the rooms must list every client and the
//    observer; each session's join reply must name as owner the one client that believes it owns, and list each
//    editor once. `/metrics` `livebaton_presences` must be every entry (rooms, sessions, observer) exactly once.
//
// Prints one JSON line (`{"scenario":"reconnect-storm", …}`) and a summary: when every client was back (from the
// SIGTERM and from the new server's first listening line), when the last close, open or rejoin happened (settled),
// closes of open connections by code and reason, refused or failed connection attempts by code (and how many of them
// the new server closed at once over `--max-http-connections-per-address`, and the kernel's count of connection
// attempts dropped at a full accept queue and SYNs sent again), joins that timed out, the clients closed more than
// once, "slow consumer" lines in either server's log, the most owners any session had at once after every client was
// back, and the tool's CPU and event-loop delay. While the clients come back it logs every 10 s how many are back
// (and, for those that are not, where they stand in the report), to tell a slow return from a stuck one.
// Exits 1 when a client did not come back, a connection was closed more than once per client (the SIGTERM's 1001), a
// slow consumer was logged, a session had two owners at once or an owner other than the observer's, or a roster is
// not exactly its members.
//
// All clients live in this one process, on one core: a client reads its frames (and answers the server's ping) only
// when its turn comes, so in a big room the tool is far slower per client than a browser would be. The event-loop
// delay in the output says how far behind it ran. To narrow the gap the clients do not parse the payloads of
// `presence_state` and `presence_diff` frames, which none of them reads (--parse-presence: parse them, as a page
// with `Presence` would); the observer parses everything.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    clients: { type: "string", default: "5000" },
    users: { type: "string", default: "50" },
    sessions: { type: "string", default: "3" },
    editors: { type: "string", default: "10" },
    batch: { type: "string", default: "100" },
    rooms: { type: "string", default: "1" },
    "heartbeat-ms": { type: "string" },
    jitter: { type: "string", default: "0" },
    "down-ms": { type: "string", default: "0" },
    "hold-secs": { type: "string", default: "35" },
    "timeout-secs": { type: "string", default: "180" },
    "server-args": { type: "string", default: "" },
    "server-cpus": { type: "string" },
    label: { type: "string" },
    "parse-presence": { type: "boolean", default: false },
  },
});
const CLIENTS = Number(options.clients);
const USERS = Math.min(Number(options.users), CLIENTS);
const SESSIONS = Number(options.sessions);
const EDITORS = Number(options.editors);
const BATCH = Number(options.batch);
const JITTER = Number(options.jitter);
const DOWN_MS = Number(options["down-ms"]);
const HOLD_MS = Number(options["hold-secs"]) * 1000;
const TIMEOUT_MS = Number(options["timeout-secs"]) * 1000;
const SERVER_ARGS = options["server-args"].split(/\s+/).filter(Boolean);
const ROOMS = Number(options.rooms);
const HEARTBEAT_MS = options["heartbeat-ms"] === undefined ? undefined : Number(options["heartbeat-ms"]);
/** Client i's room: `room:storm`, or `room:storm-<i mod --rooms>` with several. */
const roomOf = (index) => (ROOMS === 1 ? "room:storm" : `room:storm-${index % ROOMS}`);
if (SESSIONS * EDITORS > CLIENTS) throw new Error("--sessions × --editors must not exceed --clients");
if (EDITORS > USERS) throw new Error("--editors must not exceed --users (one tab per editor and user)");

// server.mjs reads LIVEBATON_BIN when it is loaded: the release binary unless told otherwise.
const root = new URL("../..", import.meta.url).pathname;
process.env.LIVEBATON_BIN ||= join(process.env.CARGO_TARGET_DIR || join(root, "target"), "release/livebaton");
const { Server, addUser, freePort, makeDataDir, removeDataDir, sleep, withTimeout } = await import("./server.mjs");
const { Socket } = await import("phoenix");
const { default: WebSocket } = await import("ws");

const now = () => performance.now();
const log = (line) => process.stderr.write(`[storm] ${line}\n`);

/** The server, counting the lines of its log that matter here (server.mjs keeps only the last 200). */
class CountingServer extends Server {
  constructor(options) {
    super(options);
    this.slowConsumers = 0;
    this.serverCloses = new Map();
  }

  log(line) {
    if (line.includes("slow consumer")) this.slowConsumers += 1;
    const reason = /socket closed by the server.*reason=("[^"]*"|\S+)/.exec(line)?.[1];
    if (reason) this.serverCloses.set(reason, (this.serverCloses.get(reason) ?? 0) + 1);
    super.log(line);
  }
}

/**
 * phoenix.js's own decoder, except that the payload of a `presence_state` or `presence_diff` is not parsed (unless
 * --parse-presence): no storm client listens to them (the observer, which checks the rosters, parses everything). In
 * a room of 5,000 every rejoin's state lists up to 5,000 entries, and parsing them for 5,000 clients on one core was
 * half of this process's CPU (a --cpu-prof of a 5,000-client storm: `decode` 60 s and the garbage collector 19 s of
 * 131 s), so the clients read their frames, and answered the server's pings, far later than browsers with a core each.
 * The frames still arrive, are counted and go through `ws` and phoenix.js as before.
 */
const PRESENCE_FRAME = /^\[(null|"[^"]*"),(null|"[^"]*"),"([^"]*)","(presence_state|presence_diff)",/;
let presenceFramesNotParsed = 0;
function decodeSkippingPresence(raw, callback) {
  const head = typeof raw === "string" ? PRESENCE_FRAME.exec(raw.slice(0, 200)) : null;
  if (head === null) return this.defaultDecoder(raw, callback);
  presenceFramesNotParsed += 1;
  const [, joinRef, ref, topic, event] = head;
  const unquote = (field) => (field === "null" ? null : field.slice(1, -1));
  return callback({ join_ref: unquote(joinRef), ref: unquote(ref), topic, event, payload: {} });
}

/** phoenix.js's own reconnect schedule, each delay spread over ±JITTER of it. */
function reconnectAfterMs(tries) {
  const base = [10, 50, 100, 150, 200, 250, 500, 1000, 2000][tries - 1] ?? 5000;
  return JITTER > 0 ? Math.round(base * (1 - JITTER + 2 * JITTER * Math.random())) : base;
}

/** One phoenix.js client and what happened to it. */
class StormClient {
  constructor(index, url, token) {
    this.index = index;
    this.opens = [];
    this.closes = []; // {code, opened, at}
    this.roomJoins = [];
    this.editJoins = [];
    this.joinErrors = [];
    this.joinTimeouts = 0;
    this.frames = 0;
    this.role = null;
    this.ownerView = null;
    const client = this;
    // The `ws` WebSocket, telling whether a close ends an open connection or a failed attempt.
    class Transport extends WebSocket {
      constructor(address, protocols) {
        super(address, protocols);
        let opened = false;
        this.on("open", () => {
          opened = true;
        });
        this.on("message", () => {
          client.frames += 1;
        });
        let openedAt = null;
        this.on("open", () => {
          openedAt = now();
        });
        this.on("close", (code, reason) =>
          client.closes.push({ code, opened, at: now(), openedAt, reason: String(reason) }),
        );
        // phoenix.js handles errors through onerror; this listener only keeps `ws` from throwing.
        this.on("error", () => {});
      }
    }
    const socketOptions = { transport: Transport, params: { token }, reconnectAfterMs };
    if (!options["parse-presence"]) socketOptions.decode = decodeSkippingPresence;
    if (HEARTBEAT_MS !== undefined) socketOptions.heartbeatIntervalMs = HEARTBEAT_MS;
    this.socket = new Socket(url, socketOptions);
    this.socket.onOpen(() => this.opens.push(now()));
    this.room = this.socket.channel(roomOf(index), {});
    this.session = null;
    this.editing = null;
  }

  /** Joins the session `edit:data:<record>` too (before `connect`). */
  joinSession(record) {
    this.session = record;
    this.editing = this.socket.channel(`edit:data:${record}`, { tab_id: `storm-${this.index}` });
    this.editing.on("role", (payload) => this.believe(payload));
    this.editing.onError(() => this.believe(null));
    this.editing.onClose(() => this.believe(null));
  }

  believe(payload) {
    this.role = payload?.role ?? null;
    this.ownerView = payload?.owner?.view_id ?? null;
  }

  connect() {
    this.room
      .join()
      .receive("ok", () => this.roomJoins.push(now()))
      .receive("error", (reply) => this.joinErrors.push(`room: ${JSON.stringify(reply)}`))
      .receive("timeout", () => (this.joinTimeouts += 1));
    if (this.session !== null) {
      this.editing
        .join()
        .receive("ok", (reply) => {
          this.editJoins.push(now());
          this.believe(reply);
        })
        .receive("error", (reply) => this.joinErrors.push(`edit: ${JSON.stringify(reply)}`))
        .receive("timeout", () => (this.joinTimeouts += 1));
    }
    this.socket.connect();
  }

  /** Whether the room (and the session) are joined again after `since`. */
  backSince(since) {
    const room = this.room.state === "joined" && this.roomJoins.some((at) => at >= since);
    const edit =
      this.session === null || (this.editing.state === "joined" && this.editJoins.some((at) => at >= since));
    return room && edit;
  }

  /** When the room and the session were first joined again after `since`. */
  rejoinedAt(since) {
    const first = (times) => times.find((at) => at >= since);
    const room = first(this.roomJoins);
    return this.session === null ? room : Math.max(room, first(this.editJoins));
  }

  /** Where a client that is not back stands: its socket's state and its channels' (for the report). */
  describe() {
    const edit = this.session === null ? "" : ` edit ${this.editing.state}`;
    return `socket ${this.socket.connectionState()} room ${this.room.state}${edit}`;
  }

  believesOwner() {
    return this.session !== null && this.editing.state === "joined" && this.role === "owner";
  }
}

/** Polls `condition` every 50 ms until it holds or `ms` pass; whether it held. */
async function until(condition, ms) {
  const deadline = now() + ms;
  while (!condition()) {
    if (now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Sockets open, joins timed out and closes so far, for the progress lines. */
function progress(clients) {
  let open = 0;
  let timeouts = 0;
  let closes = 0;
  for (const client of clients) {
    if (client.socket.isConnected()) open += 1;
    timeouts += client.joinTimeouts;
    closes += client.closes.length;
  }
  return `${open} sockets open, ${timeouts} joins timed out, ${closes} closes and failed attempts`;
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const secs = (ms) => Math.round(ms / 10) / 100;
/** Nanoseconds (perf_hooks histograms) to milliseconds, rounded. */
const ms = (ns) => Math.round(ns / 1e6);
/** `{key: how many}` of `items` (Node 20 has no `Object.groupBy`). */
function groupBy(items, key) {
  const groups = {};
  for (const item of items) (groups[key(item)] ??= []).push(item);
  return groups;
}
const countBy = (items, key) => Object.fromEntries(Object.entries(groupBy(items, key)).map(([k, v]) => [k, v.length]));

/**
 * The kernel's TCP counters that tell connection attempts dropped at a full accept queue (`ListenOverflows`) and SYNs
 * sent again (`TCPSynRetrans`: a dropped SYN is retried after 1, 2, 4, 8… s), machine-wide, from `/proc/net/netstat`.
 */
function tcpCounters() {
  try {
    const [names, values] = readFileSync("/proc/net/netstat", "utf8")
      .split("\n")
      .filter((line) => line.startsWith("TcpExt:"))
      .map((line) => line.split(/\s+/));
    const value = (name) => Number(values[names.indexOf(name)]);
    return { listenOverflows: value("ListenOverflows"), synRetransmits: value("TCPSynRetrans") };
  } catch {
    return null;
  }
}

/** CPU seconds of a process so far (`/proc/<pid>/stat` utime + stime). */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

async function main() {
  const dataDir = await makeDataDir();
  const launcher = options["server-cpus"] ? ["taskset", "-c", options["server-cpus"]] : [];
  const bind = `127.0.0.1:${await freePort()}`;
  // Every client connects from 127.0.0.1: no limit per address, as livebaton-bench starts it (crates/livebaton-bench/
  // src/server.rs). With the default 128 HTTP connections per address, a storm's upgrades beyond it were closed at
  // once (34,065 of the 45,712 failed attempts of one 5,000-client run), which clients from many addresses never see.
  const perAddress = ["--max-sockets-per-address", "0", "--max-http-connections-per-address", "0"];
  const serverOptions = { dataDir, bind, launcher, args: [...perAddress, ...SERVER_ARGS] };
  const editors = Array.from({ length: USERS }, (_, i) => ({
    email: `storm-${i}@bench.test`,
    password: `storm-password-${i}`,
    role: "editor",
  }));
  const observer = { email: "observer@bench.test", password: "observer-password", role: "viewer" };
  let server;
  try {
    log(`creating ${USERS + 1} users`);
    // The first alone (it creates the database: two processes migrating a new one at once fail), then two at a time.
    const users = [observer, ...editors];
    await addUser(dataDir, users[0]);
    for (let i = 1; i < users.length; i += 2) await Promise.all(users.slice(i, i + 2).map((u) => addUser(dataDir, u)));
    server = await new CountingServer(serverOptions).start();
    const tokens = [];
    for (const user of editors) tokens.push((await server.token(user.email, user.password)).token);
    const observerToken = (await server.token(observer.email, observer.password)).token;
    const records = await sessionRecords(server, tokens[0]);

    log(`connecting ${CLIENTS} clients, ${BATCH} at a time`);
    const url = `ws://${bind}/live`;
    const clients = Array.from({ length: CLIENTS }, (_, i) => new StormClient(i, url, tokens[i % USERS]));
    clients.slice(0, SESSIONS * EDITORS).forEach((client, i) => client.joinSession(records[i % SESSIONS]));
    const connectStarted = now();
    for (let i = 0; i < CLIENTS; i += BATCH) {
      if (i > 0 && i % 1000 === 0) {
        const closed = clients.reduce((sum, client) => sum + client.closes.length, 0);
        const errors = clients.reduce((sum, client) => sum + client.joinErrors.length, 0);
        log(`${i} joined after ${secs(now() - connectStarted)} s (${closed} closes, ${errors} join errors so far; ${progress(clients)})`);
      }
      const batch = clients.slice(i, i + BATCH);
      batch.forEach((client) => client.connect());
      if (!(await until(() => batch.every((client) => client.backSince(0)), TIMEOUT_MS))) {
        const missing = batch.filter((client) => !client.backSince(0));
        throw new Error(
          `clients ${i}–${i + batch.length - 1} did not join within ${TIMEOUT_MS / 1000} s: ${missing.length} not joined ` +
            `${JSON.stringify(countBy(missing, (client) => client.describe()))}; ${progress(clients)}`,
        );
      }
    }
    const joinedAt = now();
    log(`all joined in ${secs(joinedAt - connectStarted)} s; settling`);
    await sleep(3000);
    const before = owners(clients);
    const closesBefore = clients.map((client) => client.closes.length);
    const closedBefore = closesBefore.reduce((sum, count) => sum + count, 0);

    // The restart.
    const cpuBefore = process.cpuUsage();
    // How late this process runs its callbacks: a client answers the server's ping only when its turn comes.
    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    const tcpBefore = tcpCounters();
    const stopAt = now();
    const exit = await server.stop();
    const exitedAt = now();
    log(`stopped in ${secs(exitedAt - stopAt)} s (${JSON.stringify(exit)}); ${server.slowConsumers} slow consumers in its log`);
    const oldSlowConsumers = server.slowConsumers;
    const oldServerCloses = Object.fromEntries(server.serverCloses);
    if (DOWN_MS > 0) await sleep(DOWN_MS);
    const restartAt = now();
    server = await new CountingServer(serverOptions).start();
    const listeningAt = now();
    log(`listening again after ${secs(listeningAt - stopAt)} s`);

    // Owners per session, sampled every 100 ms from here on.
    let mostOwnersAfterBack = 0;
    let mostOwnersDuring = 0;
    let back = false;
    const sampler = setInterval(() => {
      const most = Math.max(0, ...Object.values(owners(clients)).map((list) => list.length));
      if (back) mostOwnersAfterBack = Math.max(mostOwnersAfterBack, most);
      else mostOwnersDuring = Math.max(mostOwnersDuring, most);
    }, 100);

    // Progress every 10 s while they come back, to tell a slow return from a stuck one.
    const reporter = setInterval(() => {
      const backNow = clients.filter((client) => client.backSince(listeningAt)).length;
      log(`${secs(now() - stopAt)} s after SIGTERM: ${backNow} back; ${progress(clients)}`);
    }, 10_000);
    const allBack = await until(() => clients.every((client) => client.backSince(listeningAt)), TIMEOUT_MS);
    clearInterval(reporter);
    const backAt = now();
    const tcpAfter = tcpCounters();
    back = true;
    const missing = clients.filter((client) => !client.backSince(listeningAt)).length;
    log(allBack ? `every client back after ${secs(backAt - stopAt)} s; watching ${HOLD_MS / 1000} s` : `${missing} clients not back`);
    await sleep(HOLD_MS);
    clearInterval(sampler);
    const cpu = process.cpuUsage(cpuBefore);
    loopDelay.disable();
    const serverCpu = cpuSeconds(server.child.pid);

    // What the clients saw since the SIGTERM.
    const closes = clients.flatMap((client, i) => client.closes.slice(closesBefore[i]));
    const serverCloses = closes.filter((close) => close.opened);
    const attempts = closes.filter((close) => !close.opened);
    const closedTwice = clients.filter((client, i) => client.closes.slice(closesBefore[i]).filter((c) => c.opened).length > 1);
    const rejoined = clients.filter((client) => client.backSince(listeningAt)).map((c) => c.rejoinedAt(listeningAt));
    const fromStop = rejoined.map((at) => at - stopAt).sort((a, b) => a - b);
    // A loop, not `Math.max(...times)`: 5,000 clients' events are more arguments than the call stack holds.
    let lastEvent = -Infinity;
    for (const client of clients) {
      for (const at of [...client.opens, ...client.roomJoins, ...client.editJoins, ...client.closes.map((c) => c.at)]) {
        if (at > lastEvent) lastEvent = at;
      }
    }
    const ownersNow = owners(clients);

    // A fresh observer's view of the room and the sessions, and the server's own count.
    const seen = await observe(bind, observerToken, records);
    const sessionsWrong = records.filter((record) => {
      const believed = ownersNow[record] ?? [];
      const reply = seen.sessions[record];
      return believed.length !== 1 || believed[0].ownerView !== reply.owner?.view_id || reply.queue.length !== EDITORS + 1;
    }).length;
    const expectedPresences = CLIENTS + SESSIONS * EDITORS + ROOMS + SESSIONS;
    const metrics = await (await fetch(`http://${bind}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const gauge = Number(/^livebaton_presences (\S+)$/m.exec(metrics)?.[1]);
    // Connections the new server closed at once because 127.0.0.1 had `--max-http-connections-per-address` open.
    const refused = Number(/^livebaton_http_connections_refused_total (\S+)$/m.exec(metrics)?.[1] ?? 0);
    const frames = clients.reduce((sum, client) => sum + client.frames, 0);

    const report = {
      scenario: "reconnect-storm",
      server: "livebaton",
      variant: options.label ?? (SERVER_ARGS.join(" ") || "default"),
      clients: CLIENTS,
      users: USERS,
      rooms: ROOMS,
      heartbeat_ms: HEARTBEAT_MS ?? 30000,
      sessions: SESSIONS,
      editors_per_session: EDITORS,
      jitter: JITTER,
      server_args: SERVER_ARGS,
      initial_join_secs: secs(joinedAt - connectStarted),
      closes_before_restart: closedBefore,
      stop_secs: secs(exitedAt - stopAt),
      down_secs: secs(restartAt - exitedAt),
      listening_after_secs: secs(listeningAt - stopAt),
      all_back: allBack,
      not_back: missing,
      not_back_states: countBy(
        clients.filter((client) => !client.backSince(listeningAt)),
        (client) => client.describe(),
      ),
      all_back_secs: allBack ? secs(backAt - stopAt) : null,
      all_back_after_listening_secs: allBack ? secs(backAt - listeningAt) : null,
      rejoined_secs: {
        p50: secs(quantile(fromStop, 0.5)),
        p90: secs(quantile(fromStop, 0.9)),
        max: secs(fromStop.at(-1)),
      },
      settled_secs: secs(lastEvent - stopAt),
      closes: serverCloses.length,
      closes_per_client: Math.round((serverCloses.length / CLIENTS) * 1000) / 1000,
      closes_by_code: countBy(serverCloses, (close) => close.code),
      closes_by_reason: countBy(serverCloses, (close) => `${close.code} ${close.reason}`),
      clients_closed_more_than_once: closedTwice.length,
      failed_attempts: attempts.length,
      failed_attempts_by_code: countBy(attempts, (close) => close.code),
      join_errors: clients.reduce((sum, client) => sum + client.joinErrors.length, 0),
      join_errors_seen: [...new Set(clients.flatMap((client) => client.joinErrors))].slice(0, 5),
      join_timeouts: clients.reduce((sum, client) => sum + client.joinTimeouts, 0),
      http_connections_refused_per_address: refused,
      // From the SIGTERM until every client was back (or the timeout), machine-wide.
      listen_queue_overflows: tcpAfter && tcpBefore ? tcpAfter.listenOverflows - tcpBefore.listenOverflows : null,
      syn_retransmits: tcpAfter && tcpBefore ? tcpAfter.synRetransmits - tcpBefore.synRetransmits : null,
      slow_consumers_logged: server.slowConsumers + oldSlowConsumers,
      old_server_closes_logged: oldServerCloses,
      new_server_closes_logged: Object.fromEntries(server.serverCloses),
      owners_before: Object.values(before).map((list) => list.length),
      most_owners_during_restart: mostOwnersDuring,
      most_owners_after_back: mostOwnersAfterBack,
      sessions_wrong: sessionsWrong,
      room_entries_observed: seen.roomEntries,
      room_entries_expected: CLIENTS + ROOMS,
      presences_gauge: gauge,
      presences_expected: expectedPresences,
      frames_received: frames,
      presence_frames_not_parsed: presenceFramesNotParsed,
      tool_cpu_secs: secs((cpu.user + cpu.system) / 1000),
      tool_event_loop_delay_ms: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) },
      server_cpu_secs_since_restart: serverCpu,
      server_cpus: options["server-cpus"] ?? null,
      load_average_1m: Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]),
    };
    console.log(JSON.stringify(report));
    console.log(
      `reconnect-storm: ${CLIENTS} phoenix.js clients (${SESSIONS} sessions of ${EDITORS} editors), server ${report.variant}: ` +
        `stopped in ${report.stop_secs} s, listening again at ${report.listening_after_secs} s; ` +
        (allBack ? `every client back and rejoined at ${report.all_back_secs} s` : `${missing} clients NOT back`) +
        ` (p50 ${report.rejoined_secs.p50} s); last close/open/rejoin at ${report.settled_secs} s`,
    );
    console.log(
      `  closes of open connections: ${report.closes} (${report.closes_per_client} per client) ${JSON.stringify(report.closes_by_code)}; ` +
        `${report.clients_closed_more_than_once} clients closed more than once ${JSON.stringify(report.closes_by_reason)}; ` +
        `failed attempts while down: ` +
        `${report.failed_attempts} ${JSON.stringify(report.failed_attempts_by_code)} (the new server closed ` +
        `${refused} at once over --max-http-connections-per-address; SYNs dropped at a full accept queue: ` +
        `${report.listen_queue_overflows}, sent again: ${report.syn_retransmits}); ${report.join_errors} join errors, ` +
        `${report.join_timeouts} joins timed out`,
    );
    console.log(
      `  slow consumers logged: ${report.slow_consumers_logged}; most owners of a session at once after every client ` +
        `was back: ${mostOwnersAfterBack} (during the restart: ${mostOwnersDuring}); sessions whose owner or queue ` +
        `disagrees with a fresh observer: ${sessionsWrong}`,
    );
    console.log(
      `  a fresh observer lists ${seen.roomEntries} room entries (expected ${CLIENTS + ROOMS}); livebaton_presences = ` +
        `${gauge} (expected ${expectedPresences}); tool CPU ${report.tool_cpu_secs} s (event loop late by up to ` +
        `${report.tool_event_loop_delay_ms.max} ms), new server CPU ${serverCpu} s; ${frames} frames received`,
    );
    const ok =
      allBack &&
      closedBefore === 0 &&
      serverCloses.length === CLIENTS &&
      closedTwice.length === 0 &&
      report.slow_consumers_logged === 0 &&
      mostOwnersAfterBack <= 1 &&
      sessionsWrong === 0 &&
      seen.roomEntries === CLIENTS + ROOMS &&
      gauge === expectedPresences;
    for (const client of clients) client.socket.disconnect();
    return ok;
  } finally {
    await server?.stop().catch(() => server.kill());
    await removeDataDir(dataDir);
  }
}

/** Record ids for the sessions: the demo's three, and more created through the API when asked for. */
async function sessionRecords(server, token) {
  const { records } = await server.apiOk("GET", "/api/entities/article/records", { token });
  const ids = records.map((record) => record.id);
  while (ids.length < SESSIONS) {
    const body = { title: `Storm ${ids.length}`, data: {} };
    ids.push((await server.apiOk("POST", "/api/entities/article/records", { token, body, expected: 201 })).id);
  }
  return ids.slice(0, SESSIONS);
}

/** The clients that believe they own each session, by record id. */
function owners(clients) {
  return groupBy(
    clients.filter((client) => client.believesOwner()),
    (client) => client.session,
  );
}

/** A fresh phoenix.js client's view: entries in the room, and each session's join reply. */
async function observe(bind, token, records) {
  const socket = new Socket(`ws://${bind}/live`, { transport: WebSocket, params: { token } });
  socket.connect();
  try {
    const join = (topic, params) =>
      withTimeout(
        new Promise((done, fail) => {
          const channel = socket.channel(topic, params);
          const entries = new Map();
          // The state, then join-only diffs for a big room: count metas by phx_ref.
          channel.on("presence_state", (state) => {
            entries.clear();
            for (const { metas } of Object.values(state)) for (const meta of metas) entries.set(meta.phx_ref, meta);
          });
          channel.on("presence_diff", ({ joins, leaves }) => {
            for (const { metas } of Object.values(joins)) for (const meta of metas) entries.set(meta.phx_ref, meta);
            for (const { metas } of Object.values(leaves)) for (const meta of metas) entries.delete(meta.phx_ref);
          });
          channel
            .join()
            .receive("ok", (reply) => done({ reply, entries }))
            .receive("error", (reply) => fail(new Error(`observer: ${topic} refused: ${JSON.stringify(reply)}`)));
        }),
        30_000,
        `the observer to join ${topic}`,
      );
    const rooms = [];
    for (let room = 0; room < ROOMS; room += 1) rooms.push(await join(roomOf(room), {}));
    // Let the states' frames arrive.
    const listed = () => rooms.reduce((sum, room) => sum + room.entries.size, 0);
    let count = -1;
    while (listed() !== count) {
      count = listed();
      await sleep(1000);
    }
    const sessions = {};
    for (const record of records) sessions[record] = (await join(`edit:data:${record}`, { tab_id: "observer" })).reply;
    return { roomEntries: listed(), sessions };
  } finally {
    socket.disconnect();
  }
}

const ok = await withTimeout(main(), TIMEOUT_MS * 3 + HOLD_MS + 300_000, "the reconnect storm").catch((error) => {
  log(error.stack ?? String(error));
  return false;
});
process.exit(ok ? 0 : 1);
