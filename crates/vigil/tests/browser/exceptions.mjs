// Rule exceptions in a real browser (issue 19): an analyst opens an alert, suppresses further
// alerts for its group with a reason, sees the exception listed on the alert and on the rule
// in the Rules page, then removes it.
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, ALERT_ID, RULE_ID, GROUP_IP (required);
// ARTIFACTS (screenshots); CHROMIUM (default /usr/bin/chromium).
// Prints one PASS line per step and "STEPS PASSED" at the end; exits 1 at the first failure.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BASE = (process.env.VIGIL_URL || '').replace(/\/+$/, '');
const { VIGIL_USER: USER, VIGIL_PASSWORD: PASSWORD, ALERT_ID, RULE_ID, GROUP_IP } = process.env;
const ARTIFACTS = process.env.ARTIFACTS || '';
if (!BASE || !USER || !PASSWORD || !ALERT_ID || !RULE_ID || !GROUP_IP || !ARTIFACTS) {
  console.error('FAIL setup: set VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, ALERT_ID, RULE_ID, GROUP_IP and ARTIFACTS');
  process.exit(1);
}
mkdirSync(ARTIFACTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const errors = [];
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-US' })).newPage();
page.setDefaultTimeout(30000);
page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });

async function step(name, fn) {
  try {
    await fn();
    console.log(`PASS ${name}`);
  } catch (err) {
    console.error(`FAIL ${name}\n     ${err.stack || err}`);
    await page.screenshot({ path: join(ARTIFACTS, 'FAILED.png'), fullPage: true }).catch(() => {});
    await browser.close();
    process.exit(1);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
async function gotoHash(hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

await step('log in as an analyst', async () => {
  await page.goto(`${BASE}/login`);
  await page.fill('#username', USER);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL((u) => u.pathname === '/ui/'), page.click('#login-button')]);
  errors.length = 0;
});

await step('suppress the alert group with a reason, from the alert', async () => {
  await gotoHash(`#/alerts/${ALERT_ID}`);
  await page.waitForSelector('#exceptions-panel [data-testid=exceptions] li');
  const mine = () => page.locator('#exceptions-panel [data-testid=exception]', { hasText: `source.ip=${GROUP_IP}` });
  assert(await mine().count() === 0, 'no exception for this group yet');
  await page.fill('[data-testid=exception-reason]', 'authorised scan from the audit team');
  await page.fill('[data-testid=exception-days]', '3');
  const button = page.locator('[data-testid=exception-add-suppress]');
  assert((await button.textContent()).includes(`source.ip=${GROUP_IP}`), await button.textContent());
  await button.click();
  const item = mine();
  await item.waitFor();
  const text = await item.textContent();
  assert(await item.getAttribute('data-kind') === 'suppress', 'a suppress exception');
  assert(await item.getAttribute('data-expired') === 'false', 'in force');
  assert(text.includes(`suppresses alerts for source.ip=${GROUP_IP}`) && text.includes('authorised scan from the audit team') && text.includes(USER) && text.includes('until'), text);
  await page.screenshot({ path: join(ARTIFACTS, 'alert-exception.png'), fullPage: true });
});

await step('the exception shows on the rule', async () => {
  // The detector reloads the rules within about two seconds of the file changing.
  let text = '';
  for (let i = 0; i < 40 && !text.includes('authorised scan'); i++) {
    await gotoHash('#/search');
    await gotoHash('#/rules');
    await page.waitForSelector(`[data-testid=rule-row][data-rule-id="${RULE_ID}"]`);
    text = (await page.locator(`[data-testid=rule-row][data-rule-id="${RULE_ID}"] [data-testid=rule-exceptions]`).textContent().catch(() => '')) || '';
    if (!text.includes('authorised scan')) await page.waitForTimeout(250);
  }
  assert(text.includes(`suppresses alerts for source.ip=${GROUP_IP}`) && text.includes('authorised scan from the audit team'), `rule row: ${text}`);
});

await step('remove it from the alert', async () => {
  await gotoHash(`#/alerts/${ALERT_ID}`);
  const mine = page.locator('#exceptions-panel [data-testid=exception]', { hasText: `source.ip=${GROUP_IP}` });
  await mine.waitFor();
  await mine.locator('[data-testid=exception-remove]').click();
  await mine.waitFor({ state: 'detached' });
});

await step('no script errors', async () => {
  assert(errors.length === 0, errors.join('\n'));
});

await browser.close();
console.log('STEPS PASSED');
