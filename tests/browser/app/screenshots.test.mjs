// Screenshots of every admin page for docs/screenshots/ (1280×800, full page), taken in realistic states: several
// people on a record form, a conflict, a dashboard with sessions open. Each page is checked to be live first.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ADMIN,
  ALICE,
  apiClient,
  BOB,
  CAROL,
  cleanup,
  editPath,
  gotoLive,
  HOOK,
  liveState,
  newContext,
  openFixture,
  SCREENSHOT_DIR,
  signIn,
  waitRole,
  waitText,
  waitValue,
} from './support.mjs';

/** The widths every page is shot at: a desktop window and a phone (an iPhone 12–15 is 390 CSS pixels wide). */
const WIDTHS = [
  { suffix: '', width: 1280, height: 800 },
  { suffix: '-phone', width: 390, height: 844 },
];

/**
 * Full-page screenshots of `page` as docs/screenshots/<name>.png (1280 wide) and <name>-phone.png (390 wide), once
 * the page is settled; each is checked for layout problems at its width.
 */
async function shoot(page, name, { live = true } = {}) {
  if (live) assert.equal(await liveState(page), 'joined', `${name}: the page is live`);
  await page.mouse.move(0, 0);
  await page.evaluate(() => document.fonts.ready);
  await page.evaluate(() => document.activeElement?.blur?.());
  const original = page.viewportSize();
  for (const { suffix, width, height: minHeight } of WIDTHS) {
    await page.setViewportSize({ width, height: minHeight });
    // A window as tall as the page: a full-page capture otherwise draws sticky elements (a form's Save bar) where the
    // first screenful ends, over the fields below it, which no reader ever sees.
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width, height: Math.max(minHeight, height) });
    const file = `${name}${suffix}.png`;
    await page.screenshot({ path: join(SCREENSHOT_DIR, file), fullPage: true, animations: 'disabled', timeout: 15_000 });
    await page.setViewportSize({ width, height: minHeight });
    const problems = await layoutProblems(page);
    if (problems.length) layoutFailures.push(`${file}: ${problems.join('; ')}`);
  }
  await page.setViewportSize(original);
}

// Layout problems of every screenshot, reported together at the end (so that every screenshot is still taken).
const layoutFailures = [];

/**
 * Layout problems a screenshot would show: a card or table wider than the page column (or the window), and buttons
 * of one action row that do not line up. Returns a list of problems (empty when the page looks right).
 */
async function layoutProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const main = document.querySelector('main');
    if (!main) return problems;
    const box = main.getBoundingClientRect();
    const style = getComputedStyle(main);
    const right = box.right - parseFloat(style.paddingRight) + 1;
    const left = box.left + parseFloat(style.paddingLeft) - 1;
    for (const element of main.querySelectorAll('.card, .stat, table, .editing-bar, .conflict')) {
      const r = element.getBoundingClientRect();
      if (r.right > right || r.left < left) {
        const name = `${element.localName}${element.id ? '#' + element.id : ''}.${element.className}`;
        problems.push(`${name} spans x ${Math.round(r.left)}–${Math.round(r.right)}, the column ${Math.round(left)}–${Math.round(right)}`);
      }
    }
    if (document.documentElement.scrollWidth > window.innerWidth) {
      problems.push(`the page scrolls sideways (${document.documentElement.scrollWidth} px wide)`);
    }
    for (const row of main.querySelectorAll('.page-head .actions')) {
      const buttons = [...row.querySelectorAll('button, .button')].map((b) => [b.textContent.trim(), b.getBoundingClientRect()]);
      const centres = buttons.map(([, r]) => (r.top + r.bottom) / 2);
      if (centres.length > 1 && Math.max(...centres) - Math.min(...centres) > 2) {
        problems.push(`buttons ${buttons.map(([t, r]) => `${t}@${Math.round(r.top)}`).join(', ')} are not aligned`);
      }
    }
    return problems;
  });
}


