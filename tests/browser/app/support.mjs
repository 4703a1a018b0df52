// Helpers for the end-to-end browser tests of the livebaton admin app: a real `livebaton` server per test file (fresh
// data directory, free port), users, the JSON API, sign-in through the login form, and bounded waits.
//
// Every wait here has a timeout; every server and browser started here is stopped by the caller's `after` hook (see
// `startServer` and `launchBrowser`), and a process that outlives its test file is killed on exit as a last resort.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { launchBrowser } from '../lib/chromium.mjs';

export { launchBrowser };

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..', '..', '..');
export const BINARY = process.env.LIVEBATON_BIN || join(REPO_ROOT, 'target', 'debug', 'livebaton');
/**
 * Where screenshots go: docs/screenshots/ when LIVEBATON_SCREENSHOTS=1 (to refresh the committed ones), otherwise a
 * temporary directory, so an ordinary test run still takes and checks every page without touching the repository.
 */
export const SCREENSHOT_DIR = process.env.LIVEBATON_SCREENSHOTS === '1'
  ? join(REPO_ROOT, 'docs', 'screenshots')
  : join(tmpdir(), `livebaton-screenshots-${process.pid}`);

/**
 * The environment for the binary: without DATABASE_URL, REDIS_URL or LIVEBATON_* settings, which `scripts/test` exports
 * for the Rust suites. Each server here must use the SQLite file in its own fresh data directory; with the inherited
 * DATABASE_URL every server (and every run) would share one PostgreSQL database.
 */
function serverEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name === 'DATABASE_URL' || name === 'REDIS_URL' || name.startsWith('LIVEBATON_')) delete env[name];
  }
  return env;
}

export const ADMIN = { email: 'admin@example.com', password: 'admin password 123', name: 'Admin' };
export const ALICE = { email: 'alice@example.com', password: 'alice password 1', role: 'editor', name: 'Alice' };
export const BOB = { email: 'bob@example.com', password: 'bob password 12', role: 'editor', name: 'Bob' };
export const CAROL = { email: 'carol@example.com', password: 'carol password 1', role: 'editor', name: 'Carol' };
export const VERA = { email: 'vera@example.com', password: 'vera password 12', role: 'viewer', name: 'Vera' };
export const ADA = { email: 'ada@example.com', password: 'ada password 123', role: 'admin', name: 'Ada' };
export const USERS = [ALICE, BOB, CAROL, VERA, ADA];

/** The default timeout of one wait (the machine is slow and shared: generous, but always bounded). */
export const WAIT_MS = 15_000;

// Processes still running when the test process exits (a crashed hook) are killed rather than left behind.
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Fails with a clear message when the server binary has not been built (never skips). */
export function requireBinary() {
  if (!existsSync(BINARY)) {
    throw new Error(
      `${BINARY} is missing: build it first with \`cargo build -p livebaton-admin\` (CI: \`cargo test --workspace\`)`
    );
  }
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (sync or async) until it returns a truthy value; returns it, or throws `message` after `timeout`. */
export async function waitUntil(check, { timeout = WAIT_MS, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? `; last error: ${lastError.message}` : `; last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${message}${detail}`);
    }
    await sleep(interval);
  }
}

