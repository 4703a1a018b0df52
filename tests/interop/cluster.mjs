// Multi-node infrastructure for the interop suite: a private `redis-server` per test file (killable, restartable on
// the same port, flushable), a fresh PostgreSQL database per test file on the shared server, TCP proxies the tests can
// cut (to stop PostgreSQL, or to cut one node off Redis, without touching the shared servers), `livebaton` nodes
// sharing all of it, and nginx started with the documented config.
//
// Everything here is bounded in time and cleaned up when the test file ends, even after a failure: child processes
// are killed on exit, the database is dropped (best effort, also from the exit handler).

import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  BINARY,
  ROOT,
  Server,
  freePort,
  makeDataDir,
  removeDataDir,
  sleep,
  userIdOfToken,
  withTimeout,
} from "./server.mjs";

export { freePort, sleep, withTimeout };

const CLI_TIMEOUT_MS = 20_000;
const REDIS_START_MS = 10_000;
const STOP_MS = 8_000;

/** Child processes started here (redis-server, nginx) that have not exited yet, with the signal that stops them. */
const children = new Map();
/** Databases created and not dropped yet: dropped from the exit handler as a last resort. */
const databases = new Set();

process.on("exit", () => {
  for (const [child, signal] of children) {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
  for (const database of databases) database.dropSync();
});

function trackChild(child, exitSignal) {
  children.set(child, exitSignal);
  child.once("exit", () => children.delete(child));
}

/** `execFile` as a promise with a timeout; rejects with the command's output on failure. */
export function run(file, args, { timeout = CLI_TIMEOUT_MS, env = process.env } = {}) {
  return new Promise((done, fail) => {
    execFile(file, args, { env, timeout }, (error, stdout, stderr) => {
      if (error) fail(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`));
      else done(stdout.trim());
    });
  });
}

/** The binary's environment: no `DATABASE_URL`, `REDIS_URL` or `LIVEBATON_*` from the caller's shell. */
function cliEnv() {
  const env = { ...process.env, NO_COLOR: "1" };
  delete env.DATABASE_URL;
  for (const name of Object.keys(env)) {
    if (name.startsWith("LIVEBATON_") || name === "REDIS_URL") delete env[name];
  }
  return env;
}

/** Resolves once `host:port` accepts a TCP connection, or rejects after `ms`. */
export async function waitForPort(port, ms, what, host = "127.0.0.1") {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((done) => {
      const socket = net.connect({ host, port });
      socket.once("connect", () => {
        socket.destroy();
        done(true);
      });
      socket.once("error", () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} on ${host}:${port}`);
    await sleep(50);
  }
}

/** `count` distinct TCP ports that were free a moment ago (all held open together while picking them). */
export async function freePortPair(count = 2) {
  const probes = [];
  try {
    for (let index = 0; index < count; index += 1) {
      const probe = net.createServer();
      probes.push(probe);
      await new Promise((done, fail) => {
        probe.once("error", fail);
        probe.listen(0, "127.0.0.1", done);
      });
    }
    return probes.map((probe) => probe.address().port);
  } finally {
    await Promise.all(probes.map((probe) => new Promise((done) => probe.close(() => done()))));
  }
}

/** Polls `check` (sync or async, truthy = done) every `every` ms; rejects with `message()` after `ms`. */
export async function waitUntil(check, ms, message, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms: ${typeof message === "function" ? message() : message}`);
    }
    await sleep(every);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Redis

/** A private `redis-server` (no persistence) on a free port, which a test can kill, restart and flush. */
export class RedisServer {
  constructor() {
    this.port = null;
    this.child = null;
    this.output = [];
    this.starts = 0;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it (on the same port as before after a `kill`) and waits until it answers PING. */
  async start() {
    if (this.child) throw new Error("redis-server already running");
    if (!existsSync("/usr/bin/redis-server") && !(await which("redis-server"))) {
      throw new Error("redis-server is not installed (Debian: apt-get install redis-server)");
    }
    this.port ??= await freePort();
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    args.push("--protected-mode", "no", "--loglevel", "warning");
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.starts += 1;
    trackChild(child, "SIGKILL");
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        this.output.push(chunk);
        if (this.output.length > 50) this.output.shift();
      });
    }
    this.exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));
    const deadline = Date.now() + REDIS_START_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`redis-server exited at start:\n${this.output.join("")}`);
      }
      try {
        if ((await this.cli("PING")) === "PONG") return this;
      } catch {
        // Not up yet.
      }
      if (Date.now() > deadline) {
        this.kill();
        throw new Error(`redis-server did not answer PING within ${REDIS_START_MS} ms:\n${this.output.join("")}`);
      }
      await sleep(30);
    }
  }

  /** `kill -9` and wait for the exit (the port is free again afterwards). */
  async kill() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await withTimeout(this.exited, STOP_MS, "redis-server to exit after SIGKILL");
  }

  /** Kill and start again on the same port, empty (nothing is persisted). */
  async restart() {
    await this.kill();
    return this.start();
  }

  /** `redis-cli -p PORT args…` → its output. */
  cli(...args) {
    return run("redis-cli", ["-h", "127.0.0.1", "-p", String(this.port), ...args], { timeout: 5_000 });
  }

  async flushAll() {
    const answer = await this.cli("FLUSHALL");
    if (answer !== "OK") throw new Error(`FLUSHALL answered ${answer}`);
  }
}

async function which(program) {
  try {
    return await run("sh", ["-c", `command -v ${program}`]);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

/**
 * A fresh database `lb_mn_<random>` on the running PostgreSQL server (`DATABASE_URL` names the server, default
 * `postgres://postgres@127.0.0.1:5432/postgres`), dropped by `drop()`.
 */
export class Database {
  constructor() {
    const server = new URL(process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres");
    if (!/^postgres(ql)?:$/.test(server.protocol)) {
      throw new Error(`DATABASE_URL must be a postgres:// URL for the multi-node suite, not ${server.protocol}`);
    }
    this.server = server;
    this.name = `lb_mn_${randomBytes(6).toString("hex")}`;
    this.created = false;
  }

  /** Where PostgreSQL listens. */
  get host() {
    return this.server.hostname || "127.0.0.1";
  }

  get port() {
    return Number(this.server.port || 5432);
  }

  /** The URL of this database, optionally through another host:port (a proxy). */
  url({ host = this.host, port = this.port } = {}) {
    const url = new URL(this.server.href);
    url.hostname = host;
    url.port = String(port);
    url.pathname = `/${this.name}`;
    return url.href;
  }

  adminUrl() {
    return this.server.href;
  }

  async create() {
    await run("psql", [
      "-X",
      "-q",
      "-v",
      "ON_ERROR_STOP=1",
      "-d",
      this.adminUrl(),
      "-c",
      `CREATE DATABASE "${this.name}"`,
    ]);
    this.created = true;
    databases.add(this);
    return this;
  }

  async drop() {
    if (!this.created) return;
    await run("psql", ["-X", "-q", "-d", this.adminUrl(), "-c", `DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`]);
    this.created = false;
    databases.delete(this);
  }

  dropSync() {
    if (!this.created) return;
    try {
      execFileSync(
        "psql",
        ["-X", "-q", "-d", this.adminUrl(), "-c", `DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`],
        {
          timeout: 10_000,
          stdio: "ignore",
        },
      );
    } catch {
      // Best effort at exit.
    }
    this.created = false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A TCP proxy that can be cut

/**
 * Forwards 127.0.0.1:<port> to `target`. `cut()` destroys every connection through it and stops listening, so new
 * connections are refused (as when the server behind it stops); `restore()` listens on the same port again.
 */
export class TcpProxy {
  constructor({ host, port }, label = "proxy") {
    this.target = { host, port };
    this.label = label;
    this.port = null;
    this.listener = null;
    this.sockets = new Set();
    this.connections = 0;
  }

  async start() {
    if (this.listener) return this;
    const listener = net.createServer((client) => this.accept(client));
    await new Promise((done, fail) => {
      listener.once("error", fail);
      listener.listen(this.port ?? 0, "127.0.0.1", () => {
        listener.off("error", fail);
        done();
      });
    });
    this.port = listener.address().port;
    this.listener = listener;
    return this;
  }

  accept(client) {
    this.connections += 1;
    const upstream = net.connect(this.target);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Destroys every connection and stops accepting new ones. */
  async cut() {
    const listener = this.listener;
    this.listener = null;
    const closed = listener ? new Promise((done) => listener.close(() => done())) : Promise.resolve();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await withTimeout(closed, STOP_MS, `${this.label}: close the listener`);
  }

  /** Accepts connections again, on the same port. */
  async restore() {
    return this.start();
  }

  async close() {
    await this.cut();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Nodes

/** A test account (editor unless `role` says otherwise). */
export function account(name, role = "editor") {
  const lower = name.toLowerCase();
  return { name, email: `${lower}@multinode.test`, password: `${lower}-password-123`, role };
}

/** `livebaton user add --database-url … --email … --password … --role … --name …`. */
export async function addUserTo(databaseUrl, { email, password, role, name }) {
  const args = ["user", "add", "--database-url", databaseUrl, "--email", email, "--password", password, "--role", role];
  if (name) args.push("--name", name);
  // The CLI also wants a data directory (for the generated secret it does not need here).
  const dataDir = await makeDataDir();
  try {
    return await run(BINARY, [...args, "--data-dir", dataDir], { env: cliEnv() });
  } finally {
    await removeDataDir(dataDir);
  }
}

/** The first sample of `name` (without labels) in a Prometheus text body, or null. */
export function metricSample(text, name) {
  const line = text.split("\n").find((row) => row.startsWith(`${name} `) || row.startsWith(`${name}{`));
  return line ? Number(line.trim().split(/\s+/).pop()) : null;
}

/** `GET /metrics` → `livebaton_sockets_open` of one node. */
export async function socketsOpen(server) {
  const { status, body } = await server.api("GET", "/metrics");
  if (status !== 200) throw new Error(`GET /metrics on ${server.address}: ${status}`);
  return metricSample(String(body), "livebaton_sockets_open");
}

/** A `Server`-shaped handle on an address that is not one of our processes (nginx): `api`, `token`, `socketUrl`. */
export function endpoint(address) {
  const front = new Server({ dataDir: null });
  front.address = address;
  return front;
}

/**
 * A cluster for one test file: a private Redis, a fresh database reached through a cuttable proxy, one shared
 * secret, the given users (created once with the CLI), and nodes started with `startNode`. Each node reaches Redis
 * through its own proxy, so a test can cut one node off Redis (a partition) without touching the others.
 */
export class Cluster {
  constructor({ leaveGraceMs = 300, nodeArgs = [] } = {}) {
    this.leaveGraceMs = leaveGraceMs;
    this.nodeArgs = nodeArgs;
    this.redis = new RedisServer();
    this.database = new Database();
    this.pgProxy = null;
    this.secret = randomBytes(32).toString("hex");
    this.nodes = new Map();
    this.redisProxies = new Map();
    this.dataDirs = [];
    this.accounts = {};
    this.restarts = 0;
  }

  /** Starts Redis, creates the database and its proxy, adds `users`. */
  async start(users) {
    await this.redis.start();
    await this.database.create();
    this.pgProxy = await new TcpProxy({ host: this.database.host, port: this.database.port }, "postgres proxy").start();
    for (const user of users) {
      await addUserTo(this.database.url(), user);
      this.accounts[user.name] = { ...user };
    }
    return this;
  }

  /** The database URL the nodes use: through the proxy. */
  get nodeDatabaseUrl() {
    return this.database.url({ host: "127.0.0.1", port: this.pgProxy.port });
  }

  /** The proxy between node `name` and Redis (created on first use, kept across restarts of that node). */
  async redisProxy(name) {
    let proxy = this.redisProxies.get(name);
    if (!proxy) {
      proxy = await new TcpProxy({ host: "127.0.0.1", port: this.redis.port }, `redis proxy of ${name}`).start();
      this.redisProxies.set(name, proxy);
    }
    return proxy;
  }

  /**
   * Starts node `name` (`--node-name name`) on `port` (default: any free port), sharing Redis, PostgreSQL and the
   * secret. Nodes are started one at a time by the tests, so only the first one seeds the demo content.
   */
  async startNode(name, { port, args = [] } = {}) {
    if (this.nodes.get(name)?.child) throw new Error(`node ${name} is already running`);
    const dataDir = await makeDataDir();
    this.dataDirs.push(dataDir);
    const proxy = await this.redisProxy(name);
    const nodeArgs = [
      "--redis-url",
      `redis://127.0.0.1:${proxy.port}`,
      "--database-url",
      this.nodeDatabaseUrl,
      "--secret-key-base",
      this.secret,
      "--node-name",
      name,
      ...this.nodeArgs,
      ...args,
    ];
    const bind = port ? `127.0.0.1:${port}` : "127.0.0.1:0";
    const node = new Server({ dataDir, bind, leaveGraceMs: this.leaveGraceMs, demo: true, args: nodeArgs });
    node.name = name;
    this.nodes.set(name, node);
    await node.start();
    return node;
  }

  node(name) {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  /** `kill -9` of a node; resolves when the process is gone. */
  async killNode(name) {
    const node = this.node(name);
    const child = node.child;
    node.kill();
    if (child) await withTimeout(node.exited, STOP_MS, `node ${name} to exit after SIGKILL`);
  }

  /** A token for every account from `POST /api/tokens` on `node` (fills `accounts[name].token/userId`). */
  async tokens(node) {
    for (const user of Object.values(this.accounts)) {
      const { token } = await node.apiOk("POST", "/api/tokens", {
        body: { email: user.email, password: user.password },
      });
      user.token = token;
      user.userId = userIdOfToken(token);
    }
    return this.accounts;
  }

  /** The recent output of every node (for failure messages and findings). */
  logs(lines = 30) {
    return [...this.nodes.values()]
      .map((node) => `--- node ${node.name} (${node.address ?? node.bind}) ---\n${node.recentOutput(lines)}`)
      .join("\n");
  }

  /** Stops every node (SIGTERM), the proxies and Redis, drops the database, removes the data directories. */
  async close() {
    const errors = [];
    const attempt = async (what) => {
      try {
        await what();
      } catch (error) {
        errors.push(error);
      }
    };
    for (const node of this.nodes.values()) {
      await attempt(() => node.stop());
      node.kill();
    }
    for (const proxy of this.redisProxies.values()) await attempt(() => proxy.close());
    if (this.pgProxy) await attempt(() => this.pgProxy.close());
    await attempt(() => this.redis.kill());
    await attempt(() => this.database.drop());
    for (const dir of this.dataDirs) await attempt(() => removeDataDir(dir));
    if (errors.length) throw errors[0];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// nginx

export const NGINX = "/usr/sbin/nginx";
export const NGINX_CONF = join(ROOT, "deploy/nginx-livebaton.conf");

/**
 * nginx with `deploy/nginx-livebaton.conf` as it is, only its ports replaced (upstream 127.0.0.1:4001 and :4002, and
 * `listen 8080`), included from a minimal main config whose pid, logs and temp paths are in a temporary directory.
 */
export class Nginx {
  constructor({ upstreamPorts, listenPort }) {
    this.upstreamPorts = upstreamPorts;
    this.listenPort = listenPort;
    this.dir = null;
    this.child = null;
    this.output = [];
  }

  get address() {
    return `127.0.0.1:${this.listenPort}`;
  }

  /** The documented config with the ports replaced; fails if a port to replace is not there exactly once. */
  static async substitute(text, [first, second], listen) {
    const replacements = [
      [/127\.0\.0\.1:4001\b/g, `127.0.0.1:${first}`, "server 127.0.0.1:4001"],
      [/127\.0\.0\.1:4002\b/g, `127.0.0.1:${second}`, "server 127.0.0.1:4002"],
      [/\blisten\s+8080\b/g, `listen ${listen}`, "listen 8080"],
    ];
    let result = text;
    for (const [pattern, replacement, what] of replacements) {
      const found = result.match(pattern)?.length ?? 0;
      if (found !== 1) throw new Error(`${NGINX_CONF}: expected "${what}" exactly once, found it ${found} times`);
      result = result.replace(pattern, replacement);
    }
    return result;
  }

  /** Throws a clear error when Debian's nginx is not installed. */
  static requireInstalled() {
    if (!existsSync(NGINX)) {
      throw new Error(
        `nginx is not installed (${NGINX} is missing): run scripts/ensure-nginx (Debian's nginx-light package); ` +
          "tests/interop/run does this before the suite",
      );
    }
  }

  async start() {
    Nginx.requireInstalled();
    this.dir = await mkdtemp(join(tmpdir(), "livebaton-nginx-"));
    await chmod(this.dir, 0o755);
    const temp = join(this.dir, "temp");
    for (const sub of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"])
      await mkdir(join(temp, sub), { recursive: true });
    const site = await Nginx.substitute(await readFile(NGINX_CONF, "utf8"), this.upstreamPorts, this.listenPort);
    const sitePath = join(this.dir, "livebaton.conf");
    await writeFile(sitePath, site);
    const main = [
      "daemon off;",
      "worker_processes 1;",
      `pid ${join(this.dir, "nginx.pid")};`,
      `error_log ${join(this.dir, "error.log")} info;`,
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      `  client_body_temp_path ${join(temp, "client_body")};`,
      `  proxy_temp_path ${join(temp, "proxy")};`,
      `  fastcgi_temp_path ${join(temp, "fastcgi")};`,
      `  uwsgi_temp_path ${join(temp, "uwsgi")};`,
      `  scgi_temp_path ${join(temp, "scgi")};`,
      `  include ${sitePath};`,
      "}",
      "",
    ].join("\n");
    this.confPath = join(this.dir, "nginx.conf");
    await writeFile(this.confPath, main);
    const base = ["-c", this.confPath, "-p", this.dir, "-e", join(this.dir, "error.log")];
    // `nginx -t` first: a broken config fails here with nginx's own message.
    await run(NGINX, ["-t", "-q", ...base], { timeout: 10_000 });

    const child = spawn(NGINX, base, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    trackChild(child, "SIGTERM");
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => this.output.push(chunk));
    }
    this.exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));
    try {
      await Promise.race([
        waitForPort(this.listenPort, 10_000, "nginx to listen"),
        this.exited.then(async ({ code, signal }) => {
          throw new Error(`nginx exited at start (code ${code}, signal ${signal}):\n${await this.errors()}`);
        }),
      ]);
    } catch (error) {
      await this.stop();
      throw error;
    }
    return this;
  }

  /** nginx's error log and output, for failure messages. */
  async errors() {
    let log = "";
    try {
      log = await readFile(join(this.dir, "error.log"), "utf8");
    } catch {
      // Not written yet.
    }
    return `${this.output.join("")}${log}`.split("\n").slice(-40).join("\n");
  }

  /** SIGTERM (fast shutdown: the master stops its workers), SIGKILL if it hangs; removes the directory. */
  async stop() {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      try {
        await withTimeout(this.exited, STOP_MS, "nginx to exit after SIGTERM");
      } catch (error) {
        child.kill("SIGKILL");
        throw error;
      }
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
