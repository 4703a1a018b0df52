// The collaborative record form with several people at once: who holds the baton, what spectators see and may do,
// hand-over when the owner leaves, reloads, "Edit here", inline errors and save conflicts.
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
  openFixture,
  signIn,
  VERA,
  waitFlash,
  waitRole,
  waitText,
  waitUntil,
  waitValue,
} from './support.mjs';

const TEST = { timeout: 60_000 };


describe('collaborative record form', () => {
  let server;
  let browser;
  let api;
  // Contexts opened by the running test; closed after it, whatever happened.
  let contexts = [];

  before(async () => {
    ({ server, browser, api } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  /** Signs `user` in (a fresh context) and opens the record form of `record`; returns the page. */
  async function openForm(user, record) {
    const { context, page } = await signIn(browser, server, user);
    contexts.push(context);
    await gotoLive(page, server, editPath('article', record.id));
    return page;
  }

  async function closeContexts() {
    const open = contexts;
    contexts = [];
    await cleanup(...open);
  }

  test('owner, spectators, live draft, late joiner, caret, refused spectator edits, hand-over and save', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Collab start');

    const alice = await openForm(ALICE, record);
    assert.match(await waitRole(alice, 'owner'), /You are editing/);
    assert.equal(await alice.getByLabel('Title').isDisabled(), false, "the owner's Title is editable");

    const bob = await openForm(BOB, record);
    assert.match(await waitRole(bob, 'spectator'), /Read-only — Alice is editing/);
    const carol = await openForm(CAROL, record);
    assert.match(await waitRole(carol, 'spectator'), /Read-only — Alice is editing/);
    for (const [name, page] of [['Bob', bob], ['Carol', carol]]) {
      for (const label of ['Title', 'Slug', 'Status', 'Summary', 'Category', 'Published on', 'Featured']) {
        assert.equal(await page.getByLabel(label, { exact: true }).isDisabled(), true, `${name}'s ${label} is disabled`);
      }
      // Body is a rich-text editor: its textarea is disabled with the rest, and the editor is read-only.
      assert.equal(await page.locator('#field-body').isDisabled(), true, `${name}'s Body is disabled`);
      const body = page.getByRole('textbox', { name: 'Body', exact: true });
      assert.equal(await body.getAttribute('aria-readonly'), 'true', `${name}'s Body editor is read-only`);
      assert.equal(await page.getByRole('button', { name: 'Save' }).isDisabled(), true, `${name}'s Save is disabled`);
    }
    await waitText(alice.locator('#editing-bar'), '2 waiting: Bob, Carol');
    await waitText(alice.locator('#editing-bar'), '2 other people');
    await waitText(bob.locator('#editing-bar'), '2 waiting: you, Carol');
    await waitText(carol.locator('#editing-bar'), '2 waiting: Bob, you');

    // The owner types: spectators see it after the debounce, without saving.
    await alice.getByLabel('Title').fill('Hello World');
    await waitValue(bob.getByLabel('Title'), 'Hello World');
    await waitValue(carol.getByLabel('Title'), 'Hello World');

    // A late joiner (Vera, a viewer) gets the unsaved draft as soon as the page is live.
    const vera = await openForm(VERA, record);
    assert.equal(await vera.getByLabel('Title').inputValue(), 'Hello World', 'the late joiner shows the draft at once');
    assert.match(await waitRole(vera, 'spectator'), /Read-only — Alice is editing/);
    assert.match(await vera.locator('#editing-bar').textContent(), /2 waiting: Bob, Carol/, 'a viewer never queues');
    await waitText(alice.locator('#editing-bar'), '3 other people');
    await vera.context().close();

    // Typing in the middle of the text: each pause lets a change go out and its reply (a diff of the form) come back,
    // and the caret must stay where Alice is typing.
    const title = alice.getByLabel('Title');
    await title.click();
    await title.evaluate((input) => input.setSelectionRange(5, 5));
    for (const char of ', dear') {
      await alice.keyboard.type(char);
      await alice.waitForTimeout(char === ' ' ? 450 : 60); // past the 300 ms debounce now and then
    }
    await alice.waitForTimeout(500);
    assert.equal(await title.inputValue(), 'Hello, dear World');
    assert.deepEqual(
      await title.evaluate((input) => [input.selectionStart, input.selectionEnd, document.activeElement === input]),
      [11, 11, true],
      'the caret stays after what was typed'
    );
    await waitValue(bob.getByLabel('Title'), 'Hello, dear World');

    // Bob cannot edit: his inputs are disabled, and if he gets around that the server refuses.
    const refusedAt = Date.now();
    await bob.evaluate(() => document.querySelector('#record-form fieldset').removeAttribute('disabled'));
    await bob.getByLabel('Title').fill('Bob was here');
    await waitFlash(bob, 'error', 'Read-only');
    await bob.evaluate(() => {
      document.getElementById('lb-flash').textContent = '';
      document.getElementById('record-form').requestSubmit();
    });
    await waitFlash(bob, 'error', 'Read-only');
    // Give a wrongly accepted change time to reach Alice before checking that it did not.
    await alice.waitForTimeout(Math.max(0, 1000 - (Date.now() - refusedAt)));
    assert.equal(await title.inputValue(), 'Hello, dear World', "Bob's change never reached the owner");
    assert.equal(await carol.getByLabel('Title').inputValue(), 'Hello, dear World', "nor Carol");
    assert.equal((await api.record('article', record.id)).title, 'Collab start', 'the record is unchanged');
    assert.match(await waitRole(bob, 'spectator'), /Read-only — Alice is editing/);
    // Undo the tampering (a real spectator could not have typed): disabled again, and nothing focused.
    await bob.evaluate(() => {
      document.querySelector('#record-form fieldset').setAttribute('disabled', '');
      document.activeElement?.blur();
    });

    // Alice closes her tab: Bob (first in line) is promoted after the leave grace, holding her unsaved text.
    await alice.close();
    const promoted = Date.now();
    await waitRole(bob, 'owner', { timeout: 8000 });
    const handover = Date.now() - promoted;
    assert.ok(handover < 5000, `hand-over took ${handover} ms`);
    const bar = await waitText(bob.locator('#editing-bar'), 'You are now editing');
    assert.match(bar, /Alice/, 'the notice says whose unsaved changes the form holds');
    assert.match(await bob.locator('#editing-notice').textContent(), /The form holds Alice's unsaved changes/);
    await waitText(bob.locator('#editing-bar'), '1 waiting: Carol');
    assert.equal(await bob.getByLabel('Title').isDisabled(), false, "Bob's Title is enabled now");
    assert.equal(await bob.getByLabel('Summary').isDisabled(), false, "Bob's Summary is enabled now");
    assert.equal(await bob.getByLabel('Title').inputValue(), 'Hello, dear World', "Alice's unsaved text is kept");
    assert.match(await waitRole(carol, 'spectator'), /Read-only — Bob is editing/);
    await waitText(carol.locator('#editing-bar'), '1 waiting: you');

    await bob.getByLabel('Title').fill('Hello, dear World, from Bob');
    await bob.getByRole('button', { name: 'Save' }).click();
    await waitFlash(bob, 'info', 'Saved');
    await waitUntil(async () => (await api.record('article', record.id)).title === 'Hello, dear World, from Bob', {
      message: 'the API to show the saved title',
    });
    await waitValue(carol.getByLabel('Title'), 'Hello, dear World, from Bob');
  });

  test('a reload keeps the owner her place and her draft', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Reload me');
    const alice = await openForm(ALICE, record);
    await waitRole(alice, 'owner');
    const bob = await openForm(BOB, record);
    await waitRole(bob, 'spectator');
    await alice.getByLabel('Title').fill('Typed before the reload');
    await waitValue(bob.getByLabel('Title'), 'Typed before the reload');

    // Remember whether Bob's page ever shows him as the owner while Alice is away.
    await bob.evaluate(() => {
      window.__becameOwner = false;
      const observer = new MutationObserver(() => {
        if (document.getElementById('editing-bar')?.getAttribute('data-role') === 'owner') window.__becameOwner = true;
      });
      observer.observe(document.getElementById('lb-root'), { subtree: true, attributes: true, childList: true });
    });

    await alice.reload();
    await waitUntil(() => alice.evaluate(() => document.body.dataset.lbState === 'joined'), { message: 'rejoin' });
    assert.match(await waitRole(alice, 'owner'), /You are editing/);
    assert.equal(await alice.getByLabel('Title').inputValue(), 'Typed before the reload', 'the draft survives');
    // Longer than the leave grace: a lost place would have promoted Bob by now.
    await bob.waitForTimeout(1500);
    assert.match(await waitRole(bob, 'spectator'), /Read-only — Alice is editing/);
    assert.equal(await bob.evaluate(() => window.__becameOwner), false, 'Bob was never made the owner');
    assert.equal(await waitRole(alice, 'owner').then(() => true), true);
  });

  test('"Edit here" moves the baton to the same user\'s other tab', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Two tabs');
    const first = await openForm(ALICE, record);
    await waitRole(first, 'owner');
    const second = await first.context().newPage();
    await gotoLive(second, server, editPath('article', record.id));
    assert.match(await waitRole(second, 'spectator'), /Read-only — Alice is editing/);
    const editHere = second.getByRole('button', { name: 'Edit here' });
    await editHere.waitFor({ state: 'visible' });
    assert.equal(await second.getByLabel('Title').isDisabled(), true);
    assert.equal(await first.getByRole('button', { name: 'Edit here' }).count(), 0, 'the owning tab has no "Edit here"');

    // Someone else's spectator tab gets no "Edit here".
    const bob = await openForm(BOB, record);
    await waitRole(bob, 'spectator');
    assert.equal(await bob.getByRole('button', { name: 'Edit here' }).count(), 0, 'Bob has no "Edit here"');

    await first.getByLabel('Title').fill('Typed in the first tab');
    await waitValue(second.getByLabel('Title'), 'Typed in the first tab');

    await editHere.click();
    assert.match(await waitRole(second, 'owner'), /You are editing/);
    assert.match(await waitRole(first, 'spectator'), /Read-only — Alice is editing/);
    assert.equal(await first.getByLabel('Title').isDisabled(), true, 'the first tab is read-only now');
    assert.equal(await second.getByLabel('Title').isDisabled(), false, 'the second tab is editable now');
    assert.equal(await second.getByLabel('Title').inputValue(), 'Typed in the first tab', 'the draft moved along');
    await waitText(first.locator('#editing-bar'), 'Edit here');
    assert.match(await waitRole(bob, 'spectator'), /Read-only — Alice is editing/);

    // The new owner's typing reaches the old tab.
    await second.getByLabel('Title').fill('Typed in the second tab');
    await waitValue(first.getByLabel('Title'), 'Typed in the second tab');
  });

  test('a save with an invalid field shows the error inline and keeps what was typed', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Needs a title');
    const alice = await openForm(ALICE, record);
    await waitRole(alice, 'owner');
    await alice.getByLabel('Summary').fill('A summary worth keeping');
    await alice.getByLabel('Category').selectOption('guide');
    await alice.getByLabel('Title').fill('');
    await alice.getByRole('button', { name: 'Save' }).click();

    const titleWrap = alice.locator('.input', { has: alice.locator('#record-title') });
    await waitText(titleWrap.locator('.field-error'), "can't be blank");
    await waitFlash(alice, 'error', 'Not saved');
    assert.equal(await alice.locator('.field-error').count(), 1, 'only the Title has an error');
    assert.equal(await alice.getByLabel('Summary').inputValue(), 'A summary worth keeping');
    assert.equal(await alice.getByLabel('Category').inputValue(), 'guide');
    assert.equal(await alice.getByLabel('Title').inputValue(), '');
    const stored = await api.record('article', record.id);
    assert.equal(stored.title, 'Needs a title');
    assert.equal(stored.data.summary, 'Summary of Needs a title');
    assert.equal(stored.lock_version, record.lock_version);

    // Fixing it saves.
    await alice.getByLabel('Title').fill('Has a title');
    await alice.getByRole('button', { name: 'Save' }).click();
    await waitFlash(alice, 'info', 'Saved');
    await waitUntil(async () => (await alice.locator('.field-error').count()) === 0, { message: 'errors cleared' });
    const saved = await api.record('article', record.id);
    assert.equal(saved.title, 'Has a title');
    assert.equal(saved.data.summary, 'A summary worth keeping');
    assert.equal(saved.data.category, 'guide');
  });

  test('a save that conflicts with a write from elsewhere shows it and keeps the draft', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Contested');
    const alice = await openForm(ALICE, record);
    await waitRole(alice, 'owner');
    const bob = await openForm(BOB, record);
    await waitRole(bob, 'spectator');
    await alice.getByLabel('Title').fill('Alice’s version');
    await waitValue(bob.getByLabel('Title'), 'Alice’s version'); // the draft is on the server

    await api.updateRecord('article', record.id, {
      title: 'Written through the API',
      data: { ...record.data, summary: 'API summary' },
    });
    await alice.waitForTimeout(300); // let the page hear of it (it must still conflict)
    await alice.getByRole('button', { name: 'Save' }).click();

    const conflict = alice.locator('#conflict');
    await waitText(conflict, 'Someone else saved this record');
    // The eyes go where the problem is: focus on the panel, the status beside Save says why.
    await waitUntil(async () => (await alice.evaluate(() => document.activeElement && document.activeElement.id)) === 'conflict', {
      message: 'focus on the conflict panel',
    });
    await waitText(alice.locator('#save-status'), 'Not saved: someone else changed the same fields');
    // Only the title, which both changed, is offered; the summary only the API changed is not a conflict.
    assert.deepEqual(await conflict.locator('tr[data-field]').evaluateAll((rows) => rows.map((r) => r.dataset.field)), [
      'title',
    ]);
    const title = conflict.locator('tr[data-field="title"]');
    assert.match(await title.locator('td.mine').textContent(), /Alice’s version/);
    assert.match(await title.locator('td.theirs').textContent(), /Written through the API/);
    assert.equal(await alice.getByLabel('Title').inputValue(), 'Alice’s version', 'her text stays in the input');
    assert.equal((await api.record('article', record.id)).title, 'Written through the API', 'nothing overwritten yet');

    await title.getByLabel('Keep yours').check();
    await conflict.getByRole('button', { name: 'Save with these choices' }).click();
    await waitFlash(alice, 'info', 'Saved');
    assert.equal(await alice.locator('#lb-flash .flash').count(), 1, 'the stale "Not saved" is gone');
    await waitText(alice.locator('#save-status'), 'Saved at');
    await waitUntil(async () => (await alice.locator('#conflict').count()) === 0, { message: 'the conflict to go' });
    const saved = await api.record('article', record.id);
    assert.equal(saved.title, 'Alice’s version');
    assert.equal(saved.data.summary, 'API summary', 'the summary she never touched is not reverted');
    await waitValue(bob.getByLabel('Title'), 'Alice’s version');
    await waitValue(alice.getByLabel('Summary'), 'API summary');
  });

  test('"Discard mine, load theirs" after a conflict loads the saved row', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Discard me');
    const alice = await openForm(ALICE, record);
    await waitRole(alice, 'owner');
    const bob = await openForm(BOB, record);
    await waitRole(bob, 'spectator');
    await alice.getByLabel('Title').fill('Alice will give up');
    await waitValue(bob.getByLabel('Title'), 'Alice will give up');
    await api.updateRecord('article', record.id, { title: 'Theirs wins' });
    await alice.getByRole('button', { name: 'Save' }).click();
    await waitText(alice.locator('#conflict tr[data-field="title"] td.theirs'), 'Theirs wins');
    await alice.getByRole('button', { name: 'Discard mine, load theirs' }).click();
    await waitUntil(async () => (await alice.locator('#conflict').count()) === 0, { message: 'the conflict to go' });
    await waitValue(alice.getByLabel('Title'), 'Theirs wins');
    assert.equal((await api.record('article', record.id)).title, 'Theirs wins');
    await waitValue(bob.getByLabel('Title'), 'Theirs wins');
  });

  test('a write from elsewhere before the owner starts typing is not overwritten silently', TEST, async (t) => {
    t.after(closeContexts);
    const record = await freshArticle(api, 'Written twice');
    const alice = await openForm(ALICE, record);
    await waitRole(alice, 'owner');
    // The form shows version 1. Someone saves version 2 through the API while Alice reads.
    await api.updateRecord('article', record.id, { data: { ...record.data, summary: 'Summary from the API' } });
    await waitText(alice.locator('#editing-bar'), 'Saved by'); // the page heard of it
    // Alice now edits the title of what her form shows, and saves.
    await alice.getByLabel('Title').fill('Alice edits after the API write');
    await alice.getByRole('button', { name: 'Save' }).click();
    // Either her form took the new version before she typed (so her save keeps its summary), or the save conflicts.
    const outcome = await waitUntil(
      async () => {
        if ((await alice.locator('#conflict').count()) > 0) return 'conflict';
        const stored = await api.record('article', record.id);
        return stored.title === 'Alice edits after the API write' ? 'saved' : null;
      },
      { message: 'a save or a conflict' }
    );
    if (outcome === 'saved') {
      const stored = await api.record('article', record.id);
      assert.equal(
        stored.data.summary,
        'Summary from the API',
        `the API's summary was silently reverted by a save based on the version before it (form summary: ${JSON.stringify(
          await alice.getByLabel('Summary').inputValue()
        )})`
      );
    }
  });
});