function cli(args, dataDir) {
  const result = spawnSync(BINARY, [...args, '--data-dir', dataDir], { encoding: 'utf8', timeout: 30_000, env: serverEnv() });
  if (result.status !== 0) {
    throw new Error(`livebaton ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

/**
 * Starts `livebaton` on a free port with a fresh data directory, the admin and the test users (Alice, Bob, Carol:
 * editors; Vera: viewer). Returns a handle: `url`, `port`, `dataDir`, `stop()`, `start()` (again, same port and data),
 * `close()` (stop and delete the data), `log()` (what it printed).
 */
export async function startServer({ leaveGraceMs = 1000, users = USERS } = {}) {
  requireBinary();
  const dataDir = mkdtempSync(join(tmpdir(), 'livebaton-e2e-'));
  for (const user of users) {
    cli(
      ['user', 'add', '--email', user.email, '--password', user.password, '--role', user.role, '--name', user.name],
      dataDir
    );
  }
  const port = await freePort();
  const secret = randomBytes(48).toString('hex');
  const url = `http://127.0.0.1:${port}`;
  let child = null;
  let output = '';

  async function start() {
    if (child) throw new Error('server already running');
    const args = [
      '--bind', `127.0.0.1:${port}`,
      '--data-dir', dataDir,
      '--secret-key-base', secret,
      '--admin-email', ADMIN.email,
      '--admin-password', ADMIN.password,
      '--leave-grace-ms', String(leaveGraceMs),
    ];
    const proc = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...serverEnv(), RUST_LOG: 'warn' } });
    child = proc;
    running.add(proc);
    const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    proc.exitedPromise = exited;
    proc.stdout.on('data', (chunk) => (output += chunk));
    proc.stderr.on('data', (chunk) => (output += chunk));
    let early = null;
    exited.then((status) => {
      running.delete(proc);
      early = status;
    });
    await waitUntil(
      async () => {
        if (early) throw new Error(`livebaton exited early (${JSON.stringify(early)}):\n${output}`);
        const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
        return response.status === 200;
      },
      { timeout: 30_000, interval: 150, message: `${url}/healthz = 200` }
    ).catch((error) => {
      if (early) throw new Error(`livebaton exited early (${JSON.stringify(early)}):\n${output}`);
      throw error;
    });
  }

  /** SIGTERM, then waits for the exit (SIGKILL after 10 s: the server must exit within 5 s). Returns how it ended. */
  async function stop() {
    const proc = child;
    if (!proc) return null;
    child = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, signal: proc.signalCode };
    const started = Date.now();
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    const status = await proc.exitedPromise;
    clearTimeout(timer);
    return { ...status, ms: Date.now() - started };
  }

  async function close() {
    await stop();
    rmSync(dataDir, { recursive: true, force: true });
  }

  try {
    await start();
  } catch (error) {
    await close();
    throw error;
  }
  return { url, port, dataDir, start, stop, close, log: () => output };
}

// ---------------------------------------------------------------------------------------------------------------
// JSON API
// ---------------------------------------------------------------------------------------------------------------

