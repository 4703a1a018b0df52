// The examples of `livebaton-web` in Chromium, as someone who just ran `cargo run --example …` would use them: the
// counter counts when clicked, the presence room shows who else is here and forgets who closed their page. Each test
// starts the example's binary (built by `cargo test`) on a free port and stops it afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  HOOK, REPO_ROOT, SCREENSHOT_DIR, WAIT_MS, axeViolations, freePort, launchBrowser, waitText, waitUntil,
  weakControlBorders,
} from '../app/support.mjs';

const TARGET = process.env.CARGO_TARGET_DIR || join(REPO_ROOT, 'target');

/**
 * The WCAG 2.1 AA problems of `page` (axe-core, and borders of controls under 3:1): what an application gets from the
 * default page layout and stylesheet.
 */
async function accessibilityProblems(page) {
  return [...(await axeViolations(page)), ...(await weakControlBorders(page))];
}

/** Starts example `name` on a free port (with `env` added); resolves once it answers. */
async function startExample(name, env = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(join(TARGET, 'debug', 'examples', name), [], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env, PORT: String(port), RUST_LOG: 'warn' },
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`example ${name} exited early:\n${output}`);
      const response = await fetch(`${url}/assets/none`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
      return response !== null;
    },
    { message: `example ${name} answering` }
  );
  return { url, stop: () => child.kill('SIGKILL') };
}

