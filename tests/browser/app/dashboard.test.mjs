// The dashboard counts every open live page (any tab, any user, public pages) and updates without a reload.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADMIN,
  ALICE,
  apiClient,
  cleanup,
  gotoLive,
  HOOK,
  newContext,
  openFixture,
  signIn,
  waitText,
  waitUntil,
} from './support.mjs';

const CARDS = ['total-sessions', 'authenticated-sessions', 'anonymous-sessions', 'unique-users', 'unique-visitors'];

/** The five numbers on the dashboard. */
async function counts(page) {
  return page.evaluate((ids) => {
    const result = {};
    for (const id of ids) result[id] = Number(document.querySelector(`#${id} .value`)?.textContent ?? NaN);
    return result;
  }, CARDS);
}

/** Waits until the dashboard shows `expected` (a subset of the cards); returns all of them. */
async function waitCounts(page, expected, timeout = 15_000) {
  let last;
  try {
    await waitUntil(
      async () => {
        last = await counts(page);
        return Object.entries(expected).every(([id, value]) => last[id] === value);
      },
      { timeout, message: 'dashboard counts' }
    );
  } catch (error) {
    throw new Error(`dashboard shows ${JSON.stringify(last)}, expected ${JSON.stringify(expected)} (${error.message})`);
  }
  return last;
}


describe('dashboard', () => {
  let server;
  let browser;
  const contexts = [];

  before(async () => {
    ({ server, browser } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  test('counts tabs, users and anonymous visitors live', { timeout: 60_000 }, async () => {
    const api = await apiClient(server, ADMIN);
    const [article] = await api.records('article');
    const admin = await signIn(browser, server, ADMIN);
    contexts.push(admin.context);
    const dashboard = admin.page;
    await gotoLive(dashboard, server, '/admin');
    await dashboard.evaluate(() => (window.__sameDocument = true));
    // Nothing else is open: the admin's own dashboard is the one session (sign-in pages are not live).
    const base = await waitCounts(dashboard, {
      'total-sessions': 1,
      'authenticated-sessions': 1,
      'anonymous-sessions': 0,
      'unique-users': 1,
      'unique-visitors': 0,
    });
    await waitText(dashboard.locator('#active-sessions'), ADMIN.email);

    // Another user and an anonymous visitor of a public page.
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const visitor = await newContext(browser);
    contexts.push(visitor);
    const publicPage = await visitor.newPage();
    await gotoLive(publicPage, server, `/e/article/${article.slug}`);
    await waitCounts(dashboard, {
      'total-sessions': base['total-sessions'] + 2,
      'authenticated-sessions': 2,
      'anonymous-sessions': 1,
      'unique-users': 2,
      'unique-visitors': 1,
    });
    await waitText(dashboard.locator('#active-sessions'), ALICE.email);
    await waitText(dashboard.locator('#active-sessions'), 'Anonymous visitor');
    await waitText(dashboard.locator('#top-pages'), `/e/article/${article.slug}`);

    // Alice's second tab is a second session of the same user.
    const aliceSecond = await alice.context.newPage();
    await gotoLive(aliceSecond, server, '/admin/entities');
    await waitCounts(dashboard, { 'total-sessions': base['total-sessions'] + 3, 'authenticated-sessions': 3, 'unique-users': 2 });
    await waitText(dashboard.locator('#top-pages'), '/admin/entities');

    // The same visitor in a second tab is one unique visitor with two sessions.
    const publicSecond = await visitor.newPage();
    await gotoLive(publicSecond, server, `/e/article/${article.slug}`);
    await waitCounts(dashboard, { 'anonymous-sessions': 2, 'unique-visitors': 1 });

    // They all leave (closing, without saying so): after the leave grace the numbers go back down.
    await visitor.close();
    await alice.context.close();
    await waitCounts(
      dashboard,
      { 'total-sessions': 1, 'authenticated-sessions': 1, 'anonymous-sessions': 0, 'unique-users': 1, 'unique-visitors': 0 },
      10_000
    );
    assert.equal(await dashboard.evaluate(() => window.__sameDocument), true, 'the dashboard was patched, not reloaded');
  });
});