/** A JSON API client signed in as `user` (`{email, password}`). Methods return `{status, body}`. */
export async function apiClient(server, user) {
  const tokenResponse = await fetch(`${server.url}/api/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: user.email, password: user.password }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const tokenBody = await tokenResponse.json();
  if (tokenResponse.status !== 200 && tokenResponse.status !== 201) {
    throw new Error(`POST /api/tokens for ${user.email}: ${tokenResponse.status} ${JSON.stringify(tokenBody)}`);
  }
  const token = tokenBody.token;
  async function request(method, path, body) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(WAIT_MS),
    });
    const text = await response.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed };
  }
  /** Like `request`, but throws unless the status is `expected`; returns the body. */
  async function ok(method, path, body, expected) {
    const result = await request(method, path, body);
    const wanted = expected ?? (method === 'POST' ? 201 : method === 'DELETE' ? 204 : 200);
    if (result.status !== wanted) {
      throw new Error(`${method} ${path}: expected ${wanted}, got ${result.status} ${JSON.stringify(result.body)}`);
    }
    return result.body;
  }
  return {
    token,
    request,
    ok,
    get: (path) => ok('GET', path),
    post: (path, body) => ok('POST', path, body),
    put: (path, body) => ok('PUT', path, body),
    del: (path) => ok('DELETE', path),
    records: async (entity) => (await ok('GET', `/api/entities/${entity}/records`)).records,
    record: (entity, id) => ok('GET', `/api/entities/${entity}/records/${id}`),
    createRecord: (entity, body) => ok('POST', `/api/entities/${entity}/records`, body),
    /** PUT of `changes` over the record as it is now (title, slug, status, data, lock_version). */
    async updateRecord(entity, id, changes) {
      const current = await ok('GET', `/api/entities/${entity}/records/${id}`);
      const body = {
        title: current.title,
        slug: current.slug,
        status: current.status,
        data: current.data,
        lock_version: current.lock_version,
        ...changes,
      };
      return ok('PUT', `/api/entities/${entity}/records/${id}`, body);
    },
  };
}

/** The record of `entity` whose title is `title` (through the API). */
export async function recordByTitle(api, entity, title) {
  const records = await api.records(entity);
  const record = records.find((r) => r.title === title);
  if (!record) throw new Error(`no ${entity} record titled ${JSON.stringify(title)}`);
  return record;
}

/** A fresh `article` record for one test (so tests of one file do not share a record). */
export async function freshArticle(api, title, extra = {}) {
  return api.createRecord('article', {
    title,
    status: 'published',
    data: { summary: `Summary of ${title}`, category: 'news' },
    ...extra,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Browser
// ---------------------------------------------------------------------------------------------------------------

/**
 * A new context (an independent user) of `browser`, signed in as `user` through the login form. Returns
 * `{context, page}` with `page` on `/admin`. Console errors and page errors are collected in `context.problems`.
 */
export async function signIn(browser, server, user, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await newContext(browser, { viewport });
  const page = await context.newPage();
  await page.goto(`${server.url}/admin/login`, { timeout: WAIT_MS });
  await page.getByLabel('Email').fill(user.email, { timeout: WAIT_MS });
  await page.getByLabel('Password').fill(user.password, { timeout: WAIT_MS });
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/admin', { timeout: WAIT_MS }),
    page.getByRole('button', { name: 'Sign in' }).click({ timeout: WAIT_MS }),
  ]);
  return { context, page };
}

/**
 * A new context that records page errors, CSP violations and dialogs (`context.problems`, `context.dialogs`).
 * Dialogs are dismissed ("Cancel"), or accepted while `context.acceptDialogs` is true.
 */
export async function newContext(browser, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(WAIT_MS);
  context.problems = [];
  context.dialogs = [];
  context.on('page', (page) => watchPage(context, page));
  return context;
}

function watchPage(context, page) {
  page.on('pageerror', (error) => context.problems.push(`pageerror: ${error.message}`));
  // The Content-Security-Policy allows no inline script or style: a page that needs one breaks, and says so here.
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) context.problems.push(`csp: ${message.text()}`);
  });
  page.on('dialog', (dialog) => {
    context.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    (context.acceptDialogs ? dialog.accept() : dialog.dismiss()).catch(() => {});
  });
}

/** Opens `path` in a new page of `context` and waits until its live view has joined. */
export async function openLive(context, server, path) {
  const page = await context.newPage();
  await page.goto(`${server.url}${path}`, { timeout: WAIT_MS });
  await waitJoined(page);
  return page;
}

/** Waits for `body[data-lb-state=joined]`. */
export async function waitJoined(page, timeout = WAIT_MS) {
  await page.waitForSelector('body[data-lb-state="joined"]', { state: 'attached', timeout });
}

/** The live state of `page` (`body[data-lb-state]`). */
export async function liveState(page) {
  return page.evaluate(() => document.body.dataset.lbState || 'static');
}

/** Waits until `locator`'s text contains `text` (a string or RegExp); returns the text. */
export async function waitText(locator, text, { timeout = WAIT_MS } = {}) {
  let last = '';
  try {
    return await waitUntil(
      async () => {
        last = (await locator.textContent({ timeout: 1000 })) ?? '';
        return (typeof text === 'string' ? last.includes(text) : text.test(last)) ? last : null;
      },
      { timeout, message: `text ${text}` }
    );
  } catch (error) {
    throw new Error(`waiting for ${locator} to contain ${text}: last text ${JSON.stringify(last)} (${error.message})`);
  }
}

/** Waits until an input's value equals `value` (or matches a RegExp); returns it. */
export async function waitValue(locator, value, { timeout = WAIT_MS } = {}) {
  let last = '';
  try {
    return await waitUntil(
      async () => {
        last = await locator.inputValue({ timeout: 1000 });
        return (typeof value === 'string' ? last === value : value.test(last)) ? last : null;
      },
      { timeout, message: `value ${value}` }
    );
  } catch (error) {
    throw new Error(`waiting for ${locator} to hold ${value}: last value ${JSON.stringify(last)} (${error.message})`);
  }
}

/** Closes browsers/contexts and stops servers, ignoring errors, so an `after` hook always finishes. */
export async function cleanup(...things) {
  for (const thing of things) {
    if (!thing) continue;
    let timer;
    try {
      if (typeof thing.close === 'function') {
        const limit = new Promise((r) => (timer = setTimeout(r, 15_000)));
        await Promise.race([thing.close(), limit]);
      }
    } catch {
      // keep cleaning up the rest
    } finally {
      clearTimeout(timer); // a pending timer would keep the test process alive
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Collaborative forms
// ---------------------------------------------------------------------------------------------------------------

/** The record form's path. */
export const editPath = (entity, id) => `/admin/entities/${entity}/data/${id}/edit`;

/** Navigates `page` to `path` and waits until its live view has joined. */
export async function gotoLive(page, server, path) {
  await page.goto(`${server.url}${path}`, { timeout: WAIT_MS });
  await waitJoined(page);
  return page;
}

/** Waits until `#editing-bar[data-role]` is `role` (owner | spectator); returns the bar's text. */
export async function waitRole(page, role, { timeout = WAIT_MS } = {}) {
  let last = null;
  try {
    await waitUntil(
      async () => {
        last = await page.evaluate(() => {
          const bar = document.getElementById('editing-bar');
          return bar ? { role: bar.getAttribute('data-role'), text: bar.textContent } : null;
        });
        return last && last.role === role;
      },
      { timeout, message: `editing role ${role}` }
    );
  } catch (error) {
    throw new Error(`${page.url()}: expected role ${role}, editing bar is ${JSON.stringify(last)} (${error.message})`);
  }
  return last.text;
}

/** The text of an error flash once one contains `text`. */
export async function waitFlash(page, kind, text, { timeout = WAIT_MS } = {}) {
  return waitText(page.locator(`#lb-flash .flash-${kind}`).filter({ hasText: text }).first(), text, { timeout });
}

/** Bound for `before`/`after` hooks: a server or browser that does not start fails the file instead of hanging it. */
export const HOOK = { timeout: 60_000 };

/** What most test files start with: one server (`startServer` options), one browser, and an admin API client. */
export async function openFixture(serverOptions) {
  const server = await startServer(serverOptions);
  const browser = await launchBrowser();
  const api = await apiClient(server, ADMIN);
  return { server, browser, api };
}

// ---------------------------------------------------------------------------------------------------------------
// Accessibility
// ---------------------------------------------------------------------------------------------------------------

/** axe-core (npm, pinned in package.json), read once. */
let axeSource;

/** The WCAG 2.1 A and AA rules of axe-core: what "zero violations" is measured against. */
export const WCAG_21_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

/**
 * The WCAG 2.1 AA violations axe-core finds in `page` as it is now, one line per element: `rule (impact) target:
 * summary`. axe is evaluated through DevTools, which the page's Content-Security-Policy does not govern, so the page
 * is tested with its real CSP (nothing is injected as a <script>).
 */
export async function axeViolations(page) {
  axeSource ??= readFileSync(join(here, '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async (tags) => {
    const results = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return results.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      nodes: violation.nodes.map((node) => `${node.target.join(' ')}: ${node.failureSummary.replace(/\s+/g, ' ')}`),
    }));
  }, WCAG_21_AA);
  return violations.flatMap((violation) => violation.nodes.map((node) => `${violation.id} (${violation.impact}) ${node}`));
}


