// The first login with the generated admin password, in a real browser: the UI opens on the
// account page with the notice and the change form whatever page was asked for; after the
// change the notice goes and the rest of the UI works.
//
// Environment: VIGIL_URL, VIGIL_PASSWORD (the generated one), VIGIL_NEW_PASSWORD; CHROMIUM
// (default /usr/bin/chromium), VIGIL_TIMEOUT_MS (default 20000).

import { chromium } from 'playwright-core';

const BASE = (process.env.VIGIL_URL || '').replace(/\/+$/, '');
const FIRST = process.env.VIGIL_PASSWORD || '';
const NEXT = process.env.VIGIL_NEW_PASSWORD || '';
const TIMEOUT = Number(process.env.VIGIL_TIMEOUT_MS || 20000);
if (!BASE || !FIRST || !NEXT) {
  console.error('FAIL setup: set VIGIL_URL, VIGIL_PASSWORD and VIGIL_NEW_PASSWORD');
  process.exit(1);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const errors = [];
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (err) => errors.push(`uncaught exception: ${err.message}`));

  // A bookmarked link to another page still lands on the change form.
  await page.goto(`${BASE}/login#/alerts`);
  await page.fill('#username', 'admin');
  await page.fill('#password', FIRST);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/ui/', { timeout: TIMEOUT }),
    page.click('#login-button'),
  ]);
  await page.waitForSelector('#must-change-password');
  await page.waitForSelector('#password-form');
  const view = await page.getAttribute('#view', 'data-view');
  if (view !== 'account') throw new Error(`expected the account page, got ${view}`);
  console.log('PASS the first login opens the change form with the notice');

  await page.fill('#pw-current', FIRST);
  await page.fill('#pw-new', NEXT);
  await page.fill('#pw-repeat', NEXT);
  await page.click('#pw-submit');
  await page.waitForFunction(() => /Password changed/.test(document.getElementById('pw-message').textContent));
  if (await page.locator('#must-change-password').count()) throw new Error('the notice stayed after the change');
  console.log('PASS the change succeeds and the notice goes');

  await page.evaluate(() => { location.hash = '#/alerts'; });
  await page.waitForFunction(() => document.getElementById('view').dataset.view === 'alerts');
  console.log('PASS the rest of the UI opens after the change');
  if (errors.length) throw new Error(errors.join('\n'));
  console.log('ALL STEPS PASSED');
} catch (err) {
  failed = true;
  console.log(`FAIL ${err.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
