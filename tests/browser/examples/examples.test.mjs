// The examples of `livebaton-web` in Chromium, as someone who just ran `cargo run --example …` would use them: the
// counter counts when clicked, the presence room shows who else is here and forgets who closed their page. Each test
// starts the example's binary (built by `cargo test`) on a free port and stops it afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import {
  HOOK, REPO_ROOT, SCREENSHOT_DIR, WAIT_MS, freePort, launchBrowser, waitText, waitUntil,
} from '../app/support.mjs';

const TARGET = process.env.CARGO_TARGET_DIR || join(REPO_ROOT, 'target');

/** Starts example `name` on a free port; resolves once it answers. */
async function startExample(name) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(join(TARGET, 'debug', 'examples', name), [], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: String(port), RUST_LOG: 'warn' },
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
      await page.getByRole('button', { name: 'Enter the room' }).click();
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
});