/**
 * WCAG 1.4.11 for what axe does not check: the border of every enabled text input, select, textarea and outlined
 * button must contrast 3:1 with what is behind it (the nearest ancestor with a background). Returns one line per
 * control below that, with its ratio.
 */
export async function weakControlBorders(page) {
  return page.evaluate(() => {
    const rgb = (color) => (color.match(/[\d.]+/g) || []).map(Number);
    const luminance = ([r, g, b]) => {
      const channel = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const ratio = (a, b) => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
      return (hi + 0.05) / (lo + 0.05);
    };
    const backdrop = (element) => {
      for (let node = element.parentElement; node; node = node.parentElement) {
        const color = rgb(getComputedStyle(node).backgroundColor);
        if (color.length === 3 || (color.length === 4 && color[3] > 0)) return color.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const controls = document.querySelectorAll(
      'input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not(:disabled), select:not(:disabled), ' +
        'textarea:not(:disabled), button.secondary:not(:disabled), button.danger:not(:disabled)'
    );
    const weak = [];
    for (const control of controls) {
      const style = getComputedStyle(control);
      if (style.display === 'none' || style.visibility === 'hidden' || parseFloat(style.borderTopWidth) === 0) continue;
      const border = rgb(style.borderTopColor).slice(0, 3);
      const value = ratio(border, backdrop(control));
      if (value < 3) weak.push(`${control.localName}#${control.id || control.name || control.textContent.trim()}: ${value.toFixed(2)}:1`);
    }
    return weak;
  });
}
