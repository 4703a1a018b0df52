// The collaborative entity form (field builder): the owner adds, edits, moves and removes fields, a second admin
// watches it live and read-only, and Save stores the definition.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADA,
  ADMIN,
  apiClient,
  cleanup,
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


describe('entity form', () => {
  let server;
  let browser;
  const contexts = [];

  before(async () => {
    ({ server, browser } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  test('the field builder edits a definition live and saves it', { timeout: 60_000 }, async () => {
    const api = await apiClient(server, ADMIN);
    const entity = await api.post('/api/entities', {
      name: 'builder_probe',
      display_name: 'Builder probe',
      display_name_plural: 'Builder probes',
      status: 'published',
      fields_definition: [
        { type: 'text', key: 'first', label: 'First' },
        { type: 'textarea', key: 'second', label: 'Second' },
      ],
    });
    const path = `/admin/entities/${entity.id}/edit`;
    const owner = await signIn(browser, server, ADMIN);
    contexts.push(owner.context);
    const page = await gotoLive(owner.page, server, path);
    assert.match(await waitRole(page, 'owner'), /You are editing/);
    const watcher = await signIn(browser, server, ADA);
    contexts.push(watcher.context);
    const ada = await gotoLive(watcher.page, server, path);
    assert.match(await waitRole(ada, 'spectator'), /Read-only — .+ is editing/);
    assert.equal(await ada.getByLabel('Display name').isDisabled(), true);
    assert.equal(await ada.getByRole('button', { name: 'Add field' }).isDisabled(), true);
    assert.equal(await page.locator('.field-row').count(), 2);

    await page.getByLabel('Display name').fill('Builder probe v2');
    await waitValue(ada.getByLabel('Display name'), 'Builder probe v2');

    // A third field, a select with options.
    await page.getByRole('button', { name: 'Add field' }).click();
    await page.locator('#field-row-2').waitFor();
    await page.locator('#field-2-label').fill('Third');
    await page.locator('#field-2-key').fill('third');
    await page.locator('#field-2-type').selectOption('select');
    await page.locator('#field-2-options').waitFor(); // shown once the server knows the type has options
    await page.locator('#field-2-options').fill('x, y');
    await waitValue(ada.locator('#field-2-options'), 'x, y');

    // Move it up above "Second", then remove "Second".
    await page.getByRole('button', { name: 'Move Third up' }).click();
    await waitValue(page.locator('#field-1-label'), 'Third');
    await waitValue(page.locator('#field-2-label'), 'Second');
    await waitValue(ada.locator('#field-1-label'), 'Third');
    await page.locator('#field-row-2').getByRole('button', { name: 'Remove' }).click();
    await waitUntil(async () => (await page.locator('.field-row').count()) === 2, { message: 'two rows left' });
    await waitUntil(async () => (await ada.locator('.field-row').count()) === 2, { message: 'two rows for Ada' });
    assert.equal(await page.locator('#field-1-options').inputValue(), 'x, y', 'the moved row kept its options');
    assert.equal((await api.get(`/api/entities/builder_probe`)).fields_definition.length, 2, 'nothing saved yet');

    await page.getByRole('button', { name: 'Save' }).click();
    await waitFlash(page, 'info', 'Saved');
    const saved = await api.get('/api/entities/builder_probe');
    assert.equal(saved.display_name, 'Builder probe v2');
    assert.deepEqual(
      saved.fields_definition.map((field) => [field.key, field.type, field.label]),
      [
        ['first', 'text', 'First'],
        ['third', 'select', 'Third'],
      ]
    );
    assert.deepEqual(saved.fields_definition[1].options, ['x', 'y']);
    await waitValue(ada.getByLabel('Display name'), 'Builder probe v2');
  });

  test('a change still in its debounce is applied before a click that reorders the rows', { timeout: 60_000 }, async () => {
    const api = await apiClient(server, ADMIN);
    const entity = await api.post('/api/entities', {
      name: 'race_probe',
      display_name: 'Race probe',
      display_name_plural: 'Race probes',
      status: 'published',
      fields_definition: [
        { type: 'text', key: 'first', label: 'First' },
        { type: 'text', key: 'second', label: 'Second' },
      ],
    });
    const { context, page } = await signIn(browser, server, ADMIN);
    contexts.push(context);
    await gotoLive(page, server, `/admin/entities/${entity.id}/edit`);
    await waitRole(page, 'owner');
    // Tick "Required" on Second and move it up at once (well within the 300 ms debounce of the tick).
    await page.evaluate(() => {
      document.getElementById('field-1-required').click();
      document.querySelector('[aria-label="Move Second up"]').click();
    });
    await waitValue(page.locator('#field-0-label'), 'Second');
    await waitUntil(async () => (await page.locator('#field-0-required').isChecked()) === true, {
      message: 'the moved row (Second) to be the required one',
    });
    assert.equal(await page.locator('#field-1-required').isChecked(), false, 'First did not get the tick');
    await page.getByRole('button', { name: 'Save' }).click();
    await waitFlash(page, 'info', 'Saved');
    const saved = await api.get('/api/entities/race_probe');
    assert.deepEqual(
      saved.fields_definition.map((field) => [field.key, field.required]),
      [
        ['second', true],
        ['first', false],
      ]
    );
  });

  test('the field builder works by keyboard: focus follows a row, keys follow labels, refusals are highlighted', { timeout: 60_000 }, async () => {
    const api = await apiClient(server, ADMIN);
    const entity = await api.post('/api/entities', {
      name: 'keyboard_probe',
      display_name: 'Keyboard probe',
      display_name_plural: 'Keyboard probes',
      status: 'published',
      fields_definition: [
        { type: 'text', key: 'first', label: 'First' },
        { type: 'text', key: 'second', label: 'Second' },
      ],
    });
    const { context, page } = await signIn(browser, server, ADMIN);
    contexts.push(context);
    await gotoLive(page, server, `/admin/entities/${entity.id}/edit`);
    await waitRole(page, 'owner');
    const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute('aria-label') || document.activeElement?.localName);

    // Each row is a fieldset named by its legend; Remove names its field.
    assert.equal(await page.getByRole('group', { name: 'Field 2: Second' }).count(), 1);
    assert.equal(await page.getByRole('button', { name: 'Remove Second', exact: true }).count(), 1);

    // Add a field by keyboard: focus lands on its label, and its key follows what is typed there.
    await page.getByRole('button', { name: 'Add field' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#field-row-2').waitFor();
    await waitUntil(async () => (await focused()) === 'field-2-label', { message: 'focus on the new label' });
    await page.keyboard.type('Publication date');
    await waitValue(page.locator('#field-2-key'), 'publication_date');
    await waitUntil(async () => (await page.locator('#field-row-2 legend').textContent()) === 'Field 3: Publication date', {
      message: 'the legend names the new field',
    });

    // Move it up twice by pressing Enter twice: focus follows the row, so the second press moves it again.
    await page.getByRole('button', { name: 'Move Publication date up' }).focus();
    await page.keyboard.press('Enter');
    await waitValue(page.locator('#field-1-label'), 'Publication date');
    await waitUntil(async () => (await focused()) === 'Move Publication date up', { message: 'focus on the moved row' });
    await page.keyboard.press('Enter');
    await waitValue(page.locator('#field-0-label'), 'Publication date');
    // At the top ↑ is disabled: focus is on the same row's ↓.
    await waitUntil(async () => (await focused()) === 'Move Publication date down', { message: 'focus on ↓ at the top' });
    assert.deepEqual(await page.locator('.field-row legend').allTextContents(), [
      'Field 1: Publication date',
      'Field 2: First',
      'Field 3: Second',
    ]);

    // A duplicate key and an empty label: Ctrl+S, the rows say what is wrong and focus goes to the first one.
    await page.locator('#field-2-key').fill('first');
    await page.locator('#field-0-label').fill('');
    await page.keyboard.press('Control+s');
    await waitText(page.locator('.save-status'), 'Not saved: check the highlighted fields');
    const label = page.locator('#field-0-label');
    const key = page.locator('#field-2-key');
    await waitUntil(async () => (await key.getAttribute('aria-invalid')) === 'true', { message: 'the duplicate key marked' });
    assert.equal(await label.getAttribute('aria-invalid'), 'true');
    const describedBy = await key.getAttribute('aria-describedby');
    assert.match(await page.locator(`#${describedBy}`).textContent(), /is already used by another field/);
    assert.match(await page.locator(`#${await label.getAttribute('aria-describedby')}`).textContent(), /can't be blank/);
    assert.match(await page.locator('#field-row-2').getAttribute('class'), /has-error/);
    assert.equal(await page.locator('#field-1-key').getAttribute('aria-invalid'), null, 'the first "first" is fine');
    await waitUntil(async () => (await focused()) === 'field-0-label', { message: 'focus on the first refused input' });
    const stored = await api.get('/api/entities/keyboard_probe');
    assert.deepEqual(stored.fields_definition.map((field) => field.key), ['first', 'second'], 'nothing saved');
  });
});