describe('examples in Chromium', () => {
  let browser;
  before(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    browser = await launchBrowser();
  }, HOOK);
  after(async () => {
    await browser?.close();
  }, HOOK);

  test('counter: each click updates the count in place', async () => {
    const example = await startExample('counter');
    try {
      const page = await browser.newPage();
      await page.goto(example.url);
      await page.waitForSelector('body[data-lb-state="joined"]', { timeout: WAIT_MS });
      const count = page.locator('#count');
      await waitText(count, 'The count is 0.');
      await page.getByRole('button', { name: '+1' }).click();
      await page.getByRole('button', { name: '+1' }).click();
      await waitText(count, 'The count is 2.');
      await page.getByRole('button', { name: '−1' }).click();
      await waitText(count, 'The count is 1.');
      assert.deepEqual(await accessibilityProblems(page), [], 'the counter page');
      await page.screenshot({ path: join(SCREENSHOT_DIR, 'example-counter.png') });
    } finally {
      example.stop();
    }
  });

  test('presence room: two people see each other, and one closing is seen by the other', async () => {
    const example = await startExample('presence_room');
    const enter = async (name) => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(example.url);
      await page.getByLabel('Your name').fill(name);
      await page.getByRole('button', { name: 'Enter' }).click();
      await page.waitForSelector('body[data-lb-state="joined"]', { timeout: WAIT_MS });
      return { context, page };
    };
    try {
      const ann = await enter('Ann');
      await waitText(ann.page.locator('#members'), 'Ann (you)');
      const bob = await enter('Bob <script>');
      await waitText(bob.page.locator('#members'), 'Bob <script> (you)');
      await waitText(ann.page.locator('#members'), 'Bob <script>');
      assert.equal(await ann.page.locator('#members li').count(), 2);
      assert.deepEqual(await accessibilityProblems(ann.page), [], 'the presence room');
      await ann.page.screenshot({ path: join(SCREENSHOT_DIR, 'example-presence-room.png') });
      await bob.context.close();
      await waitUntil(async () => (await ann.page.locator('#members li').count()) === 1, {
        message: 'Bob gone from Ann\'s list',
      });
      assert.match(await ann.page.locator('#members').innerText(), /Ann \(you\)/);
      await ann.context.close();
    } finally {
      example.stop();
    }
  });

  test('notes: one owner types, the other watches read-only, and is promoted with the text when the owner leaves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'livebaton-notes-'));
    const example = await startExample('notes', { NOTES_DB: `sqlite://${join(dir, 'notes.db')}?mode=rwc` });
    const open = async (name) => {
      const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
      const page = await context.newPage();
      await page.goto(`${example.url}/join?name=${name}`);
      await page.getByRole('link', { name: 'Welcome' }).click();
      await page.waitForSelector('body[data-lb-state="joined"]', { timeout: WAIT_MS });
      return { context, page };
    };
    try {
      const ann = await open('Ann');
      await ann.page.waitForSelector('#editing-bar[data-role="owner"]', { timeout: WAIT_MS });
      const bob = await open('Bob');
      await bob.page.waitForSelector('#editing-bar[data-role="spectator"]', { timeout: WAIT_MS });
      await waitText(bob.page.locator('#editing-bar'), 'Read-only — Ann is editing');
      assert.equal(await bob.page.locator('#note-title').isDisabled(), true, 'a spectator cannot type');
      await waitText(ann.page.locator('#editing-bar'), '1 other person');

      await ann.page.locator('#note-title').fill('Shopping');
      await ann.page.locator('#note-body').fill('Milk <and> bread');
      await waitUntil(async () => (await bob.page.locator('#note-body').inputValue()) === 'Milk <and> bread', {
        message: "Ann's text on Bob's page",
      });
      assert.equal(await bob.page.locator('#note-title').inputValue(), 'Shopping');
      assert.deepEqual(await accessibilityProblems(ann.page), [], 'the notes form, owner');
      assert.deepEqual(await accessibilityProblems(bob.page), [], 'the notes form, spectator');
      await ann.page.screenshot({ path: join(SCREENSHOT_DIR, 'example-notes-owner.png') });
      await bob.page.screenshot({ path: join(SCREENSHOT_DIR, 'example-notes-spectator.png') });

      await ann.context.close();
      await bob.page.waitForSelector('#editing-bar[data-role="owner"]', { timeout: WAIT_MS });
      await waitText(bob.page.locator('#editing-bar'), "Ann's unsaved changes");
      // Announced (the bar is a polite live region), and the keyboard can go on: focus moved into the form.
      assert.equal(await bob.page.locator('#editing-bar').getAttribute('aria-live'), 'polite');
      await waitUntil(async () => (await bob.page.evaluate(() => document.activeElement.id)) === 'note-title', {
        message: 'focus on the first field after the promotion',
      });
      assert.equal(await bob.page.locator('#note-body').inputValue(), 'Milk <and> bread', 'the draft came with the baton');
      await bob.page.locator('#note-body').fill('Milk <and> bread, eggs');
      await waitText(bob.page.locator('#save-status'), 'Unsaved changes');
      // Ctrl+S saves the form (not the page), and the status beside Save says so.
      await bob.page.keyboard.press('Control+s');
      await waitText(bob.page.locator('#lb-flash'), 'Saved.');
      await waitText(bob.page.locator('#save-status'), /^Saved at \d\d:\d\d UTC$/);
      await bob.page.reload();
      await bob.page.waitForSelector('body[data-lb-state="joined"]', { timeout: WAIT_MS });
      assert.equal(await bob.page.locator('#note-body').inputValue(), 'Milk <and> bread, eggs', 'stored');
      assert.equal(await bob.page.locator('#note-title').inputValue(), 'Shopping');

      // Offline, Save says why nothing was saved, and keeps the text.
      example.stop();
      await waitUntil(async () => (await bob.page.evaluate(() => document.body.dataset.lbState)) !== 'joined', {
        message: 'the page to notice the server is gone',
      });
      await bob.page.locator('#note-body').fill('Milk <and> bread, eggs, tea');
      await bob.page.keyboard.press('Control+s');
      await waitText(bob.page.locator('#save-status'), 'Not saved: offline');
      assert.equal(await bob.page.locator('#note-body').inputValue(), 'Milk <and> bread, eggs, tea');
      await bob.page.screenshot({ path: join(SCREENSHOT_DIR, 'example-notes-offline.png') });
      await bob.context.close();
    } finally {
      example.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
