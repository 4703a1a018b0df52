// Script injection: an entity with one field of every type, whose labels, options and names carry markup, and a
// record whose every text-like value is a payload typed by the owner. Nothing may run anywhere it is shown (the form
// of the owner and of a spectator receiving it live, the record page, the list, the public page, the entity pages),
// plain text must read as the text typed, and rich text must come back sanitised.
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
  gotoLive,
  HOOK,
  newContext,
  openFixture,
  signIn,
  sleep,
  waitFlash,
  waitJoined,
  waitRole,
  waitText,
  waitValue,
} from './support.mjs';

const IMG = '<img src=x onerror="window.__xss=1">';
const BREAKOUT = '"><script>window.__xss=1</script><img src=x onerror=window.__xss=1>';
const PAYLOADS = {
  title: `${BREAKOUT} & <b>title</b>`,
  text: `${IMG} ${BREAKOUT}`,
  textarea: `</textarea><svg onload=alert(1)><script>window.__xss=1</script>\n${IMG}`,
  email: "xss'onerror=window.__xss=1@example.com", // the browser's type=email check allows no more
  url: 'javascript:window.__xss=1',
  rich_text:
    '<p>rich <b>bold</b></p><img src=x onerror="window.__xss=1"><script>window.__xss=1</script>' +
    '<a href="javascript:window.__xss=1">link</a><iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
};
const SAFE_URL = 'https://example.com/?q=%22%3E%3Cscript%3E';
const OPTION_PAYLOAD = `${BREAKOUT}`;
const OPTIONS = ['plain', OPTION_PAYLOAD, '<b>b</b>'];
const TYPES = ['text', 'textarea', 'email', 'url', 'rich_text', 'number', 'boolean', 'date', 'select', 'radio', 'checkbox'];
const PLAIN_TEXT_FIELDS = ['text', 'textarea', 'email'];

/** Asserts that nothing injected ran or exists in `page`'s document. */
async function assertClean(page, where) {
  // An <img src=x onerror> fires when its load fails: give it the time to.
  await page.waitForLoadState('load', { timeout: 15_000 });
  await sleep(300);
  const report = await page.evaluate(() => {
    const handlers = [];
    for (const element of document.querySelectorAll('*')) {
      for (const attribute of element.attributes) {
        if (/^on/i.test(attribute.name) || attribute.name === 'srcdoc') handlers.push(`${element.localName}[${attribute.name}]`);
        if (/^\s*javascript:/i.test(attribute.value) && /href|src|action/i.test(attribute.name)) {
          handlers.push(`${element.localName}[${attribute.name}=${attribute.value}]`);
        }
      }
    }
    const scripts = [...document.scripts].filter((s) => !/^\/assets\/livebaton-[0-9a-f]+\.js$/.test(s.getAttribute('src') || ''));
    return {
      xss: typeof window.__xss === 'undefined' ? 'undefined' : String(window.__xss),
      handlers,
      scripts: scripts.map((s) => s.outerHTML),
    };
  });
  assert.deepEqual(report, { xss: 'undefined', handlers: [], scripts: [] }, `${where}: injected markup is live`);
}


