// The admin at phone width (390 × 844 CSS pixels, an iPhone 12–15): tables become stacked rows labelled by their
// columns, slugs are cut with an ellipsis instead of wrapping every few characters, the field builder is one column,
// nothing scrolls sideways or spills out of its card, and the "Reconnecting…" bar covers none of the page.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADMIN,
  apiClient,
  cleanup,
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
} from './support.mjs';

const PHONE = { width: 390, height: 844 };

/** What overflows at this width: the page sideways, or an element out of its card. */
function overflow(page) {
  return page.evaluate(() => {
    const problems = [];
    if (document.documentElement.scrollWidth > window.innerWidth) {
      problems.push(`the page is ${document.documentElement.scrollWidth} px wide`);
    }
    for (const card of document.querySelectorAll('main .card')) {
      const box = card.getBoundingClientRect();
      for (const element of card.querySelectorAll('table, tr, td, code, input, select, textarea')) {
        const r = element.getBoundingClientRect();
        if (r.width > 0 && (r.right > box.right + 0.5 || r.left < box.left - 0.5)) {
          problems.push(`${element.localName}.${element.className} spans ${Math.round(r.left)}–${Math.round(r.right)}`);
        }
      }
    }
    return problems;
  });
}

describe('phone width', () => {
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

  async function admin() {
    const { context, page } = await signIn(browser, server, ADMIN, { viewport: PHONE });
    contexts.push(context);
    return page;
  }

  test('lists are stacked, labelled rows; slugs are cut, not wrapped; nothing overflows', { timeout: 60_000 }, async () => {
    const long = await freshArticle(api, 'A title long enough to make a slug that could never fit a phone screen at all');
    const page = await admin();
    await gotoLive(page, server, '/admin/entities/article/data');
    const row = page.locator(`#record-${long.id}`);
    const cells = await row.locator('td').evaluateAll((tds) =>
      tds.map((td) => ({ display: getComputedStyle(td).display, label: getComputedStyle(td, '::before').content }))
    );
    assert.ok(cells.every((cell) => cell.display !== 'table-cell'), `stacked cells: ${JSON.stringify(cells)}`);
    assert.deepEqual(cells.slice(0, 3).map((cell) => cell.label), ['"Title"', '"Slug"', '"Status"']);
    const slug = await row.locator('code.slug').evaluate((code) => {
      const style = getComputedStyle(code);
      return { height: code.getBoundingClientRect().height, line: parseFloat(style.lineHeight) || 20, cut: code.scrollWidth > code.clientWidth, ellipsis: style.textOverflow, title: code.title };
    });
    assert.ok(slug.height < slug.line * 1.6, `the slug is one line (${slug.height} px)`);
    assert.ok(slug.cut && slug.ellipsis === 'ellipsis', `the slug is cut with an ellipsis: ${JSON.stringify(slug)}`);
    assert.equal(slug.title, long.slug, 'the whole slug is in its title');
    assert.deepEqual(await overflow(page), []);

    for (const path of ['/admin', '/admin/entities', `/admin/entities/article/data/${long.id}`, '/admin/entities/article/trash', '/admin/users']) {
      await gotoLive(page, server, path);
      assert.deepEqual(await overflow(page), [], path);
    }
  });

  test('the field builder is one column', { timeout: 60_000 }, async () => {
    const page = await admin();
    await gotoLive(page, server, '/admin/entities/1/edit');
    await waitRole(page, 'owner');
    const columns = await page.locator('#field-row-0 .row').evaluate((row) => getComputedStyle(row).gridTemplateColumns.split(' ').length);
    assert.equal(columns, 1);
    const [label, key] = await Promise.all(['#field-0-label', '#field-0-key'].map((id) => page.locator(id).boundingBox()));
    assert.ok(key.y > label.y + label.height, 'the key sits below the label, not beside it');
    assert.deepEqual(await overflow(page), []);
  });

  test('"Reconnecting…" covers neither the header nor the page', { timeout: 60_000 }, async () => {
    const page = await admin();
    await gotoLive(page, server, '/admin/entities/article/data');
    await server.stop();
    await waitUntil(async () => (await liveState(page)) === 'reconnecting', { message: 'reconnecting' });
    await waitText(page.locator('#lb-status'), 'Reconnecting…');
    const covered = await page.evaluate(() => {
      const status = document.getElementById('lb-status').getBoundingClientRect();
      const overlaps = (r) => r.width > 0 && r.left < status.right && r.right > status.left && r.top < status.bottom && r.bottom > status.top;
      return [...document.querySelectorAll('header a, header .who, main h1, main .button, main table')]
        .filter((element) => overlaps(element.getBoundingClientRect()))
        .map((element) => element.textContent.trim().slice(0, 30));
    });
    assert.deepEqual(covered, [], 'nothing under the status bar');
    await server.start();
    await waitJoined(page, 20_000);
  });
});
