// The Drills page in a real browser (issue 19): an analyst sees the bundled scenarios, runs
// ssh-brute-force with its Run button, and reads the report — every step with its status and
// latency; then the Alerts page lists none of the drill's alerts.
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, ARTIFACTS (required); CHROMIUM (default
// /usr/bin/chromium). Prints one PASS line per step and "STEPS PASSED" at the end; exits 1 at
// the first failure.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BASE = (process.env.VIGIL_URL || '').replace(/\/+$/, '');
const { VIGIL_USER: USER, VIGIL_PASSWORD: PASSWORD } = process.env;
const ARTIFACTS = process.env.ARTIFACTS || '';
if (!BASE || !USER || !PASSWORD || !ARTIFACTS) {
  console.error('FAIL setup: set VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD and ARTIFACTS');
  process.exit(1);
}
mkdirSync(ARTIFACTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const errors = [];
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-US' })).newPage();
page.setDefaultTimeout(90000);
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

await step('log in as an analyst', async () => {
  await page.goto(`${BASE}/login`);
  await page.fill('#username', USER);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL((u) => u.pathname === '/ui/'), page.click('#login-button')]);
  errors.length = 0;
});

await step('the Drills page lists the bundled scenarios, each with a Run button', async () => {
  await page.click('#nav-drills');
  await page.waitForSelector('[data-testid=drill-scenario]');
  const names = await page.locator('[data-testid=drill-scenario]').evaluateAll((rows) => rows.map((r) => r.dataset.scenario));
  for (const want of ['ssh-brute-force', 'web-scan', 'sudo-escalation', 'windows-credential-dumping', 'insider-probing']) {
    assert(names.includes(want), `scenario ${want} listed: ${names}`);
  }
  assert(await page.locator('[data-testid=drill-run][data-scenario=ssh-brute-force]').count() === 1, 'a Run button');
});

await step('running ssh-brute-force shows its report, every step with a status and latency', async () => {
  await page.click('[data-testid=drill-run][data-scenario=ssh-brute-force]');
  const report = page.locator('[data-testid=drill-report]').first();
  await report.waitFor();
  await page.waitForFunction(() => /ssh-brute-force: (passed|failed)/.test(document.querySelector('[data-testid=drill-status]').textContent));
  const outcome = await report.locator('[data-testid=drill-outcome]').textContent();
  assert(outcome.trim() === 'passed', `outcome ${outcome}`);
  const rows = await report.locator('[data-testid=drill-step]').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
  const byName = Object.fromEntries(rows.map((r) => [r[0], r]));
  assert(byName['ingest → stored'] && /passed/.test(byName['ingest → stored'][1]), `ingest step: ${JSON.stringify(rows)}`);
  assert(/^\d+\.\d ms$/.test(byName['ingest → stored'][2]), `a latency: ${byName['ingest → stored'][2]}`);
  assert(/13 of 13 events/.test(byName['ingest → stored'][3]), 'all events stored');
  const alertStep = byName['stored → alert: SSH brute force'];
  assert(alertStep && /passed/.test(alertStep[1]) && /SSH brute force/.test(alertStep[3]), `alert step: ${JSON.stringify(rows)}`);
  await page.screenshot({ path: join(ARTIFACTS, 'drill-report.png'), fullPage: true });
});

await step('the Alerts page does not list the drill\'s alerts', async () => {
  await page.click('#nav-alerts');
  await page.waitForSelector('#alerts-table');
  const text = await page.locator('#alerts-list').textContent();
  assert(!/SSH brute force/.test(text), 'no drill alert on the Alerts page');
});

assert(errors.length === 0, `browser errors: ${errors.join('; ')}`);
await browser.close();
console.log('STEPS PASSED');
