// Deletes have a way back: Alice deletes a record that Bob has open in its form. The page asks first and names Bob;
// the record goes to the trash, where Ada (an admin) sees it arrive live; Alice restores it and it is back with the
// same id, slug and text. Only an admin is offered "Delete forever". Bob, typing in a record Alice deletes, keeps his
// text, restores the record from his form and saves.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ADA,
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
  waitRole,
  waitText,
  waitUntil,
} from './support.mjs';

describe('trash', () => {
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

  test('a deleted record is restored with its id, and the delete named who was editing', { timeout: 90_000 }, async () => {
    const record = await freshArticle(api, 'Venue notes for the trash');
    const alice = await signIn(browser, server, ALICE);
    const bob = await signIn(browser, server, BOB);
    const ada = await signIn(browser, server, ADA);
    contexts.push(alice.context, bob.context, ada.context);

    await gotoLive(bob.page, server, editPath('article', record.id));
    await waitRole(bob.page, 'owner');
    await gotoLive(ada.page, server, '/admin/entities/article/trash');
    await waitText(ada.page.locator('#trash-list'), 'The trash is empty.');

    await gotoLive(alice.page, server, `/admin/entities/article/data/${record.id}`);
    await alice.page.getByRole('button', { name: 'Delete' }).click();
    const ask = alice.page.locator('#delete-confirm');
    await waitText(ask, 'to the trash?');
    await waitText(ask, 'Bob is editing this record now.');
    assert.equal((await api.record('article', record.id)).id, record.id, 'asking deletes nothing');
    await alice.page.getByRole('button', { name: 'Move to trash' }).click();
    await alice.page.waitForURL((url) => url.pathname === '/admin/entities/article/data');
    await waitFlash(alice.page, 'info', 'moved to the trash');

    // Live on the admin's trash page, with who deleted it; an admin may delete forever, an editor may not.
    const row = ada.page.locator(`#trashed-${record.id}`);
    await waitText(row, 'Venue notes for the trash');
    await waitText(row, 'by Alice');
    assert.equal(await row.getByRole('button', { name: 'Delete forever' }).count(), 1);
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await ada.page.screenshot({ path: join(SCREENSHOT_DIR, 'trash.png'), fullPage: true });

    await alice.page.getByRole('link', { name: 'Trash' }).click();
    const aliceRow = alice.page.locator(`#trashed-${record.id}`);
    await waitText(aliceRow, 'Venue notes for the trash');
    assert.equal(await aliceRow.getByRole('button', { name: 'Delete forever' }).count(), 0, 'editors cannot purge');
    await aliceRow.getByRole('button', { name: 'Restore' }).click();
    await alice.page.waitForURL((url) => url.pathname === `/admin/entities/article/data/${record.id}`);
    await waitFlash(alice.page, 'info', 'restored');
    await waitText(alice.page.locator('main'), 'Summary of Venue notes for the trash');
    await waitText(ada.page.locator('#trash-list'), 'The trash is empty.');

    const restored = await api.record('article', record.id);
    assert.deepEqual(
      [restored.id, restored.slug, restored.lock_version, restored.data.summary],
      [record.id, record.slug, record.lock_version, record.data.summary],
      'back as it was'
    );
    for (const { context } of [alice, bob, ada]) assert.deepEqual(context.problems, [], 'no page errors');
  });

  test('the editor of a deleted record keeps their text, restores it and saves', { timeout: 90_000 }, async () => {
    const record = await freshArticle(api, 'Deleted while Bob types');
    const alice = await signIn(browser, server, ALICE);
    const bob = await signIn(browser, server, BOB);
    contexts.push(alice.context, bob.context);

    const form = await gotoLive(bob.page, server, editPath('article', record.id));
    await waitRole(form, 'owner');
    await form.getByLabel('Summary').fill('Bob was typing this');
    await waitUntil(async () => (await form.locator('#record-form[data-lb-unsaved]').count()) === 1, {
      message: 'the server holds the draft',
    });

    await gotoLive(alice.page, server, `/admin/entities/article/data/${record.id}`);
    await alice.page.getByRole('button', { name: 'Delete' }).click();
    await waitText(alice.page.locator('#delete-confirm'), 'Bob is editing this record now.');
    await alice.page.getByRole('button', { name: 'Move to trash' }).click();
    await alice.page.waitForURL((url) => url.pathname === '/admin/entities/article/data');

    // Bob stays on the form with his text, told what happened and offered the way back; a save is refused, not lost.
    const gone = form.locator('#row-gone');
    await waitText(gone, 'This record was moved to the trash. Your changes are still here');
    assert.equal(new URL(form.url()).pathname, editPath('article', record.id), 'not sent away');
    assert.equal(await form.getByLabel('Summary').inputValue(), 'Bob was typing this');
    await form.getByRole('button', { name: 'Save' }).click();
    await waitFlash(form, 'error', 'restore it to keep editing');
    assert.equal(await form.getByLabel('Summary').inputValue(), 'Bob was typing this', 'the refused save kept it');
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await form.screenshot({ path: join(SCREENSHOT_DIR, 'deleted-while-editing.png'), fullPage: true });

    await gone.getByRole('button', { name: 'Restore and keep editing' }).click();
    await waitFlash(form, 'info', 'Restored this record. Your changes are still here.');
    assert.equal(await form.locator('#row-gone').count(), 0, 'the panel is gone');
    await form.getByLabel('Summary').fill('Bob was typing this, and finished');
    await form.getByRole('button', { name: 'Save' }).click();
    await waitFlash(form, 'info', 'Saved.');
    const saved = await api.record('article', record.id);
    assert.deepEqual(
      [saved.id, saved.slug, saved.data.summary, saved.lock_version],
      [record.id, record.slug, 'Bob was typing this, and finished', record.lock_version + 1],
      'same record, Bob\'s text saved over the version it was deleted at'
    );
    for (const { context } of [alice, bob]) assert.deepEqual(context.problems, [], 'no page errors');
  });
});