describe('screenshots', () => {
  let server;
  let browser;
  const contexts = [];

  before(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    ({ server, browser } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  async function user(who) {
    const signedIn = await signIn(browser, server, who);
    contexts.push(signedIn.context);
    return signedIn;
  }

  test('every page, in docs/screenshots', { timeout: 60_000 }, async () => {
    const api = await apiClient(server, ADMIN);
    const records = await api.records('article');
    const record = records[records.length - 1];

    const anonymous = await newContext(browser);
    contexts.push(anonymous);
    const login = await anonymous.newPage();
    await login.goto(`${server.url}/admin/login`);
    await login.getByLabel('Email').waitFor();
    await shoot(login, 'login', { live: false });

    // Alice edits a record; Bob and Carol watch.
    const alice = (await user(ALICE)).page;
    await gotoLive(alice, server, editPath('article', record.id));
    await waitRole(alice, 'owner');
    const bob = (await user(BOB)).page;
    await gotoLive(bob, server, editPath('article', record.id));
    await waitRole(bob, 'spectator');
    const carol = (await user(CAROL)).page;
    await gotoLive(carol, server, editPath('article', record.id));
    await waitRole(carol, 'spectator');
    await waitText(alice.locator('#editing-bar'), '2 waiting: Bob, Carol');
    await alice.getByLabel('Title').fill(`${record.title} (second draft)`);
    await alice.getByLabel('Summary').fill('Rewritten while Bob and Carol watch.');
    await waitValue(bob.getByLabel('Summary'), 'Rewritten while Bob and Carol watch.');
    await shoot(alice, 'record-edit-owner');
    await shoot(bob, 'record-edit-spectator');

    // A visitor reads a published record.
    const visitor = await anonymous.newPage();
    await gotoLive(visitor, server, `/e/article/${records[0].slug}`);
    await shoot(visitor, 'public');

    // The admin's pages, with those sessions open.
    const admin = (await user(ADMIN)).page;
    await gotoLive(admin, server, '/admin');
    await waitText(admin.locator('#total-sessions .value'), '5');
    await waitText(admin.locator('#active-sessions'), 'Anonymous visitor');
    await shoot(admin, 'dashboard');
    await gotoLive(admin, server, '/admin/entities');
    await shoot(admin, 'entities');
    await gotoLive(admin, server, '/admin/entities/1/edit');
    await waitRole(admin, 'owner');
    await shoot(admin, 'entity-edit');
    await gotoLive(admin, server, '/admin/entities/article/data');
    await shoot(admin, 'records');
    // People: a pending invitation, and the link of a new one shown to pass on.
    await api.post('/api/invitations', { email: 'nia@example.com', role: 'viewer', name: 'Nia' });
    await gotoLive(admin, server, '/admin/users');
    await admin.getByLabel('Email', { exact: true }).fill('sam@example.com');
    await admin.getByLabel('Name', { exact: true }).fill('Sam');
    await admin.getByRole('button', { name: 'Invite' }).click();
    await waitText(admin.locator('#issued-link'), 'sam@example.com');
    await shoot(admin, 'users');
    await gotoLive(admin, server, `/admin/entities/article/data/${records[0].id}`);
    await shoot(admin, 'record');

    // A conflict: the record changes through the API while Alice holds her draft.
    await api.updateRecord('article', record.id, {
      title: `${record.title} (edited elsewhere)`,
      data: { ...record.data, category: 'guide' },
    });
    await alice.getByRole('button', { name: 'Save' }).click();
    await waitText(alice.locator('#conflict'), 'Someone else saved this record');
    await shoot(alice, 'record-conflict');

    assert.deepEqual(layoutFailures, [], 'pages that look broken');
    const problems = contexts.flatMap((context) => context.problems);
    assert.deepEqual(problems.filter((problem) => problem.startsWith('csp:')), [], 'every page passes its CSP');
    // The styles come from the linked stylesheet (none are inline), so the page must still look styled.
    const headerDisplay = await admin.evaluate(() => getComputedStyle(document.querySelector('header.top')).display);
    assert.equal(headerDisplay, 'flex', 'the stylesheet applies');
  });
});
