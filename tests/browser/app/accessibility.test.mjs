// Automated accessibility checks: axe-core's WCAG 2.1 A and AA rules on every page of the admin and the public page,
// in the states people meet them in: a form's owner, its spectators, a conflict, refused values, a failed sign-in, and
// at phone width. Zero violations is the bar; each failure names the page, the rule and the element.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADA,
  ADMIN,
  ALICE,
  apiClient,
  axeViolations,
  BOB,
  cleanup,
  editPath,
  gotoLive,
  HOOK,
  newContext,
  openFixture,
  signIn,
  weakControlBorders,
  waitRole,
  waitText,
  waitValue,
} from './support.mjs';

describe('accessibility (axe-core, WCAG 2.1 AA)', () => {
  let server;
  let browser;
  const contexts = [];

  before(async () => {
    ({ server, browser } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  async function user(who, options) {
    const signedIn = await signIn(browser, server, who, options);
    contexts.push(signedIn.context);
    return signedIn.page;
  }

  test('the checks find what they must (an unlabelled input, text and a border without contrast)', { timeout: 30_000 }, async () => {
    const context = await newContext(browser);
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${server.url}/admin/login`);
    assert.deepEqual(await axeViolations(page), [], 'the sign-in page is clean');
    await page.evaluate(() => {
      const input = document.createElement('input');
      input.id = 'unlabelled';
      const faint = document.createElement('p');
      faint.id = 'faint';
      faint.textContent = 'Hard to read';
      faint.style.color = '#d9dee8';
      document.querySelector('main').append(input, faint);
    });
    const found = await axeViolations(page);
    assert.ok(found.some((line) => line.startsWith('label ') && line.includes('#unlabelled')), found.join('\n'));
    assert.ok(found.some((line) => line.startsWith('color-contrast ') && line.includes('#faint')), found.join('\n'));
    // An input outlined as faintly as the admin's were before (#d9dee8 on white, 1.35:1).
    assert.deepEqual(await weakControlBorders(page), []);
    await page.evaluate(() => (document.getElementById('unlabelled').style.borderColor = '#d9dee8'));
    assert.deepEqual(await weakControlBorders(page), ['input#unlabelled: 1.26:1'], 'on the page\'s grey background');
  });

  test('by keyboard: the first Tab offers to skip to the content, and the navigation says where the reader is', { timeout: 30_000 }, async () => {
    const page = await user(ADMIN);
    await gotoLive(page, server, '/admin/entities/article/data');
    await page.keyboard.press('Tab');
    const skip = await page.evaluate(() => ({ text: document.activeElement.textContent, visible: document.activeElement.getBoundingClientRect().top >= 0 }));
    assert.deepEqual(skip, { text: 'Skip to content', visible: true }, 'the skip link comes first, and shows when focused');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
    await page.keyboard.press('Tab');
    assert.equal(
      await page.evaluate(() => document.querySelector('main').contains(document.activeElement)),
      true,
      'the next Tab is inside the content'
    );
    const current = await page.locator('header nav a[aria-current]').evaluateAll((links) => links.map((a) => [a.textContent, a.getAttribute('aria-current')]));
    assert.deepEqual(current, [['Entities', 'true']]);
    await gotoLive(page, server, '/admin');
    assert.equal(await page.getByRole('link', { name: 'Dashboard' }).getAttribute('aria-current'), 'page');
  });

  test('every page, as owner, spectator, in a conflict, with refused values and at phone width', { timeout: 120_000 }, async () => {
    const failures = [];
    async function check(page, name) {
      const violations = [...(await axeViolations(page)), ...(await weakControlBorders(page)).map((weak) => `border contrast (1.4.11) ${weak}`)];
      if (violations.length) failures.push(`${name}:\n    ${violations.join('\n    ')}`);
    }
    const api = await apiClient(server, ADMIN);
    const records = await api.records('article');
    const record = records[records.length - 1];

    // Signed out: the sign-in page, and after a wrong password.
    const anonymous = await newContext(browser);
    contexts.push(anonymous);
    const login = await anonymous.newPage();
    await login.goto(`${server.url}/admin/login`);
    await check(login, 'sign-in');
    await login.getByLabel('Email').fill(ADMIN.email);
    await login.getByLabel('Password').fill('not the password');
    await login.getByRole('button', { name: 'Sign in' }).click();
    await login.locator('.error').waitFor();
    await check(login, 'sign-in, refused');
    const visitor = await anonymous.newPage();
    await gotoLive(visitor, server, `/e/article/${records[0].slug}`);
    await check(visitor, 'public record page');

    // The admin's pages.
    const admin = await user(ADMIN);
    for (const [path, name] of [
      ['/admin', 'dashboard'],
      ['/admin/entities', 'entities'],
      ['/admin/entities/article/data', 'records'],
      [`/admin/entities/article/data/${records[0].id}`, 'record'],
      ['/admin/entities/article/data/new', 'new record'],
      ['/admin/entities/article/trash', 'trash'],
      ['/admin/users', 'people'],
    ]) {
      await gotoLive(admin, server, path);
      await check(admin, name);
    }

    // The entity form: its owner, a spectator, and refused values in the field builder.
    await gotoLive(admin, server, '/admin/entities/1/edit');
    await waitRole(admin, 'owner');
    await check(admin, 'entity form, owner');
    const ada = await user(ADA);
    await gotoLive(ada, server, '/admin/entities/1/edit');
    await waitRole(ada, 'spectator');
    await check(ada, 'entity form, spectator');
    await admin.locator('#field-0-label').fill('');
    await admin.getByRole('button', { name: 'Save' }).click();
    await waitText(admin.locator('.save-status'), 'Not saved');
    await check(admin, 'entity form, refused values');
    await admin.goto('about:blank');
    await ada.goto('about:blank');

    // The record form: Alice owns it, Bob watches.
    const alice = await user(ALICE);
    await gotoLive(alice, server, editPath('article', record.id));
    await waitRole(alice, 'owner');
    const bob = await user(BOB);
    await gotoLive(bob, server, editPath('article', record.id));
    await waitRole(bob, 'spectator');
    await alice.getByLabel('Summary').fill('Typed while Bob watches.');
    await waitValue(bob.getByLabel('Summary'), 'Typed while Bob watches.');
    await check(alice, 'record form, owner');
    await check(bob, 'record form, spectator');

    // Refused values: a blank title.
    const title = await alice.getByLabel('Title').inputValue();
    await alice.getByLabel('Title').fill('');
    await alice.getByRole('button', { name: 'Save' }).click();
    await waitText(alice.locator('.save-status'), 'Not saved');
    await check(alice, 'record form, refused values');
    // Alice's title differs from the one the API writes next: a conflict on that field.
    await alice.getByLabel('Title').fill(`${title} (Alice)`);

    // A conflict: the record changes through the API while Alice holds her draft.
    await api.updateRecord('article', record.id, { title: `${record.title} (elsewhere)`, data: { ...record.data, category: 'guide' } });
    await alice.getByRole('button', { name: 'Save' }).click();
    await waitText(alice.locator('#conflict'), 'Someone else saved this record');
    await check(alice, 'record form, conflict');

    // Phone width.
    const phone = await user(ADMIN, { viewport: { width: 390, height: 844 } });
    for (const [path, name] of [
      ['/admin', 'dashboard (phone)'],
      ['/admin/entities/article/data', 'records (phone)'],
      [editPath('article', records[0].id), 'record form (phone)'],
    ]) {
      await gotoLive(phone, server, path);
      await check(phone, name);
    }

    assert.deepEqual(failures, [], `WCAG 2.1 AA violations:\n${failures.join('\n')}`);
  });
});
