// Editing that never loses work (issue 16, item 1): a save over a row that moved since the owner's draft began is
// merged per field. Alice edits in her browser while Bob watches in his; Carol changes the same row through the JSON
// API with her own account. Fields only one of them changed are taken from that side; only fields both changed are
// offered, each with "yours" and "theirs" side by side; nobody's untouched field is ever reverted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADA,
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
  openFixture,
  signIn,
  waitFlash,
  waitRole,
  waitText,
  waitUntil,
  waitValue,
} from './support.mjs';

const TEST = { timeout: 60_000 };

describe('per-field merge of saves', () => {
  let server;
  let browser;
  let api;
  let carol;
  let contexts = [];

  before(async () => {
    ({ server, browser, api } = await openFixture());
    carol = await apiClient(server, CAROL);
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  async function open(user, path) {
    const { context, page } = await signIn(browser, server, user);
    contexts.push(context);
    await gotoLive(page, server, path);
    return page;
  }

  async function closeContexts() {
    const open = contexts;
    contexts = [];
    await cleanup(...open);
  }

  /** Alice owns the form of a fresh article and Bob watches it. */
  async function aliceAndBob(title) {
    const record = await freshArticle(api, title);
    const alice = await open(ALICE, editPath('article', record.id));
    await waitRole(alice, 'owner');
    const bob = await open(BOB, editPath('article', record.id));
    await waitRole(bob, 'spectator');
    return { record, alice, bob };
  }

  /** The names of the fields the conflict panel offers. */
  const offered = (page) =>
    page.locator('#conflict tr[data-field]').evaluateAll((rows) => rows.map((row) => row.dataset.field));

  test('two people change different fields: both changes survive', TEST, async (t) => {
    t.after(closeContexts);
    const { record, alice, bob } = await aliceAndBob('Gig at the old hall');
    await alice.getByLabel('Title').fill('Gig at the old hall, sold out');
    await waitValue(bob.getByLabel('Title'), 'Gig at the old hall, sold out'); // the draft is on the server

    // Carol moves the gig: a new summary, saved while Alice's draft is open.
    await carol.updateRecord('article', record.id, { data: { ...record.data, summary: 'Now at the new hall' } });
    await waitText(alice.locator('#editing-bar'), 'Saved by Carol');
    await alice.getByRole('button', { name: 'Save' }).click();

    await waitFlash(alice, 'info', 'Saved. Kept the newer values saved meanwhile of: Summary.');
    assert.equal(await alice.locator('#conflict').count(), 0, 'no conflict: the two changes do not overlap');
    const stored = await api.record('article', record.id);
    assert.equal(stored.title, 'Gig at the old hall, sold out', "Alice's title");
    assert.equal(stored.data.summary, 'Now at the new hall', "Carol's summary was not reverted by Alice's save");
    assert.equal(stored.data.category, record.data.category);
    assert.equal(stored.lock_version, record.lock_version + 2);
    await waitValue(alice.getByLabel('Summary'), 'Now at the new hall');
    await waitValue(bob.getByLabel('Summary'), 'Now at the new hall');
    await waitValue(bob.getByLabel('Title'), 'Gig at the old hall, sold out');
  });

  test('both change the same field: only it is offered, side by side, and the choice saves', TEST, async (t) => {
    t.after(closeContexts);
    const { record, alice, bob } = await aliceAndBob('Venue to be announced');
    await alice.getByLabel('Title').fill('Venue announced');
    await alice.getByLabel('Summary').fill('At the old hall');
    await waitValue(bob.getByLabel('Summary'), 'At the old hall');

    // Carol changes the summary too, and the category, which Alice did not touch.
    await carol.updateRecord('article', record.id, {
      data: { ...record.data, summary: 'At the <b>new</b> hall', category: 'opinion' },
    });
    await waitText(alice.locator('#editing-bar'), 'Saved by Carol');
    await alice.getByRole('button', { name: 'Save' }).click();

    const conflict = alice.locator('#conflict');
    await waitText(conflict, 'You both changed these fields');
    assert.deepEqual(await offered(alice), ['data.summary'], 'only the summary both changed is offered');
    const summary = conflict.locator('tr[data-field="data.summary"]');
    assert.match(await summary.locator('th').textContent(), /Summary/);
    assert.match(await summary.locator('td.mine .value').textContent(), /At the old hall/);
    assert.equal(
      (await summary.locator('td.theirs .value').textContent()).trim(),
      'At the <b>new</b> hall',
      'their value is shown as text, escaped'
    );
    assert.equal(await conflict.locator('b').count(), 0, 'no markup from a value reached the page');
    assert.equal(await alice.getByLabel('Title').inputValue(), 'Venue announced', "Alice's draft stays in the form");
    assert.equal(await alice.getByLabel('Summary').inputValue(), 'At the old hall');
    const untouched = await api.record('article', record.id);
    assert.equal(untouched.title, record.title, 'nothing is written until she chooses');
    assert.equal(untouched.data.summary, 'At the <b>new</b> hall');

    await summary.getByLabel('Take theirs').check();
    await conflict.getByRole('button', { name: 'Save with these choices' }).click();
    await waitFlash(alice, 'info', 'Saved.');
    await waitUntil(async () => (await alice.locator('#conflict').count()) === 0, { message: 'the panel to go' });
    const stored = await api.record('article', record.id);
    assert.equal(stored.title, 'Venue announced', "Alice's title, which only she changed");
    assert.equal(stored.data.summary, 'At the <b>new</b> hall', "Carol's summary, as Alice chose");
    assert.equal(stored.data.category, 'opinion', "Carol's category, which only she changed");
    await waitValue(alice.getByLabel('Summary'), 'At the <b>new</b> hall');
    await waitValue(bob.getByLabel('Category'), 'opinion');
    await waitValue(bob.getByLabel('Title'), 'Venue announced');
  });

  test('a row that moves again while the choice is made is offered again, never overwritten', TEST, async (t) => {
    t.after(closeContexts);
    const { record, alice, bob } = await aliceAndBob('Moving target');
    await alice.getByLabel('Summary').fill('Alice’s summary');
    await waitValue(bob.getByLabel('Summary'), 'Alice’s summary');
    await carol.updateRecord('article', record.id, { data: { ...record.data, summary: 'Carol’s first summary' } });
    await waitText(alice.locator('#editing-bar'), 'Saved by Carol');
    await alice.getByRole('button', { name: 'Save' }).click();
    const conflict = alice.locator('#conflict');
    await waitText(conflict.locator('tr[data-field="data.summary"] td.theirs'), 'Carol’s first summary');

    // Carol saves again before Alice answers: Alice's "keep mine" was made against a summary she no longer sees.
    await carol.updateRecord('article', record.id, { data: { ...record.data, summary: 'Carol’s second summary' } });
    await conflict.locator('tr[data-field="data.summary"]').getByLabel('Keep yours').check();
    await conflict.getByRole('button', { name: 'Save with these choices' }).click();
    await waitText(conflict.locator('tr[data-field="data.summary"] td.theirs'), 'Carol’s second summary');
    assert.equal((await api.record('article', record.id)).data.summary, 'Carol’s second summary', 'not overwritten');
    assert.equal(await alice.getByLabel('Summary').inputValue(), 'Alice’s summary', 'her draft is kept');

    await conflict.locator('tr[data-field="data.summary"]').getByLabel('Keep yours').check();
    await conflict.getByRole('button', { name: 'Save with these choices' }).click();
    await waitFlash(alice, 'info', 'Saved.');
    assert.equal((await api.record('article', record.id)).data.summary, 'Alice’s summary', 'chosen with open eyes');
  });

  test('entity definitions merge per attribute; the field list is one field', TEST, async (t) => {
    t.after(closeContexts);
    const created = await api.post('/api/entities', {
      display_name: 'Merge note',
      display_name_plural: 'Merge notes',
      description: 'Notes for the merge test.',
      fields_definition: [{ type: 'text', key: 'mood', label: 'Mood' }],
    });
    const ada = await open(ADA, `/admin/entities/${created.id}/edit`);
    await waitRole(ada, 'owner');
    const admin = await open(ADMIN, `/admin/entities/${created.id}/edit`);
    await waitRole(admin, 'spectator');
    await ada.getByLabel('Description').fill('Ada’s description');
    await waitValue(admin.getByLabel('Description'), 'Ada’s description'); // the draft is on the server
    // The admin renames it through the API meanwhile.
    await api.put(`/api/entities/${created.name}`, {
      name: created.name,
      display_name: 'Merged note',
      display_name_plural: 'Merge notes',
      description: created.description,
      fields_definition: created.fields_definition,
      lock_version: created.lock_version,
    });
    await waitText(ada.locator('#editing-bar'), 'Saved by');
    await ada.getByRole('button', { name: 'Save' }).click();
    await waitFlash(ada, 'info', 'Saved. Kept the newer values saved meanwhile of: Display name.');
    const stored = await api.get(`/api/entities/${created.name}`);
    assert.equal(stored.display_name, 'Merged note', "the admin's display name survived");
    assert.equal(stored.description, 'Ada’s description', "and Ada's description");
    await waitValue(ada.getByLabel('Display name'), 'Merged note');
    await waitValue(admin.getByLabel('Description'), 'Ada’s description');
  });
});
