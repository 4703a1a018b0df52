// A live page survives a server restart: it says it is reconnecting, comes back by itself, and is live again; what
// an editor typed before the restart comes back through form recovery (and is not offered a second time from the
// drafts the shutdown kept).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADMIN,
  ALICE,
  apiClient,
  BOB,
  CAROL,
  cleanup,
  editPath,
  freshArticle,
  gotoLive,
  HOOK,
  liveState,
  openFixture,
  signIn,
  waitJoined,
  waitRole,
  waitText,
  waitUntil,
  waitFlash,
  waitValue,
} from './support.mjs';


describe('reconnect', () => {
  let server;
  let browser;
  const contexts = [];

  before(async () => {
    ({ server, browser } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  test('the record list reconnects after a server restart and is live again', { timeout: 60_000 }, async () => {
    const carol = await signIn(browser, server, CAROL);
    contexts.push(carol.context);
    const list = await gotoLive(carol.page, server, '/admin/entities/article/data');
    await list.evaluate(() => (window.__sameDocument = true));
    assert.equal(await list.locator('#lb-status').isVisible(), false, 'no status while connected');

    const stopped = await server.stop();
    assert.ok(stopped.ms < 5000, `the server exits within 5 s of SIGTERM (took ${stopped.ms} ms)`);
    await waitUntil(async () => (await liveState(list)) === 'reconnecting', { message: 'data-lb-state=reconnecting' });
    await waitText(list.locator('#lb-status'), 'Reconnecting…');
    assert.equal(await list.locator('#lb-status').isVisible(), true, 'the status line is shown');
    // It keeps trying (and keeps saying so) while the server is down.
    await list.waitForTimeout(1500);
    assert.equal(await liveState(list), 'reconnecting');

    await server.start();
    await waitJoined(list, 20_000); // the backoff tops out at 5 s
    await waitUntil(async () => !(await list.locator('#lb-status').isVisible()), { message: 'the status line to go' });
    assert.equal(await list.evaluate(() => window.__sameDocument), true, 'it came back without a reload');

    const api = await apiClient(server, ADMIN);
    const created = await freshArticle(api, 'Created after the restart');
    await waitText(list.locator(`#record-${created.id}`), 'Created after the restart');
    assert.equal(await liveState(list), 'joined');
  });

  test('what the owner types while the server is down reaches the restarted server', { timeout: 60_000 }, async () => {
    const api = await apiClient(server, ADMIN);
    const record = await freshArticle(api, 'Typed offline');
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const form = await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(form, 'owner');

    await server.stop();
    await waitUntil(async () => (await liveState(form)) === 'reconnecting', { message: 'data-lb-state=reconnecting' });
    await form.getByLabel('Summary').fill('Typed while the server was down');
    await form.getByLabel('Title').click(); // commit it (blur): it cannot be sent yet
    await server.start();
    await waitJoined(form, 20_000);
    assert.match(await waitRole(form, 'owner'), /You are editing/);
    assert.equal(await form.getByLabel('Summary').inputValue(), 'Typed while the server was down');

    // The edit was sent on rejoin: it is the session's draft, which a late joiner sees.
    const bob = await signIn(browser, server, BOB);
    contexts.push(bob.context);
    const watcher = await gotoLive(bob.page, server, editPath('article', record.id));
    await waitRole(watcher, 'spectator');
    await waitValue(watcher.getByLabel('Summary'), 'Typed while the server was down');
  });

  test('a draft the restart lost comes back from the owner\'s page, and saves', { timeout: 60_000 }, async () => {
    const api = await apiClient(server, ADMIN);
    const record = await freshArticle(api, 'Recovered after a restart');
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const form = await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(form, 'owner');
    await form.getByLabel('Summary').fill('Typed before the restart');
    await form.getByLabel('Title').click();
    // The server has it: a spectator sees it. Then the spectator goes, so Alice is the only one to rejoin.
    const bob = await signIn(browser, server, BOB);
    const watcher = await gotoLive(bob.page, server, editPath('article', record.id));
    await waitValue(watcher.getByLabel('Summary'), 'Typed before the restart');
    await bob.context.close();

    await server.stop();
    await waitUntil(async () => (await liveState(form)) === 'reconnecting', { message: 'data-lb-state=reconnecting' });
    await server.start();
    await waitJoined(form, 20_000);
    await waitRole(form, 'owner');
    await waitFlash(form, 'info', 'Your unsaved changes are back.');
    assert.equal(await form.getByLabel('Summary').inputValue(), 'Typed before the restart');
    assert.equal(await form.getByLabel('Title').inputValue(), 'Recovered after a restart');
    // The shutdown kept the draft too; the page brought the same changes back, so they are not offered again.
    await form.waitForTimeout(300);
    assert.equal(await form.locator('#kept-draft').count(), 0, 'not offered: the form already shows them');

    await form.getByRole('button', { name: 'Save' }).click();
    await waitFlash(form, 'info', 'Saved.');
    const stored = await (await apiClient(server, ADMIN)).record('article', record.id);
    assert.equal(stored.data.summary, 'Typed before the restart');
    assert.equal(stored.lock_version, record.lock_version + 1);
  });
});
