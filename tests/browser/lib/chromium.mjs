// Launches the machine's Debian Chromium through playwright-core. Playwright's own browser downloads cannot work here
// (no network but the package registries), so the executable is always the system one: `scripts/ensure-chromium`
// installs it. Shared by the client unit tests and the end-to-end browser tests; nothing here knows about the app.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser; LIVEBATON_CHROMIUM overrides it. */
export const CHROMIUM_PATH = process.env.LIVEBATON_CHROMIUM || '/usr/bin/chromium';

/**
 * Flags for a headless run as root in a container: no sandbox (it needs user namespaces), no GPU, and none of the
 * background requests Chromium makes to Google's services (they would only time out without a network).
 */
export const CHROMIUM_ARGS = Object.freeze([
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

/**
 * Starts a headless Chromium. Each `browser.newContext()` gets a fresh profile (cookies, storage), so tests stay
 * independent; close the browser in an `after` hook.
 *
 * @param {import('playwright-core').LaunchOptions} [options] extra launch options (merged; `args` are appended)
 * @returns {Promise<import('playwright-core').Browser>}
 */
export async function launchBrowser(options = {}) {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: run scripts/ensure-chromium (installs Debian's chromium package)`);
  }
  const { args = [], ...rest } = options;
  return chromium.launch({
    headless: true,
    timeout: 30_000,
    ...rest,
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS, ...args],
  });
}
