// People in the admin, as a new admin does it in Chromium: invite two colleagues with different roles, each sets a
// password through their one-time link and is signed in; the admin demotes one while that person has an edit form
// open (their page stops editing at once, and once signed in again the form is read-only), and deactivates the other
// (their open pages close, they cannot sign in). The users page follows every change live, the audit trail says who
// did what, and a used link says so.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ADA,
  ADMIN,
  ALICE,
  apiClient,
  cleanup,
  editPath,
  freshArticle,
  gotoLive,
  HOOK,
  newContext,
  openFixture,
  signIn,
  waitJoined,
  waitRole,
  waitText,
  waitUntil,
} from './support.mjs';

describe('people', () => {
  let server;
  let browser;
  const contexts = [];

  before(async () => {
    ({ server, browser } = await openFixture());
  }, HOOK);

  after(async () => {
    await cleanup(...contexts, browser, server);
  }, HOOK);

  /** The admin invites `email` as `role` on the users page; returns the one-time link shown. */
  async function invite(page, { email, name, role }) {
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Role', { exact: true }).selectOption(role);
    await page.getByRole('button', { name: 'Invite' }).click();
    await waitText(page.locator('#issued-link'), email);
    const url = await page.locator('#issued-link-url').inputValue();
    assert.match(url, new RegExp(`^${server.url}/account/link/[A-Za-z0-9_-]{40,}$`));
    await page.getByRole('button', { name: 'Done' }).click();
    return url;
  }

  /** A new browser opens `url`, chooses `password` and lands signed in on the dashboard. */
  async function accept(url, password) {
    const context = await newContext(browser);
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(url);
    await page.getByLabel('New password').fill(password);
    await page.getByLabel('Repeat the password').fill(password);
    await Promise.all([page.waitForURL((u) => u.pathname === '/admin'), page.getByRole('button', { name: /Create my account/ }).click()]);
    await waitJoined(page);
    return { context, page };
  }

  test('invite two, each joins by link; demote one mid-edit, deactivate the other', { timeout: 90_000 }, async () => {
    const api = await apiClient(server, ADMIN);
    const record = await freshArticle(api, 'Edited while demoted');
    const admin = (await signIn(browser, server, ADMIN)).page;
    contexts.push(admin.context());
    await gotoLive(admin, server, '/admin');
    await admin.getByRole('link', { name: 'People' }).click();
    await admin.waitForURL((u) => u.pathname === '/admin/users');
    await waitJoined(admin);

    const eveLink = await invite(admin, { email: 'eve@example.com', name: 'Eve', role: 'editor' });
    const finnLink = await invite(admin, { email: 'finn@example.com', name: 'Finn', role: 'viewer' });
    await waitText(admin.locator('#invitations'), 'eve@example.com');
    await waitText(admin.locator('#invitations'), 'finn@example.com');

    const eve = await accept(eveLink, 'eves good password');
    const finn = await accept(finnLink, 'finns good password');
    // The admin's page follows: both are users now, the invitations are gone, the trail says so.
    await waitText(admin.locator('#users'), 'eve@example.com');
    await waitText(admin.locator('#users'), 'finn@example.com');
    await waitUntil(async () => (await admin.locator('#invitations').count()) === 0, { message: 'no pending invitation' });
    await waitText(admin.locator('#audit'), 'eve@example.com accepted the invitation');
    // A used link says so.
    const again = await eve.context.newPage();
    const reply = await again.goto(eveLink);
    assert.equal(reply.status(), 410);
    await waitText(again.locator('main'), 'This link was used already');
    await again.close();

    // Eve edits a record; the admin makes her a viewer: her page stops editing at once.
    await gotoLive(eve.page, server, editPath('article', record.id));
    assert.match(await waitRole(eve.page, 'owner'), /You are editing/);
    const eveRow = admin.locator('#users tr', { hasText: 'eve@example.com' });
    await eveRow.getByLabel('Role of Eve', { exact: true }).selectOption('viewer');
    await eveRow.getByRole('button', { name: 'Change the role of Eve' }).click();
    await waitText(admin.locator('#lb-flash'), 'Eve is now a viewer.');
    await waitText(eve.page.locator('#lb-status'), 'Your sign-in is no longer valid', { timeout: 15_000 });
    assert.equal(await eve.page.evaluate(() => document.body.dataset.lbState), 'signed-out');
    // Signed in again, the form is hers to watch only.
    const eveAgain = (await signIn(browser, server, { email: 'eve@example.com', password: 'eves good password' })).page;
    contexts.push(eveAgain.context());
    await gotoLive(eveAgain, server, editPath('article', record.id));
    await waitRole(eveAgain, 'spectator');
    assert.equal(await eveAgain.getByLabel('Title').isDisabled(), true, 'a viewer cannot type');

    // Finn reads a record; the admin deactivates him after the confirmation that says what happens.
    await gotoLive(finn.page, server, `/admin/entities/article/data/${record.id}`);
    const finnRow = admin.locator('#users tr', { hasText: 'finn@example.com' });
    await finnRow.getByRole('button', { name: 'Deactivate Finn' }).click();
    const confirm = admin.locator('#user-confirm');
    await waitText(confirm, 'Their open pages close now and their sessions and API tokens end at once');
    await confirm.getByRole('button', { name: 'Deactivate' }).click();
    await waitText(admin.locator('#lb-flash'), 'Finn was deactivated');
    await waitText(finn.page.locator('#lb-status'), 'no longer valid', { timeout: 15_000 });
    await waitText(finnRow, 'deactivated');
    // He cannot sign in any more.
    const login = await finn.context.newPage();
    await login.goto(`${server.url}/admin/login`);
    await login.getByLabel('Email').fill('finn@example.com');
    await login.getByLabel('Password').fill('finns good password');
    await login.getByRole('button', { name: 'Sign in' }).click();
    await waitText(login.locator('.error'), 'Invalid email or password');

    await waitText(admin.locator('#audit'), 'Admin deactivated finn@example.com'.replace('Admin', await adminName(admin)));
    await waitText(admin.locator('#audit'), 'changed the role of eve@example.com from editor to viewer');
  });

  test('editors are sent away from the users page; the last admin cannot demote themself', { timeout: 60_000 }, async () => {
    const editor = (await signIn(browser, server, ALICE)).page;
    contexts.push(editor.context());
    const refused = await editor.goto(`${server.url}/admin/users`);
    assert.equal(refused.status(), 403);
    await waitText(editor.locator('main h1'), 'Only admins manage people');
    assert.equal(await editor.getByRole('link', { name: 'People' }).count(), 0, 'no People link for editors');

    const admin = (await signIn(browser, server, ADMIN)).page;
    contexts.push(admin.context());
    await gotoLive(admin, server, '/admin/users');
    // ADA (the fixture's other admin) is demoted first, so the bootstrap admin is the last one.
    const ada = admin.locator('#users tr', { hasText: ADA.email });
    await ada.getByLabel(/^Role of/).selectOption('editor');
    await ada.getByRole('button', { name: /Change the role of/ }).click();
    await waitText(admin.locator('#lb-flash'), 'is now an editor');
    const me = admin.locator('#users tr', { hasText: '(you)' });
    await me.getByLabel(/^Role of/).selectOption('viewer');
    await me.getByRole('button', { name: /Change the role of/ }).click();
    await waitText(admin.locator('#lb-flash'), 'this is the last active admin');
  });

  test('one\'s own account: rename, see and end other sessions, revoke a token', { timeout: 60_000 }, async () => {
    const here = (await signIn(browser, server, ALICE)).page;
    contexts.push(here.context());
    const other = (await signIn(browser, server, ALICE)).page;
    contexts.push(other.context());
    await gotoLive(other, server, '/admin/entities');
    const api = await apiClient(server, ALICE);
    await gotoLive(here, server, '/admin');
    await here.locator('header .who').getByRole('link', { name: 'Alice' }).click();
    await here.waitForURL((u) => u.pathname === '/admin/account');
    await waitJoined(here);

    await here.getByLabel('Name', { exact: true }).fill('Alice Liddell');
    await here.getByRole('button', { name: 'Save name' }).click();
    await waitText(here.locator('#lb-flash'), 'Your name is now Alice Liddell.');

    const sessions = here.locator('#sessions tbody tr');
    await waitUntil(async () => (await sessions.count()) >= 2, { message: 'both browsers listed' });
    await waitText(here.locator('#sessions'), 'this browser');
    // End the other browser's session: its page is signed out at once; this one stays.
    const before = await sessions.count();
    // The other browser is the one most recently active after this one (sessions are listed by last activity).
    const otherRow = sessions.filter({ hasNotText: 'this browser' }).first();
    // Record every connection state this page goes through: it must stay joined (only that session's sockets close).
    await here.evaluate(() => {
      window.__states = [];
      new MutationObserver(() => window.__states.push(document.body.dataset.lbState)).observe(document.body, {
        attributes: true,
        attributeFilter: ['data-lb-state'],
      });
    });
    await otherRow.getByRole('button', { name: /^End the session of/ }).click();
    await waitText(here.locator('#lb-flash'), 'That session was ended.');
    await waitText(other.locator('#lb-status'), /signed out|no longer valid/, { timeout: 15_000 });
    await waitUntil(async () => (await here.locator('#sessions tbody tr').count()) === before - 1, { message: 'one session fewer' });
    await waitText(here.locator('#sessions'), 'this browser');
    assert.deepEqual(await here.evaluate(() => window.__states), [], 'this browser never left its page');

    // The API token made above is listed; revoking it makes it useless.
    const token = here.locator('#tokens tbody tr').first();
    await token.getByRole('button', { name: /^Revoke/ }).click();
    await waitText(here.locator('#lb-flash'), 'The token was revoked');
    const refused = await fetch(`${server.url}/api/entities`, { headers: { authorization: `Bearer ${api.token}` } });
    assert.equal(refused.status, 401);
  });
});

/** The signed-in admin's display name, as the header shows it. */
async function adminName(page) {
  return (await page.locator('header .who').textContent()).trim().split(' ')[0];
}
