// Runs the real `livebaton` binary for the interop tests: a fresh data directory per test file, users created with
// the CLI, bearer tokens from `POST /api/tokens`, and a server process that is always killed when the file ends.
//
// Every wait here has a timeout, so a server that never starts, never answers or never stops fails the test instead
// of hanging the suite.

import { spawn, execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BINARY = process.env.LIVEBATON_BIN || join(ROOT, "target/debug/livebaton");

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 8_000;
const CLI_TIMEOUT_MS = 20_000;
const HTTP_TIMEOUT_MS = 10_000;

/** Every child process this module started and that has not exited yet. */
const children = new Set();

function killAll(signal = "SIGKILL") {
  for (const child of children) {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

// Whatever happens to this test file's process, its servers do not outlive it.
process.on("exit", () => killAll("SIGKILL"));
for (const [signal, number] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]]) {
  process.once(signal, () => {
    killAll("SIGKILL");
    process.exit(128 + number);
  });
}

/** The environment for the binary: no `DATABASE_URL` (CI points it at PostgreSQL) and no `LIVEBATON_*` settings. */
function childEnv() {
  const env = { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG || "info" };
  delete env.DATABASE_URL;
  for (const name of Object.keys(env)) {
    if (name.startsWith("LIVEBATON_") || name === "REDIS_URL") delete env[name];
  }
  return env;
}

/** Rejects after `ms` with `message` unless `promise` settles first. */
export function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** A fresh temporary data directory; `removeDataDir` deletes it. */
export async function makeDataDir() {
  return mkdtemp(join(tmpdir(), "livebaton-interop-"));
}

export async function removeDataDir(dir) {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** A TCP port that was free a moment ago (bind to port 0, read it, close). */
export async function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.unref();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/** `livebaton user add …` against `dataDir` (works before the server starts and while it runs). */
export async function addUser(dataDir, { email, password, role, name }) {
  const args = ["user", "add", "--email", email, "--password", password, "--role", role, "--data-dir", dataDir];
  if (name) args.push("--name", name);
  return new Promise((done, fail) => {
    execFile(BINARY, args, { env: childEnv(), timeout: CLI_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) fail(new Error(`livebaton ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`));
      else done(stdout.trim());
    });
  });
}

/** The user id inside a token (`lb1.<base64url {"uid","exp"}>.<signature>`, see accounts/tokens.rs). */
export function userIdOfToken(token) {
  const [prefix, payload] = token.split(".");
  if (prefix !== "lb1" || !payload) throw new Error(`unexpected token format: ${token}`);
  return String(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")).uid);
}

/**
 * A running `livebaton` server.
 *
 * `start` spawns it and waits for `livebaton listening on http://ADDR/admin`; `stop` sends SIGTERM and waits for it to
 * exit (SIGKILL after a timeout). The last lines of its output are kept for failure messages.
 */
export class Server {
  /** `launcher`: a command the binary runs under, e.g. `["taskset", "-c", "0"]` (it must exec the binary). */
  constructor({ dataDir, bind = "127.0.0.1:0", leaveGraceMs, idleTimeoutSecs, demo = true, admin, args = [], launcher = [] }) {
    this.dataDir = dataDir;
    this.bind = bind;
    this.options = { leaveGraceMs, idleTimeoutSecs, demo, admin, args, launcher };
    this.child = null;
    this.address = null;
    this.output = [];
  }

  get baseUrl() {
    return `http://${this.address}`;
  }

  /** The endpoint to give `new Socket(…)` (phoenix.js appends `/websocket?vsn=2.0.0`). */
  get socketUrl() {
    return `ws://${this.address}/live`;
  }

  log(line) {
    this.output.push(line);
    if (this.output.length > 200) this.output.shift();
    if (process.env.INTEROP_VERBOSE) process.stderr.write(`[livebaton ${this.address ?? this.bind}] ${line}\n`);
  }

  /** The server's recent output, for failure messages. */
  recentOutput(lines = 40) {
    return this.output.slice(-lines).join("\n");
  }

  async start() {
    if (this.child) throw new Error("server already running");
    const { leaveGraceMs, idleTimeoutSecs, demo, admin, args: extra, launcher } = this.options;
    const args = ["--data-dir", this.dataDir, "--bind", this.bind];
    if (leaveGraceMs !== undefined) args.push("--leave-grace-ms", String(leaveGraceMs));
    if (idleTimeoutSecs !== undefined) args.push("--idle-timeout-secs", String(idleTimeoutSecs));
    if (!demo) args.push("--no-demo");
    if (admin) args.push("--admin-email", admin.email, "--admin-password", admin.password);
    args.push(...extra);

    const [command, ...prefix] = [...launcher, BINARY];
    const child = spawn(command, [...prefix, ...args], { env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    children.add(child);
    this.exited = new Promise((done) => {
      child.once("exit", (code, signal) => {
        children.delete(child);
        this.log(`(exited: code ${code}, signal ${signal})`);
        done({ code, signal });
      });
    });

    const listening = new Promise((done, fail) => {
      const lines = (stream) => {
        let rest = "";
        stream.setEncoding("utf8");
        stream.on("data", (chunk) => {
          rest += chunk;
          let newline;
          while ((newline = rest.indexOf("\n")) >= 0) {
            const line = rest.slice(0, newline);
            rest = rest.slice(newline + 1);
            this.log(line);
            const match = /livebaton listening on http:\/\/(\S+?)\/admin/.exec(line);
            if (match) done(match[1]);
          }
        });
      };
      lines(child.stdout);
      lines(child.stderr);
      child.once("error", fail);
      this.exited.then(({ code, signal }) =>
        fail(new Error(`livebaton exited before listening (code ${code}, signal ${signal}):\n${this.recentOutput()}`)),
      );
    });
    try {
      this.address = await withTimeout(listening, START_TIMEOUT_MS, `livebaton ${args.join(" ")} to listen`);
    } catch (error) {
      this.kill();
      throw error;
    }
    return this;
  }

  /** SIGTERM and wait for the exit (SIGKILL if it takes longer than the timeout). Returns `{code, signal}`. */
  async stop() {
    const child = this.child;
    if (!child) return null;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return this.exited;
    child.kill("SIGTERM");
    try {
      return await withTimeout(this.exited, STOP_TIMEOUT_MS, "livebaton to exit after SIGTERM");
    } catch (error) {
      child.kill("SIGKILL");
      await withTimeout(this.exited, STOP_TIMEOUT_MS, "livebaton to exit after SIGKILL");
      throw error;
    }
  }

  /** SIGKILL without waiting (cleanup after a failure). */
  kill() {
    if (this.child) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    this.child = null;
  }

  /** fetch() against the server with an optional bearer token; JSON in, `{status, body}` out. */
  async api(method, path, { token, body } = {}) {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: response.status, body: parsed };
  }

  /** Like `api`, but fails unless the status is `expected`, and returns the body. */
  async apiOk(method, path, { token, body, expected = 200 } = {}) {
    const { status, body: answer } = await this.api(method, path, { token, body });
    if (status !== expected) {
      throw new Error(`${method} ${path}: expected ${expected}, got ${status}: ${JSON.stringify(answer)}`);
    }
    return answer;
  }

  /** `POST /api/tokens` → `{token, userId}`. */
  async token(email, password) {
    const { token } = await this.apiOk("POST", "/api/tokens", { body: { email, password } });
    return { token, userId: userIdOfToken(token) };
  }
}

/**
 * The usual set-up of a test file: a fresh data dir, `users` created with the CLI, the server started with
 * `options`, and a token for each user. `close()` stops the server (SIGTERM) and removes the data dir.
 */
export async function startWithUsers(users, options = {}) {
  const dataDir = await makeDataDir();
  let server;
  try {
    for (const user of users) await addUser(dataDir, user);
    server = await new Server({ dataDir, ...options }).start();
    const accounts = {};
    for (const user of users) {
      accounts[user.name ?? user.email] = { ...user, ...(await server.token(user.email, user.password)) };
    }
    const close = async () => {
      try {
        await server.stop();
      } finally {
        server.kill();
        await removeDataDir(dataDir);
      }
    };
    return { server, accounts, dataDir, close };
  } catch (error) {
    server?.kill();
    await removeDataDir(dataDir);
    throw error;
  }
}

/** A test account (editor unless `role` says otherwise). */
export function account(name, role = "editor") {
  const lower = name.toLowerCase();
  return { name, email: `${lower}@interop.test`, password: `${lower}-password-123`, role };
}