describe('script injection through every field type', () => {
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

  test('payloads are shown as text and never run', { timeout: 60_000 }, async () => {
    const entity = await api.post('/api/entities', {
      name: 'xss_probe',
      display_name: 'XSS <i>probe</i>',
      display_name_plural: 'XSS <i>probes</i>',
      description: `Probe ${IMG}`,
      status: 'published',
      fields_definition: TYPES.map((type) => ({
        type,
        key: type,
        label: `${type} ${IMG}`,
        ...(['select', 'radio', 'checkbox'].includes(type) ? { options: OPTIONS } : {}),
      })),
    });
    const record = await api.createRecord('xss_probe', {
      title: 'XSS target',
      slug: 'xss-target',
      status: 'published',
      data: {},
    });

    const alice = await signIn(browser, server, ALICE);
    contexts.push(alice.context);
    const owner = await gotoLive(alice.page, server, editPath('xss_probe', record.id));
    await waitRole(owner, 'owner');
    const bob = await signIn(browser, server, BOB);
    contexts.push(bob.context);
    const spectator = await gotoLive(bob.page, server, editPath('xss_probe', record.id));
    await waitRole(spectator, 'spectator');
    // Labels carrying markup read as text.
    assert.equal((await owner.locator('label[for="field-text"]').textContent()).trim(), `text ${IMG}`);

    // The owner types a payload into every text-like field and picks the payload options.
    await owner.locator('#record-title').fill(PAYLOADS.title);
    for (const key of ['text', 'textarea', 'email', 'url']) await owner.locator(`#field-${key}`).fill(PAYLOADS[key]);
    // Rich text goes in as a hostile client would send it, past the editor's own cleaning: straight into the textarea
    // the form sends. Only the server's sanitiser stands between it and the pages.
    await owner.locator('#field-rich_text').evaluate((textarea, value) => {
      textarea.value = value;
      textarea.dispatchEvent(new Event('input', { bubbles: true }));
    }, PAYLOADS.rich_text);
    await owner.locator('#field-number').fill('42');
    await owner.locator('#field-boolean').check();
    await owner.locator('#field-date').fill('2026-01-02');
    await owner.locator('#field-select').selectOption({ value: OPTION_PAYLOAD });
    await owner.locator('#field-radio-1').check();
    await owner.locator('#field-checkbox-1').check();
    await owner.locator('#field-checkbox-2').check();

    // The spectator receives all of it live, as values.
    await waitValue(spectator.locator('#record-title'), PAYLOADS.title);
    await waitValue(spectator.locator('#field-textarea'), PAYLOADS.textarea);
    await waitValue(spectator.locator('#field-rich_text'), PAYLOADS.rich_text);
    // The spectator's editor shows it through the client's allow-list: formatting, nothing live.
    await waitText(spectator.locator('#field-rich_text-area b'), 'bold');
    console.log("AFTER SPECTATOR");
    await waitValue(spectator.locator('#field-select'), OPTION_PAYLOAD);
    assert.equal(await spectator.locator('#field-radio-1').isChecked(), true);
    await assertClean(spectator, 'spectator form');

    // A javascript: URL is refused by validation, with the error shown inline.
    await owner.getByRole('button', { name: 'Save' }).click();
    const urlWrap = owner.locator('.input', { has: owner.locator('#field-url') });
    await waitText(urlWrap.locator('.field-error'), 'http');
    assert.equal((await api.record('xss_probe', record.id)).title, 'XSS target', 'nothing saved');
    assert.equal(await owner.locator('#record-title').inputValue(), PAYLOADS.title);
    await assertClean(owner, 'owner form with errors');

    console.log("BEFORE SAFE URL");
    await owner.locator('#field-url').fill(SAFE_URL);
    await owner.getByRole('button', { name: 'Save' }).click();
    await waitFlash(owner, 'info', 'Saved');
    const saved = await api.record('xss_probe', record.id);
    assert.equal(saved.title, PAYLOADS.title);
    for (const key of PLAIN_TEXT_FIELDS) assert.equal(saved.data[key], PAYLOADS[key], `stored ${key}`);
    assert.equal(saved.data.url, SAFE_URL);
    assert.equal(saved.data.select, OPTION_PAYLOAD);
    assert.deepEqual(saved.data.checkbox, [OPTION_PAYLOAD, '<b>b</b>']);
    assert.doesNotMatch(saved.data.rich_text, /<script|onerror|javascript:|srcdoc|<iframe/i, 'rich text is sanitised');
    assert.match(saved.data.rich_text, /<b>bold<\/b>/, 'harmless markup stays');
    await assertClean(owner, 'owner form after save');
    await assertClean(spectator, 'spectator form after save');

    // Someone else reads it: the record page, the list, the entity pages.
    const carol = await signIn(browser, server, CAROL);
    contexts.push(carol.context);
    const view = await gotoLive(carol.page, server, `/admin/entities/xss_probe/data/${record.id}`);
    assert.equal((await view.locator('#record-view h1').textContent()).trim(), PAYLOADS.title);
    for (const key of PLAIN_TEXT_FIELDS) {
      assert.equal(await view.locator(`dd[data-field="${key}"]`).textContent(), PAYLOADS[key], `record page ${key}`);
    }
    assert.equal(await view.locator('dd[data-field="url"]').textContent(), SAFE_URL);
    assert.match(await view.locator('dd[data-field="select"]').textContent(), /"><script>window.__xss=1<\/script>/);
    assert.equal(await view.locator('dd[data-field="rich_text"] b').textContent(), 'bold', 'rich text renders as markup');
    assert.equal(await view.locator('dd[data-field="rich_text"] script, dd[data-field="rich_text"] iframe').count(), 0);
    await assertClean(view, 'record page');

    const list = await gotoLive(await carol.context.newPage(), server, '/admin/entities/xss_probe/data');
    assert.match(await list.locator(`#record-${record.id}`).textContent(), /"><script>window.__xss=1<\/script>/);
    await assertClean(list, 'record list');

    const entities = await gotoLive(await carol.context.newPage(), server, '/admin/entities');
    assert.match(await entities.locator(`#entity-${entity.id}`).textContent(), /XSS <i>probe/);
    await assertClean(entities, 'entity list');

    const admin = await signIn(browser, server, ADMIN);
    contexts.push(admin.context);
    const builder = await gotoLive(admin.page, server, `/admin/entities/${entity.id}/edit`);
    await waitRole(builder, 'owner');
    assert.ok((await builder.content()).includes('&lt;img src=x'), 'labels are escaped in the field builder');
    await assertClean(builder, 'entity form');

    // The public page, for an anonymous visitor.
    const visitor = await newContext(browser);
    contexts.push(visitor);
    const page = await visitor.newPage();
    await page.goto(`${server.url}/e/xss_probe/xss-target`);
    await waitJoined(page);
    assert.equal((await page.locator('h1').first().textContent()).trim(), PAYLOADS.title);
    for (const key of PLAIN_TEXT_FIELDS) {
      assert.equal(await page.locator(`dd[data-field="${key}"]`).textContent(), PAYLOADS[key], `public page ${key}`);
    }
    await assertClean(page, 'public page');

    // A live update of the public page carries a payload too.
    await api.updateRecord('xss_probe', record.id, { data: { ...saved.data, text: `${IMG} live` } });
    await waitText(page.locator('dd[data-field="text"]'), ' live');
    await assertClean(page, 'public page after a live update');

    for (const context of contexts) {
      assert.deepEqual(context.dialogs, [], 'no dialog opened');
      assert.deepEqual(context.problems, [], 'no page errors');
    }
  });
});
