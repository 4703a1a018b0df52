// Hand-over details that need a long leave grace to be told apart: following a link leaves the queue at once (the
// grace is for pages that vanish without a word), and a viewer watches but never holds the baton.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADMIN,
  ALICE,
  apiClient,
  BOB,
  cleanup,
  editPath,
  freshArticle,
  gotoLive,
  HOOK,
  openFixture,
  signIn,
  VERA,
  waitRole,
  waitText,
  waitValue,
} from './support.mjs';

const GRACE_MS = 8000;
const TEST = { timeout: 60_000 };


describe('hand-over with a long leave grace', () => {
  let server;
  let browser;
  let api;
  let contexts = [];

  before(async () => {
    ({ server, browser, api } = await openFixture({ leaveGraceMs: GRACE_MS }));
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  async function openForm(user, record) {
    const { context, page } = await signIn(browser, server, user);
    contexts.push(context);
    return gotoLive(page, server, editPath('article', record.id));
  }

  async function closeContexts() {
    const open = contexts;
    contexts = [];
    await cleanup(...open);
  }

  test('following a link leaves at once: the next in line is promoted without waiting for the grace', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Leaving by a link');
    const alice = await openForm(ALICE, record);
    await waitRole(alice, 'owner');
    const bob = await openForm(BOB, record);
    await waitRole(bob, 'spectator');
    await alice.getByLabel('Summary').fill('Unsaved when Alice left');
    await waitValue(bob.getByLabel('Summary'), 'Unsaved when Alice left');

    // She has unsaved changes: the page asks first, and she goes.
    alice.context().acceptDialogs = true;
    const left = Date.now();
    await alice.getByRole('link', { name: 'Back' }).click();
    await alice.waitForURL((url) => url.pathname === `/admin/entities/article/data/${record.id}`);
    assert.equal(alice.context().dialogs.length, 1, 'asked before leaving unsaved changes');
    await waitRole(bob, 'owner', { timeout: GRACE_MS - 2000 });
    const took = Date.now() - left;
    assert.ok(took < GRACE_MS / 2, `promoted ${took} ms after Alice followed the link (grace ${GRACE_MS} ms)`);
    await waitText(bob.locator('#editing-notice'), "The form holds Alice's unsaved changes");
    assert.equal(await bob.getByLabel('Summary').inputValue(), 'Unsaved when Alice left');
    assert.equal(await bob.getByLabel('Summary').isDisabled(), false);
  });

  test('a viewer watches but never holds the baton', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Watched by a viewer');
    const vera = await openForm(VERA, record);
    assert.match(await waitRole(vera, 'spectator'), /Read-only — nobody is editing/);
    assert.equal(await vera.getByLabel('Title').isDisabled(), true);
    assert.equal(await vera.getByRole('button', { name: 'Edit here' }).count(), 0);

    const alice = await openForm(ALICE, record);
    assert.match(await waitRole(alice, 'owner'), /You are editing/);
    assert.match(await waitRole(vera, 'spectator'), /Read-only — Alice is editing/);
    await alice.getByLabel('Title').fill('Alice holds it');
    await waitValue(vera.getByLabel('Title'), 'Alice holds it');
    // A forced submit from the viewer is refused.
    await vera.evaluate(() => document.getElementById('record-form').requestSubmit());
    await waitText(vera.locator('#lb-flash .flash-error'), 'Read-only');
    assert.equal((await api.record('article', record.id)).title, 'Watched by a viewer');
  });
});
