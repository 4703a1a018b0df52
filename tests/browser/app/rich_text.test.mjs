// The rich-text editor in the record form, by keyboard only: the owner writes and bolds in the editor, a spectator
// (another user) sees it bold in a read-only copy as it is typed, the owner saves with Ctrl+S, and the record page
// shows the sanitised bold text.
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
  waitRole,
  waitText,
  waitUntil,
  waitValue,
} from './support.mjs';

const RICH_BODY =
  '<p>Live pages keep <b>everyone</b> on the same page: <i>one</i> person edits, the others ' +
  '<a href="https://example.com/guide">watch live</a>.</p><h2>What changes</h2>' +
  '<ul><li>Formatting stays</li><li>Scripts never run</li></ul><blockquote>Whoever holds the baton edits.</blockquote>';

/**
 * docs/screenshots/<name>.png (with LIVEBATON_SCREENSHOTS=1; a temporary directory otherwise): the rich-text field of
 * `page`, in a window as tall as the page so that the sticky Save bar is not drawn over it.
 */
async function shootField(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: 1280, height });
  await page.locator('.input[data-field-type="rich_text"]').screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), animations: 'disabled' });
}

/** What has the focus in `page`: the element's id, else its accessible label. */
const focused = (page) => page.evaluate(() => document.activeElement.id || document.activeElement.getAttribute('aria-label'));

describe('rich-text editor', () => {
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

  test('the owner bolds by keyboard; the spectator sees it live, read-only; the saved record shows it sanitised', { timeout: 60_000 }, async () => {
    const record = await freshArticle(api, 'Rich text by keyboard');
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const owner = await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(owner, 'owner');
    const bob = await signIn(browser, server, BOB);
    contexts.push(bob.context);
    const spectator = await gotoLive(bob.page, server, editPath('article', record.id));
    await waitRole(spectator, 'spectator');

    // The editor replaces the textarea: a textbox named by the field's label, with a formatting toolbar.
    const body = owner.getByRole('textbox', { name: 'Body', exact: true });
    assert.equal(await body.getAttribute('id'), 'field-body-area');
    assert.equal(await owner.locator('#field-body').isHidden(), true);

    // Keyboard only: Tab from the summary reaches the toolbar (one stop), then the text.
    await owner.locator('#field-summary').focus();
    await owner.keyboard.press('Tab');
    assert.equal(await focused(owner), 'Bold');
    await owner.keyboard.press('Tab');
    assert.equal(await focused(owner), 'field-body-area');
    await owner.keyboard.type('Hello ');
    // Back to the toolbar, Bold with Space (focus returns to the text), then Italic's neighbour by arrow and Enter.
    await owner.keyboard.press('Shift+Tab');
    assert.equal(await focused(owner), 'Bold');
    await owner.keyboard.press('Space');
    assert.equal(await focused(owner), 'field-body-area');
    await owner.keyboard.type('world');
    await waitValue(owner.locator('#field-body'), '<p>Hello <b>world</b></p>');
    assert.equal(await owner.getByRole('button', { name: 'Bold' }).getAttribute('aria-pressed'), 'true');
    await owner.keyboard.press('Enter');
    await owner.keyboard.press('Shift+Tab');
    await owner.keyboard.press('ArrowRight'); // Italic
    await owner.keyboard.press('ArrowRight'); // Link
    await owner.keyboard.press('ArrowRight'); // H2 heading
    assert.equal(await focused(owner), 'H2 heading');
    await owner.keyboard.press('Enter');
    await owner.keyboard.type('Next');
    await waitValue(owner.locator('#field-body'), /^<p>Hello <b>world<\/b><\/p><h2>(<b>)?Next(<\/b>)?<\/h2>$/);

    // The spectator's copy follows live, bold and heading included, and cannot be edited.
    const copy = spectator.locator('#field-body-area');
    await waitText(copy.locator('b').first(), 'world');
    await waitText(copy.locator('h2'), 'Next');
    assert.equal(await copy.getAttribute('contenteditable'), 'false');
    assert.equal(await copy.getAttribute('aria-readonly'), 'true');
    assert.equal(await spectator.locator('#field-body-toolbar button:not(:disabled)').count(), 0);
    await copy.focus();
    await spectator.keyboard.type('intruder');
    assert.doesNotMatch(await copy.innerHTML(), /intruder/);

    // Ctrl+S saves from the editor; the stored value is the sanitised HTML.
    await owner.keyboard.press('ControlOrMeta+S');
    await waitFlash(owner, 'info', 'Saved');
    const saved = await api.record('article', record.id);
    assert.match(saved.data.body, /^<p>Hello <b>world<\/b><\/p><h2>(<b>)?Next(<\/b>)?<\/h2>$/);

    // The record page shows it as formatted text.
    const view = await gotoLive(await bob.context.newPage(), server, `/admin/entities/article/data/${record.id}`);
    await waitText(view.locator('dd[data-field="body"] b').first(), 'world');
    await waitText(view.locator('dd[data-field="body"] h2'), 'Next');

    await waitUntil(async () => (await spectator.locator('#field-body-area h2').count()) === 1);
    for (const context of contexts) {
      assert.deepEqual(context.problems, [], 'no page errors');
    }
  });

  test('screenshots: the owner formatting, the spectator read-only', { timeout: 60_000 }, async () => {
    const record = await freshArticle(api, 'Editing together', { data: { summary: 'Two people, one record.', body: RICH_BODY } });
    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const owner = await gotoLive(alice.page, server, editPath('article', record.id));
    await waitRole(owner, 'owner');
    const bob = await signIn(browser, server, BOB);
    contexts.push(bob.context);
    const spectator = await gotoLive(bob.page, server, editPath('article', record.id));
    await waitRole(spectator, 'spectator');
    // The caret in the bold word: Bold shows pressed.
    await owner.locator('#field-body-area b').click();
    await waitUntil(async () => (await owner.getByRole('button', { name: 'Bold' }).getAttribute('aria-pressed')) === 'true');
    await shootField(owner, 'rich-text-editor');
    await shootField(spectator, 'rich-text-editor-spectator');
    assert.equal(await spectator.locator('#field-body-area a').getAttribute('href'), 'https://example.com/guide');
  });
});
