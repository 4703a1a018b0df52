// Live lists and the live record view follow writes made elsewhere (the JSON API) without a reload.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADMIN,
  ALICE,
  apiClient,
  CAROL,
  cleanup,
  editPath,
  freshArticle,
  gotoLive,
  HOOK,
  openFixture,
  signIn,
  waitFlash,
  waitJoined,
  waitRole,
  waitText,
  waitUntil,
} from './support.mjs';

const TEST = { timeout: 60_000 };

/** Marks the document, so a later check can tell that the page was patched, not reloaded. */
const markDocument = (page) => page.evaluate(() => (window.__sameDocument = true));
const sameDocument = (page) => page.evaluate(() => window.__sameDocument === true);


describe('live pages follow writes from elsewhere', () => {
  let server;
  let browser;
  let api;
  let contexts = [];

  before(async () => {
    ({ server, browser, api } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  async function carolOn(path) {
    const { context, page } = await signIn(browser, server, CAROL);
    contexts.push(context);
    await gotoLive(page, server, path);
    await markDocument(page);
    return page;
  }

  async function closeContexts() {
    const open = contexts;
    contexts = [];
    await cleanup(...open);
  }

  test('the record list shows a record created, updated and deleted through the API', TEST, async (t) => {
    t.after(closeContexts);
    const list = await carolOn('/admin/entities/article/data');
    const before = await list.locator('[id^="record-"]').count();
    assert.ok(before >= 3, `the demo records are listed (${before})`);

    const created = await freshArticle(api, 'Created through the API');
    const row = list.locator(`#record-${created.id}`);
    await waitText(row, 'Created through the API');
    assert.equal(await list.locator('[id^="record-"]').count(), before + 1);

    await api.updateRecord('article', created.id, { title: 'Renamed through the API' });
    await waitText(row, 'Renamed through the API');

    await api.del(`/api/entities/article/records/${created.id}`);
    await waitUntil(async () => (await row.count()) === 0, { message: 'the deleted row to go' });
    assert.equal(await list.locator('[id^="record-"]').count(), before);
    assert.equal(await sameDocument(list), true, 'the list was patched, not reloaded');
  });

  test('the entity list shows an entity created through the API', TEST, async (t) => {
    t.after(closeContexts);
    const list = await carolOn('/admin/entities');
    const entity = await api.post('/api/entities', {
      name: 'live_note',
      display_name: 'Live note',
      display_name_plural: 'Live notes',
      status: 'published',
      fields_definition: [{ type: 'text', key: 'note', label: 'Note' }],
    });
    await waitText(list.locator(`#entity-${entity.id}`), 'Live note');
    assert.equal(await sameDocument(list), true, 'the list was patched, not reloaded');
  });

  test('the record view shows an update and says it came from another session', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Watched record');
    const view = await carolOn(`/admin/entities/article/data/${record.id}`);
    assert.equal(await view.locator('#updated-notice').count(), 0);
    await api.updateRecord('article', record.id, {
      title: 'Watched record, updated',
      data: { ...record.data, summary: 'A new summary' },
    });
    await waitText(view.locator('#record-view h1'), 'Watched record, updated');
    await waitText(view.locator('#updated-notice'), 'Updated in another session');
    assert.equal(await view.locator('dd[data-field="summary"]').textContent(), 'A new summary');
    await waitUntil(async () => (await view.title()) === 'Watched record, updated', { message: 'the document title' });
    assert.equal(await sameDocument(view), true, 'the view was patched, not reloaded');
  });

  test('the record view says who is editing it now and who saved it last, live', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Who edits this');
    const view = await carolOn(`/admin/entities/article/data/${record.id}`);
    await waitText(view.locator('#last-saved'), 'by admin'); // the bootstrap admin's name
    assert.equal((await view.locator('#editing-now').textContent()).trim(), '', 'nobody is editing');

    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(alice.page, 'owner');
    await waitText(view.locator('#editing-now'), 'Alice is editing this record now.');

    await alice.page.getByLabel('Summary').fill('Saved by Alice');
    await alice.page.getByRole('button', { name: 'Save' }).click();
    await waitText(view.locator('#last-saved'), 'by Alice');
    assert.equal(await view.locator('dd[data-field="summary"]').textContent(), 'Saved by Alice');
    const stored = await api.get(`/api/entities/article/records/${record.id}`);
    assert.equal(typeof stored.updated_by, 'number', 'the API says who saved it');
    assert.notEqual(stored.updated_by, stored.created_by, 'Alice, not the creator');

    await alice.page.close();
    await waitUntil(async () => (await view.locator('#editing-now').textContent()).trim() === '', {
      message: 'the editing line to clear once Alice left',
    });
    assert.equal(await sameDocument(view), true, 'the view was patched, not reloaded');
  });

  test('a record deleted through the API sends its viewer to the list with a flash', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Doomed record');
    const view = await carolOn(`/admin/entities/article/data/${record.id}`);
    await api.del(`/api/entities/article/records/${record.id}`);
    await view.waitForURL((url) => url.pathname === '/admin/entities/article/data', { timeout: 15_000 });
    await waitFlash(view, 'error', 'was deleted in another session');
    assert.match(await view.locator('#lb-flash .flash-error').textContent(), /“Doomed record” was deleted in another session/);
    assert.equal(await view.locator(`#record-${record.id}`).count(), 0, 'the list no longer has it');
  });

  test('a record archived through the API sends its viewer to the list with a flash', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Shelved record');
    const view = await carolOn(`/admin/entities/article/data/${record.id}`);
    await api.updateRecord('article', record.id, { status: 'archived' });
    await view.waitForURL((url) => url.pathname === '/admin/entities/article/data', { timeout: 15_000 });
    await waitFlash(view, 'error', 'was archived in another session');
    assert.match(await view.locator('#lb-flash .flash-error').textContent(), /“Shelved record” was archived/);
  });

  test('a record created in the "New" form shows in another user\'s open list', TEST, async (t) => {
    t.after(closeContexts);
    const list = await carolOn('/admin/entities/article/data');
    const { context, page } = await signIn(browser, server, ALICE);
    contexts.push(context);
    await gotoLive(page, server, '/admin/entities/article/data/new');
    await page.getByRole('button', { name: 'Save' }).click();
    const titleWrap = page.locator('.input', { has: page.locator('#record-title') });
    await waitText(titleWrap.locator('.field-error'), "can't be blank");

    await page.getByLabel('Title').fill('Made in the form');
    await page.getByLabel('Summary').fill('Typed into the new-record form');
    await page.getByLabel('Category').selectOption('guide');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL((url) => /^\/admin\/entities\/article\/data\/\d+$/.test(url.pathname), { timeout: 15_000 });
    await waitJoined(page);
    await waitFlash(page, 'info', '“Made in the form” created');
    const id = Number(new URL(page.url()).pathname.split('/').pop());
    const stored = await api.record('article', id);
    assert.equal(stored.data.summary, 'Typed into the new-record form');
    assert.equal(stored.data.category, 'guide');
    assert.equal(stored.status, 'draft', 'a new record starts as a draft: publishing is a choice');
    await waitText(list.locator(`#record-${id}`), 'Made in the form');
    assert.equal(await sameDocument(list), true, 'the list was patched, not reloaded');
  });
});
