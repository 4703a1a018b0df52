// Drafts outlive their session: Alice, alone in a record's form, types and leaves by an in-app link. The page asks
// first (she stays once, then goes); the server restarts; when she opens the form again she is offered her unsaved
// changes, with their time, and restores them: Bob, watching, sees them and is never offered them; her save commits
// them. A spectator leaving by a link is never asked. Signed out in another tab, the form says so at once (not
// "Reconnecting…") and links to sign in again, which comes back to the form with the changes offered; signing out on
// another device leaves this one live.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ALICE,
  BOB,
  cleanup,
  editPath,
  freshArticle,
  gotoLive,
  HOOK,
  openFixture,
  SCREENSHOT_DIR,
  signIn,
  waitFlash,
  waitJoined,
  waitRole,
  waitText,
  waitUntil,
  waitValue,
} from './support.mjs';

describe('drafts outlive their session', () => {
  let server;
  let browser;
  let api;
  const contexts = [];

  before(async () => {
    ({ server, browser, api } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  test('a draft left by a link survives a restart and its author restores it', { timeout: 90_000 }, async () => {
    const record = await freshArticle(api, 'Kept across a restart');
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const form = await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(form, 'owner');
    const dialogs = alice.context.dialogs;
    // No changes yet: the link just goes (and comes back).
    await form.getByRole('link', { name: 'Back' }).click();
    await form.waitForURL((url) => url.pathname === `/admin/entities/article/data/${record.id}`);
    assert.deepEqual(dialogs, [], 'nothing to ask about');
    await gotoLive(form, server, editPath('article', record.id));
    await waitRole(form, 'owner');
    assert.equal(await form.locator('#kept-draft').count(), 0, 'nothing kept');

    await form.getByLabel('Summary').fill('Typed, then left by a link');
    await waitUntil(async () => (await form.locator('#record-form[data-lb-unsaved]').count()) === 1, {
      message: 'the server holds the draft',
    });
    await form.getByRole('link', { name: 'Back' }).click();
    await waitUntil(async () => dialogs.length === 1, { message: 'the leave question' });
    assert.match(dialogs[0], /^confirm: You have unsaved changes\. Leave this page\?/);
    await form.waitForTimeout(300);
    assert.equal(new URL(form.url()).pathname, editPath('article', record.id), 'stayed after "Cancel"');
    assert.equal(await form.getByLabel('Summary').inputValue(), 'Typed, then left by a link');
    alice.context.acceptDialogs = true;
    await form.getByRole('link', { name: 'Back' }).click();
    await form.waitForURL((url) => url.pathname === `/admin/entities/article/data/${record.id}`);
    assert.equal(dialogs.length, 2);
    const unchanged = await api.record('article', record.id);
    assert.notEqual(unchanged.data.summary, 'Typed, then left by a link', 'leaving saves nothing');

    const stopped = await server.stop();
    assert.equal(stopped.code, 0, `a clean exit: ${JSON.stringify(stopped)}`);
    await server.start();

    // Bob opens the form first: he owns it and is not offered Alice's changes.
    const bob = await signIn(browser, server, BOB);
    contexts.push(bob.context);
    const watcher = await gotoLive(bob.page, server, editPath('article', record.id));
    await waitRole(watcher, 'owner');
    assert.equal(await watcher.locator('#kept-draft').count(), 0, 'not offered to Bob');

    // Alice comes back (a fresh load: the restart ended her old page). She is offered her changes, but cannot restore
    // them while Bob edits.
    await gotoLive(form, server, editPath('article', record.id));
    await waitRole(form, 'spectator');
    const offer = form.locator('#kept-draft');
    await waitText(offer, 'You have unsaved changes from');
    await waitText(offer, 'You can restore them once you are editing.');
    assert.equal(await offer.getByRole('button', { name: 'Restore' }).count(), 0);
    assert.notEqual(await form.getByLabel('Summary').inputValue(), 'Typed, then left by a link');

    // Bob leaves (a spectator is never asked; he has no changes), Alice is promoted and restores.
    await watcher.getByRole('link', { name: 'Back' }).click();
    await watcher.waitForURL((url) => url.pathname === `/admin/entities/article/data/${record.id}`);
    assert.deepEqual(bob.context.dialogs, [], 'Bob was never asked');
    await waitRole(form, 'owner');
    await waitText(offer, 'Restore them or discard them to edit.');
    assert.equal(await form.getByLabel('Summary').isDisabled(), true, 'read-only until she chooses');
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await form.screenshot({ path: join(SCREENSHOT_DIR, 'kept-draft.png'), fullPage: true });
    await gotoLive(watcher, server, editPath('article', record.id));
    await waitRole(watcher, 'spectator');
    await offer.getByRole('button', { name: 'Restore' }).click();
    await waitFlash(form, 'info', 'Your unsaved changes are back.');
    await waitValue(form.getByLabel('Summary'), 'Typed, then left by a link');
    assert.equal(await form.locator('#kept-draft').count(), 0, 'the offer is gone');
    assert.equal(await form.getByLabel('Summary').isDisabled(), false, 'editable again');
    await waitValue(watcher.getByLabel('Summary'), 'Typed, then left by a link');
    assert.equal(await watcher.locator('#kept-draft').count(), 0, 'still not offered to Bob');

    await form.getByRole('button', { name: 'Save' }).click();
    await waitFlash(form, 'info', 'Saved.');
    const stored = await api.record('article', record.id);
    assert.equal(stored.data.summary, 'Typed, then left by a link');
    assert.equal(stored.lock_version, record.lock_version + 1);

    // Saved: nothing is offered any more.
    await gotoLive(form, server, editPath('article', record.id));
    await waitJoined(form);
    assert.equal(await form.locator('#kept-draft').count(), 0, 'nothing kept after the save');
  });

  test('kept changes can be discarded', { timeout: 60_000 }, async () => {
    const record = await freshArticle(api, 'Discarded later');
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const form = await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(form, 'owner');
    alice.context.acceptDialogs = true;
    await form.getByLabel('Summary').fill('Not wanted after all');
    await waitUntil(async () => (await form.locator('#record-form[data-lb-unsaved]').count()) === 1, {
      message: 'the server holds the draft',
    });
    await form.getByRole('link', { name: 'Back' }).click();
    await form.waitForURL((url) => url.pathname === `/admin/entities/article/data/${record.id}`);

    await gotoLive(form, server, editPath('article', record.id));
    const offer = form.locator('#kept-draft');
    await waitText(offer, 'You have unsaved changes from');
    await offer.getByRole('button', { name: 'Discard' }).click();
    await waitFlash(form, 'info', 'Discarded your earlier unsaved changes.');
    assert.equal(await form.locator('#kept-draft').count(), 0);
    await gotoLive(form, server, editPath('article', record.id));
    await waitRole(form, 'owner');
    assert.equal(await form.locator('#kept-draft').count(), 0, 'gone for good');
    assert.notEqual(await form.getByLabel('Summary').inputValue(), 'Not wanted after all');
    assert.equal(await form.getByLabel('Summary').isDisabled(), false, 'editable');
  });

  test('signed out in another tab: the form says so, and after signing in the changes come back', { timeout: 60_000 }, async () => {
    const record = await freshArticle(api, 'Signed out while editing');
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const form = await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(form, 'owner');
    await form.getByLabel('Summary').fill('Typed before signing out elsewhere');
    await waitUntil(async () => (await form.locator('#record-form[data-lb-unsaved]').count()) === 1, {
      message: 'the server holds the draft',
    });

    const other = await alice.context.newPage();
    await other.goto(`${server.url}/admin/logout`);
    await Promise.all([
      other.waitForURL((url) => url.pathname === '/admin/login'),
      other.getByRole('button', { name: 'Sign out' }).click(),
    ]);

    const status = form.locator('#lb-status');
    await waitText(status, 'You were signed out \u2014 sign in again to save. Your unsaved changes are kept.', {
      timeout: 5000,
    });
    assert.equal(await form.evaluate(() => document.body.dataset.lbState), 'signed-out');
    await form.waitForTimeout(1500);
    assert.doesNotMatch(await status.textContent(), /Reconnecting/, 'it does not pretend to reconnect');
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await form.screenshot({ path: join(SCREENSHOT_DIR, 'signed-out.png') });

    await status.getByRole('link', { name: 'Sign in' }).click();
    await form.waitForURL((url) => url.pathname === '/admin/login');
    await form.getByLabel('Email').fill(ALICE.email);
    await form.getByLabel('Password').fill(ALICE.password);
    await Promise.all([
      form.waitForURL((url) => url.pathname === editPath('article', record.id)),
      form.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    await waitJoined(form);
    await waitRole(form, 'owner');
    const offer = form.locator('#kept-draft');
    await waitText(offer, 'You have unsaved changes from');
    await offer.getByRole('button', { name: 'Restore' }).click();
    await waitValue(form.getByLabel('Summary'), 'Typed before signing out elsewhere');
    await form.getByRole('button', { name: 'Save' }).click();
    await waitFlash(form, 'info', 'Saved.');
    assert.equal((await api.record('article', record.id)).data.summary, 'Typed before signing out elsewhere');
  });

  test('signing out on another device leaves this one signed in and live', { timeout: 60_000 }, async () => {
    const record = await freshArticle(api, 'Two devices');
    const laptop = await signIn(browser, server, ALICE);
    const phone = await signIn(browser, server, ALICE);
    contexts.push(laptop.context, phone.context);
    const form = await gotoLive(laptop.page, server, editPath('article', record.id));
    await waitRole(form, 'owner');

    await phone.page.goto(`${server.url}/admin/logout`);
    await Promise.all([
      phone.page.waitForURL((url) => url.pathname === '/admin/login'),
      phone.page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    // The server closes all of Alice's sockets; the laptop's sign-in is still good, so its page comes back at once.
    await waitUntil(async () => (await form.evaluate(() => document.body.dataset.lbState)) === 'joined', {
      message: 'the laptop page rejoined',
    });
    await waitRole(form, 'owner');
    assert.doesNotMatch((await form.locator('#lb-status').textContent()) || '', /signed out/);
    await form.getByLabel('Summary').fill('Saved from the laptop');
    await form.getByRole('button', { name: 'Save' }).click();
    await waitFlash(form, 'info', 'Saved.');
    assert.equal((await api.record('article', record.id)).data.summary, 'Saved from the laptop');
  });

  test('a sign-in that ended while the socket was down is noticed, not retried forever', { timeout: 60_000 }, async () => {
    const record = await freshArticle(api, 'Expired while away');
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const form = await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(form, 'owner');
    // The cookie goes (as an expired session's does) while the server restarts: the reconnect is refused with 403,
    // which a WebSocket cannot tell apart from a server that is down.
    await alice.context.clearCookies();
    await server.stop();
    await server.start();
    await waitText(form.locator('#lb-status'), 'You were signed out', { timeout: 20_000 });
    assert.equal(await form.evaluate(() => document.body.dataset.lbState), 'signed-out');
  });
});
