// The Compliance page in a real browser: log in, generate a PCI DSS report, see its controls,
// download the signed HTML, and render that HTML as a user would see it (a PNG in ARTIFACTS).
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD (required); ARTIFACTS (a directory for
// the downloaded report and its rendering; required); CHROMIUM (default /usr/bin/chromium).
// Prints one PASS line per step and "STEPS PASSED" at the end; exits 1 at the first failure.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setup, assert } from './lib.mjs';

const t = await setup([], { viewport: { width: 1280, height: 900 }, timeout: 60000, acceptDownloads: true });
const { page, context, gotoHash } = t;
const { ARTIFACTS } = t.env;

await t.step('log in', async () => {
  await t.login();
});

await t.step('open the Compliance page from the navigation', async () => {
  await page.click('[data-testid=nav-compliance]');
  await page.waitForSelector('[data-testid=report-generate]');
});

await t.step('generate a PCI DSS report and see every control with a status', async () => {
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
await t.step('download the signed HTML report', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=report-download-html]')]);
  const path = join(ARTIFACTS, 'report.html');
  await download.saveAs(path);
  html = readFileSync(path, 'utf8');
  assert(html.includes('id="control-10.2.1.4"'), 'the HTML names control 10.2.1.4');
  assert(html.includes('vigil-report/v1'), 'the HTML carries the signed note');
});

await t.step('render the downloaded report as a user would see it', async () => {
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

await t.done();
