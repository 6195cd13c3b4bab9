// The Compliance page in a real browser: log in, generate a PCI DSS report, see its controls,
// download the signed HTML, and render that HTML as a user would see it (a PNG in ARTIFACTS).
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD (required); ARTIFACTS (a directory for
// the downloaded report and its rendering; required); CHROMIUM (default /usr/bin/chromium).
// Prints one PASS line per step and "STEPS PASSED" at the end; exits 1 at the first failure.

import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const BASE = (process.env.VIGIL_URL || '').replace(/\/+$/, '');
const USER = process.env.VIGIL_USER || '';
const PASSWORD = process.env.VIGIL_PASSWORD || '';
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
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', acceptDownloads: true });
const page = await context.newPage();
page.setDefaultTimeout(60000);
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

await step('log in', async () => {
  await page.goto(`${BASE}/login`);
  await page.fill('#username', USER);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL((u) => u.pathname === '/ui/'), page.click('#login-button')]);
  // The login page probes the session before there is one (a 401 on purpose): errors count
  // from here on.
  errors.length = 0;
});

await step('open the Compliance page from the navigation', async () => {
  await page.click('[data-testid=nav-compliance]');
  await page.waitForSelector('[data-testid=report-generate]');
});

await step('generate a PCI DSS report and see every control with a status', async () => {
  await page.selectOption('[data-testid=report-framework]', 'pci-dss');
  await page.fill('[data-testid=report-from]', '-30d');
  await page.click('[data-testid=report-generate]');
  await page.waitForSelector('[data-testid=report-controls] tr[data-control="10.2.1.4"]');
  const rows = await page.$$eval('[data-testid=report-controls] tbody tr', (trs) => trs.map((t) => [t.dataset.control, t.dataset.status]));
  for (const id of ['10.2.1.1', '10.2.1.4', '10.2.2', '10.3.2', '10.4.1', '10.5.1', '10.7.2']) {
    assert(rows.some(([c]) => c === id), `control ${id} missing: ${JSON.stringify(rows)}`);
  }
  assert(rows.every(([, s]) => ['met', 'gap', 'failed'].includes(s)), JSON.stringify(rows));
  const invalid = rows.find(([c]) => c === '10.2.1.4');
  assert(invalid[1] === 'met', `10.2.1.4 should be met by the failed logins: ${invalid[1]}`);
  const ok = await page.getAttribute('[data-testid=report-integrity]', 'data-ok');
  assert(ok === 'true', 'the integrity line says the ledger verifies');
  await page.screenshot({ path: join(ARTIFACTS, 'compliance-page.png'), fullPage: true });
});

let html = '';
await step('download the signed HTML report', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=report-download-html]')]);
  const path = join(ARTIFACTS, 'report.html');
  await download.saveAs(path);
  html = readFileSync(path, 'utf8');
  assert(html.includes('id="control-10.2.1.4"'), 'the HTML names control 10.2.1.4');
  assert(html.includes('vigil-report/v1'), 'the HTML carries the signed note');
});

await step('render the downloaded report as a user would see it', async () => {
  const view = await context.newPage();
  await view.setContent(html, { waitUntil: 'load' });
  const title = await view.textContent('h1');
  assert(title.includes('PCI DSS'), title);
  const failed = await view.$$eval('td.failed', (tds) => tds.length);
  const met = await view.$$eval('td.met', (tds) => tds.length);
  assert(met > 0, 'some controls render as met');
  console.log(`     rendered: ${met} met, ${failed} failed`);
  await view.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
});

await step('no script errors on the way', async () => {
  assert(errors.length === 0, errors.join('\n'));
});
await browser.close();
console.log('STEPS PASSED');
