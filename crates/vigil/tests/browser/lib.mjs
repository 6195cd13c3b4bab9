// What every browser test script shares: its environment, Debian's Chromium through
// playwright-core, numbered PASS/FAIL steps with a screenshot on failure, and signing in.
//
//   import { setup, assert } from './lib.mjs';
//   const t = await setup(['ALERT_ID']);            // VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, ARTIFACTS too
//   await t.step('log in', () => t.login());
//   await t.step('…', async () => { await t.gotoHash('#/alerts'); assert(…, 'why'); });
//   await t.done();                                 // no page errors; prints STEPS PASSED
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD and ARTIFACTS (a directory for screenshots
// and downloads) always, plus the names a script asks for; CHROMIUM (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Throws `msg` unless `cond` holds. */
export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

/**
 * Reads the environment (exits 1 naming what is missing), starts Chromium and opens one page.
 * Returns { env, base, browser, context, page, errors, step, login, gotoHash, done }.
 */
export async function setup(names = [], { viewport = { width: 1400, height: 900 }, timeout = 30000, acceptDownloads = false } = {}) {
  const required = ['VIGIL_URL', 'VIGIL_USER', 'VIGIL_PASSWORD', 'ARTIFACTS', ...names];
  const missing = required.filter((n) => !process.env[n]);
  if (missing.length) {
    console.error(`FAIL setup: set ${missing.join(', ')}`);
    process.exit(1);
  }
  const env = Object.fromEntries(required.map((n) => [n, process.env[n]]));
  const base = env.VIGIL_URL.replace(/\/+$/, '');
  mkdirSync(env.ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const context = await browser.newContext({ viewport, locale: 'en-US', acceptDownloads });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });

  async function step(name, fn) {
    try {
      await fn();
      console.log(`PASS ${name}`);
    } catch (err) {
      console.error(`FAIL ${name}\n     ${err.stack || err}`);
      await page.screenshot({ path: join(env.ARTIFACTS, 'FAILED.png'), fullPage: true }).catch(() => {});
      await browser.close();
      process.exit(1);
    }
  }

  /** Signs in on the login page and waits for the UI; clears the errors seen so far. */
  async function login(user = env.VIGIL_USER, password = env.VIGIL_PASSWORD) {
    await page.goto(`${base}/login`);
    await page.fill('#username', user);
    await page.fill('#password', password);
    await Promise.all([page.waitForURL((u) => u.pathname === '/ui/'), page.click('#login-button')]);
    errors.length = 0;
  }

  /** Moves the single-page UI to `hash` (`#/alerts/7`). */
  async function gotoHash(hash) {
    await page.evaluate((h) => { location.hash = h; }, hash);
  }

  /** Checks the page logged no errors, closes the browser and prints STEPS PASSED. */
  async function done() {
    await step('no page errors or console errors', async () => {
      assert(errors.length === 0, errors.join('\n'));
    });
    await browser.close();
    console.log('STEPS PASSED');
  }

  return { env, base, browser, context, page, errors, step, login, gotoHash, done };
}
