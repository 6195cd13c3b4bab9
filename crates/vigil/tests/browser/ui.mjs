// End-to-end browser test of the Vigil web UI.
//
// Plain Node ES module, no test framework: drives Debian's Chromium through
// playwright-core against a running Vigil server, prints one PASS line per
// step and exits 1 at the first failing step (naming it).
//
// Environment:
//   VIGIL_URL            base URL of the server, e.g. http://127.0.0.1:8080 (required)
//   VIGIL_USER           user with a triage role (admin/analyst)            (required)
//   VIGIL_PASSWORD       its password                                        (required)
//   VIGIL_VIEWER_USER    optional viewer account: checks that triage/verify buttons are hidden
//   VIGIL_VIEWER_PASSWORD
//   SCREENSHOT_DIR       optional: screenshots at 1280x800 and 1920x1080 are written here
//   CHROMIUM             optional: browser binary (default /usr/bin/chromium)
//   VIGIL_TIMEOUT_MS     optional: per-wait timeout (default 20000)
//   HEADFUL=1            optional: show the browser

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BASE = (process.env.VIGIL_URL || '').replace(/\/+$/, '');
const USER = process.env.VIGIL_USER || '';
const PASSWORD = process.env.VIGIL_PASSWORD || '';
const VIEWER = process.env.VIGIL_VIEWER_USER || '';
const VIEWER_PASSWORD = process.env.VIGIL_VIEWER_PASSWORD || '';
const SHOTS = process.env.SCREENSHOT_DIR || '';
const TIMEOUT = Number(process.env.VIGIL_TIMEOUT_MS || 20000);

if (!BASE || !USER || !PASSWORD) {
  console.error('FAIL setup: set VIGIL_URL, VIGIL_USER and VIGIL_PASSWORD');
  process.exit(1);
}
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

const SEED_QUERY = 'event.category=authentication event.outcome=failure';
const XSS_TEXT = '<img src=x onerror=alert(1)>';

// ------------------------------------------------------------------ harness

class StepError extends Error {}
function assert(cond, msg) {
  if (!cond) throw new StepError(msg);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: !process.env.HEADFUL,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

const consoleErrors = []; // JS errors, console.error, CSP violations
const dialogs = [];

// Chromium logs every non-2xx fetch as "Failed to load resource"; those caused on
// purpose by the test (wrong password 401, query error 400, the anonymous probe)
// are expected. Anything else (404 for an asset, 500) is an error.
const EXPECTED_HTTP = /Failed to load resource: the server responded with a status of (400|401|403|429)\b/;

function instrument(page, label) {
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (EXPECTED_HTTP.test(text)) return;
    consoleErrors.push(`[${label}] console.error: ${text}${msg.location() && msg.location().url ? ` (${msg.location().url})` : ''}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`[${label}] uncaught exception: ${err.message}`));
  page.on('dialog', async (d) => {
    dialogs.push(`[${label}] ${d.type()}: ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
}

async function newPage(label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
  // The test's own instrumentation (injected by the driver, not subject to the page's CSP):
  // report CSP violations as console errors so that step 12 sees them.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile || '?'}:${e.lineNumber || 0}`);
    });
  });
  const page = await context.newPage();
  instrument(page, label);
  return page;
}

let stepNo = 0;
let currentPage = null;
async function step(name, fn, numbered = true) {
  if (numbered) stepNo++;
  const n = numbered ? String(stepNo) : `(${name.split(' ')[0]})`;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`PASS ${numbered ? `${n}.` : '-'} ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    console.error(`FAIL ${numbered ? `${n}.` : '-'} ${name}`);
    console.error(`     ${err instanceof StepError ? err.message : err.stack || err}`);
    if (currentPage) {
      try {
        const banner = await currentPage.locator('#error-banner:not([hidden])').textContent({ timeout: 500 }).catch(() => null);
        if (banner) console.error(`     error banner on the page: ${banner.trim()}`);
        console.error(`     page URL: ${currentPage.url()}`);
        if (SHOTS) await currentPage.screenshot({ path: join(SHOTS, `FAILED-step-${numbered ? n : 'screenshots'}.png`), fullPage: true });
      } catch (_) { /* best effort */ }
    }
    if (consoleErrors.length) console.error(`     console errors so far:\n       ${consoleErrors.join('\n       ')}`);
    await browser.close().catch(() => {});
    process.exit(1);
  }
}

step.unnumbered = (name, fn) => step(name, fn, false);

async function shot(page, name) {
  if (!SHOTS) return;
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

async function login(page, user, password) {
  await page.goto(`${BASE}/login`);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/ui/', { timeout: TIMEOUT }),
    page.click('#login-button'),
  ]);
  await page.waitForFunction(() => document.getElementById('user-name')?.textContent.trim() !== '');
}

/** Mark the current #result-count so that the next search's fresh one can be awaited. */
async function markResults(page) {
  await page.evaluate(() => {
    const el = document.getElementById('result-count');
    if (el) el.dataset.old = '1';
    const q = document.getElementById('query-error-text');
    if (q) q.dataset.old = '1';
  });
}

async function waitFreshResults(page) {
  await page.waitForFunction(() => {
    const el = document.getElementById('result-count');
    const err = document.getElementById('query-error-text');
    const banner = document.getElementById('error-banner');
    return (el && !el.dataset.old) || (err && !err.dataset.old && !document.getElementById('query-error').hidden) || (banner && !banner.hidden);
  });
  const banner = await page.locator('#error-banner').evaluate((b) => (b.hidden ? null : b.textContent.trim()));
  assert(!banner, `the search failed with an error banner: ${banner}`);
  const qerr = await page.locator('#query-error').evaluate((b) => (b.hidden ? null : b.textContent.trim()));
  assert(!qerr, `the query was rejected: ${qerr}`);
  return Number(await page.locator('#result-count').getAttribute('data-count'));
}

async function runQuery(page, query, range = '-24h') {
  const sel = page.locator('#time-range');
  if ((await sel.inputValue()) !== range) {
    await markResults(page);
    await sel.selectOption(range);
  }
  await page.fill('#query', query);
  await markResults(page);
  await page.press('#query', 'Enter');
}

async function noErrorBanner(page, where) {
  const banner = await page.locator('#error-banner').evaluate((b) => (b.hidden ? null : b.textContent.trim()));
  assert(!banner, `${where}: error banner shown: ${banner}`);
}

async function gotoHash(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

// ------------------------------------------------------------------ steps

const anon = await newPage('anonymous');
currentPage = anon;

await step('GET /ui/ without a session redirects to /login', async () => {
  const resp = await anon.goto(`${BASE}/ui/`);
  const url = new URL(anon.url());
  assert(url.pathname === '/login', `expected to end at /login, got ${anon.url()}`);
  assert(resp && resp.ok(), `the login page answered HTTP ${resp && resp.status()}`);
  await anon.waitForSelector('#login-form');
  const csp = resp.headers()['content-security-policy'] || '';
  assert(csp.includes("script-src 'self'"), `login page lacks the strict CSP header (got: ${csp || 'none'})`);
});

await step('a wrong password shows the error in #login-error', async () => {
  await anon.fill('#username', USER);
  await anon.fill('#password', `${PASSWORD}-definitely-wrong`);
  await anon.click('#login-button');
  const box = anon.locator('#login-error');
  await box.waitFor({ state: 'visible' });
  const text = (await box.textContent()).trim();
  assert(text.length > 3, 'login error element is empty');
  assert(/wrong|invalid|incorrect|password/i.test(text), `unexpected login error text: ${text}`);
  assert((await box.getAttribute('role')) === 'alert', '#login-error should have role=alert');
  assert(new URL(anon.url()).pathname === '/login', 'stayed on /login');
});

const page = await newPage('admin');
currentPage = page;

await step('log in lands on the search page showing the user name', async () => {
  await login(page, USER, PASSWORD);
  await page.waitForSelector('#query');
  const name = (await page.textContent('#user-name')).trim();
  assert(name === USER, `header shows user "${name}", expected "${USER}"`);
  const role = (await page.textContent('#user-role')).trim();
  assert(role.length > 0, 'header shows no role');
  assert(await page.locator('#logout-button').isVisible(), 'no Log out button');
  const view = await page.getAttribute('#view', 'data-view');
  assert(view === 'search', `default route is "${view}", expected search`);
});

await step('seed query: histogram bars, result rows, expandable fields, click-to-filter', async () => {
  await runQuery(page, SEED_QUERY, '-24h');
  const before = await waitFreshResults(page);
  assert(before >= 1, `expected at least 1 result row, got ${before}`);
  await page.waitForSelector('#histogram-svg rect.bar');
  const bars = await page.locator('#histogram-svg rect.bar').count();
  assert(bars >= 1, 'histogram has no bars');
  const titled = await page.locator('#histogram-svg rect.bar > title').count();
  assert(titled === bars, 'every histogram bar needs a <title> tooltip');
  const rows = await page.locator('[data-testid="event-row"]').count();
  assert(rows === before, `result count says ${before} but ${rows} event rows are shown`);
  // expand rows (up to 10) until one shows a clickable source.ip value
  let ipBtn = null;
  for (let i = 0; i < Math.min(rows, 10) && !ipBtn; i++) {
    await page.locator('[data-testid="event-row"]').nth(i).locator('[data-testid="expand-event"]').click();
    const fields = page.locator('[data-testid="event-fields"]').nth(i);
    await fields.waitFor({ state: 'visible' });
    const nFields = await fields.locator('[data-testid="field-value"]').count();
    assert(nFields >= 3, `expanded event shows only ${nFields} fields`);
    const b = fields.locator('[data-testid="field-value"][data-field="source.ip"]');
    if (await b.count() === 1) ipBtn = b;
  }
  assert(ipBtn, 'no expanded event has a clickable source.ip value');
  const ip = (await ipBtn.textContent()).trim();
  await markResults(page);
  await ipBtn.click();
  const after = await waitFreshResults(page);
  const q = await page.inputValue('#query');
  assert(q.includes(`source.ip="${ip}"`), `query was not extended with source.ip="${ip}": ${q}`);
  assert(after >= 1 && after <= before, `filtered search returned ${after} rows, expected 1..${before}`);
  const exportHref = await page.getAttribute('#export-csv', 'href');
  assert(exportHref.startsWith('/api/v1/export?') && exportHref.includes('format=csv'), `bad export link ${exportHref}`);
});

await step('stats query shows a table with source.ip and count columns', async () => {
  await runQuery(page, 'event.outcome=failure | stats count by source.ip');
  await waitFreshResults(page);
  await page.waitForSelector('#stats-table');
  const heads = (await page.locator('#stats-table thead th').allTextContents()).map((t) => t.trim());
  assert(heads.includes('source.ip') && heads.includes('count'), `stats table headers are ${JSON.stringify(heads)}`);
  const n = await page.locator('#stats-table [data-testid="stats-row"]').count();
  assert(n >= 1, 'stats table has no rows');
});

await step('a syntax error shows the message and a column marker', async () => {
  const bad = 'user.name=';
  await runQuery(page, bad);
  await page.waitForFunction(() => !document.getElementById('query-error').hidden && !document.getElementById('query-error-text')?.dataset.old);
  const msg = (await page.textContent('#query-error-text')).trim();
  assert(msg.length > 0, 'query error message is empty');
  const caret = page.locator('#query-error-caret');
  assert(await caret.count() === 1, `no column marker shown (message: ${msg}); does the 400 response carry "column"?`);
  const col = Number(await caret.getAttribute('data-column'));
  assert(col >= 1 && col <= bad.length + 1, `column ${col} is outside the query`);
  const caretText = await caret.textContent();
  assert(caretText === ' '.repeat(col - 1) + '^', 'caret is not under the reported column');
  await noErrorBanner(page, 'query error must be shown at the query, not only as a banner');
  // a second kind of error
  await runQuery(page, '* | stats bogus(');
  await page.waitForFunction(() => !document.getElementById('query-error').hidden && !document.getElementById('query-error-text')?.dataset.old);
  assert(await page.locator('#query-error-caret').count() === 1, 'no column marker for "* | stats bogus("');
});

await step('attacker-controlled event text is shown as text (no XSS)', async () => {
  await runQuery(page, 'onerror');
  const n = await waitFreshResults(page);
  assert(n >= 1, 'the search for "onerror" found no event (is the XSS test event ingested?)');
  const texts = await page.locator('[data-testid="event-row"] .event-message').allTextContents();
  assert(texts.some((t) => t.includes(XSS_TEXT)), `no row shows the literal text ${XSS_TEXT}`);
  // expand every row: the field table is another place data is rendered
  for (const b of await page.locator('[data-testid="expand-event"]').all()) await b.click();
  await page.waitForTimeout(300);
  const imgs = await page.evaluate(() => document.querySelectorAll('img').length);
  assert(imgs === 0, `${imgs} <img> element(s) exist in the page`);
  const scripts = await page.evaluate(() => [...document.querySelectorAll('script')].filter((s) => s.src === '' || !s.src.endsWith('/assets/app.js')).length);
  assert(scripts === 0, 'an unexpected <script> element exists in the page');
  assert(dialogs.length === 0, `a dialog fired: ${dialogs.join('; ')}`);
});

await step('alerts: queue, details with events, acknowledge with a comment', async () => {
  await gotoHash(page, '#/alerts?status=open');
  await page.waitForSelector('#alerts-table');
  const open = page.locator('[data-testid="alert-row"][data-status="open"]');
  await open.first().waitFor();
  assert(await open.count() >= 1, 'no open alert in the queue');
  const id = await open.first().getAttribute('data-alert-id');
  await open.first().locator('[data-testid="alert-link"]').click();
  await page.waitForFunction((i) => location.hash === `#/alerts/${i}`, id);
  await page.waitForSelector('#alert-detail #alert-status');
  await page.locator('[data-testid="alert-event"]').first().waitFor();
  const evs = await page.locator('[data-testid="alert-event"]').count();
  assert(evs >= 1, `alert #${id} shows no matching events`);
  const comment = `checked by the browser test ${Date.now()}`;
  await page.fill('#triage-comment', comment);
  await page.click('#ack-button');
  await page.waitForSelector('#alert-status[data-status="acknowledged"]');
  await page.waitForFunction((c) => document.getElementById('alert-history')?.textContent.includes(c), comment);
  await noErrorBanner(page, 'after acknowledging');
  await shot(page, 'alert-detail-1280x800');
  // the queue shows it as acknowledged now
  await gotoHash(page, '#/alerts?status=acknowledged');
  await page.waitForSelector(`[data-testid="alert-row"][data-alert-id="${id}"][data-status="acknowledged"]`);
});

const PANELS = ['panel-failed-logins', 'panel-top-sources', 'panel-alerts-by-level', 'panel-events-per-source', 'panel-ingest-rate'];

async function waitDashboards(p) {
  await p.waitForFunction((ids) => ids.every((id) => {
    const el = document.getElementById(id);
    return el && !el.querySelector('.spinner') && (el.querySelector('svg rect.bar, tbody tr, .inline-error') !== null);
  }), PANELS);
}

await step('dashboards: all five panels render', async () => {
  await gotoHash(page, '#/dashboards');
  await waitDashboards(page);
  for (const id of PANELS) {
    const err = await page.locator(`#${id} .inline-error`).allTextContents();
    assert(err.length === 0, `panel ${id} shows an error: ${err.join(' ')}`);
    const n = await page.locator(`#${id} svg rect.bar, #${id} tbody tr`).count();
    assert(n >= 1, `panel ${id} has no bars or rows`);
  }
  await noErrorBanner(page, 'dashboards');
  const note = await page.textContent('#dash-updated');
  assert(/Updated/.test(note), 'dashboards do not say when they were updated');
});

await step('integrity: checkpoint, key, and a verification that reports intact', async () => {
  await gotoHash(page, '#/integrity');
  await page.waitForSelector('#verifier-key');
  const cp = page.locator('#checkpoint');
  assert(await cp.evaluate((e) => e.tagName) === 'PRE', `no signed checkpoint shown: ${(await cp.textContent()).trim()}`);
  assert((await cp.textContent()).trim().split('\n').length >= 3, 'checkpoint text looks incomplete');
  const key = (await page.textContent('#verifier-key')).trim();
  assert(key.length > 10 && key !== '—', `verifier key missing: ${key}`);
  await page.click('#verify-button');
  await page.waitForSelector('#verify-result', { timeout: Math.max(TIMEOUT, 120000) });
  await page.waitForFunction(() => !document.getElementById('verify-button').disabled, null, { timeout: Math.max(TIMEOUT, 120000) });
  await noErrorBanner(page, 'verification');
  const result = (await page.textContent('#verify-result')).trim();
  assert(/intact|ok/i.test(result) && !/FAILED/.test(result), `verification result: ${result}`);
  assert(await page.locator('#verify-time time').count() === 1, 'verification time is not shown');
});

await step('rules and sources pages list at least one each', async () => {
  await gotoHash(page, '#/rules');
  await page.waitForSelector('#rules-table');
  const rules = await page.locator('[data-testid="rule-row"]').count();
  const loaded = await page.locator('[data-testid="rule-row"] [data-status="loaded"]').count();
  assert(rules >= 1 && loaded >= 1, `rules page lists ${rules} rows, ${loaded} loaded`);
  await gotoHash(page, '#/sources');
  await page.waitForSelector('#sources-table');
  const sources = await page.locator('[data-testid="source-row"]').count();
  assert(sources >= 1, 'sources page lists no source');
  await noErrorBanner(page, 'rules/sources');
});

// Screenshots: not a numbered step, but a failure here is still fatal and reported.
if (SHOTS) await step.unnumbered('screenshots at 1280x800 and 1920x1080', async () => {
  for (const [w, hgt] of [[1280, 800], [1920, 1080]]) {
    await page.setViewportSize({ width: w, height: hgt });
    await gotoHash(page, `#/search?${new URLSearchParams({ q: SEED_QUERY, from: '-24h' })}`);
    await page.waitForSelector('#histogram-svg');
    await page.waitForSelector('[data-testid="event-row"]');
    await page.locator('[data-testid="expand-event"]').first().click();
    await shot(page, `search-${w}x${hgt}`);
    await gotoHash(page, '#/dashboards');
    await waitDashboards(page);
    await shot(page, `dashboards-${w}x${hgt}`);
    for (const hash of ['#/alerts?status=', '#/integrity', '#/rules', '#/sources']) {
      await gotoHash(page, hash);
      await page.waitForFunction(() => [...document.querySelectorAll('#view .spinner')].every((sp) => sp.offsetParent === null));
      await shot(page, `${hash.slice(2).split('?')[0]}-${w}x${hgt}`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  console.log(`     screenshots written to ${SHOTS}`);
});

await step('no console errors and no CSP violations', async () => {
  assert(consoleErrors.length === 0, `console errors / CSP violations:\n       ${consoleErrors.join('\n       ')}`);
  assert(dialogs.length === 0, `dialogs fired: ${dialogs.join('; ')}`);
});

await step('log out returns to /login and /ui/ redirects again', async () => {
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/login'),
    page.click('#logout-button'),
  ]);
  await page.waitForSelector('#login-form');
  await page.goto(`${BASE}/ui/`);
  assert(new URL(page.url()).pathname === '/login', `after logout /ui/ went to ${page.url()}`);
  const status = await page.evaluate(async () => (await fetch('/api/v1/session', { credentials: 'same-origin' })).status);
  assert(status === 401, `GET /api/v1/session after logout answered ${status}`);
  assert(consoleErrors.length === 0, `console errors after logout:\n       ${consoleErrors.join('\n       ')}`);
});

if (VIEWER && VIEWER_PASSWORD) {
  const vp = await newPage('viewer');
  currentPage = vp;
  await step('viewer role: no triage or verify buttons', async () => {
    await login(vp, VIEWER, VIEWER_PASSWORD);
    const role = (await vp.textContent('#user-role')).trim();
    assert(role === 'viewer', `viewer account has role "${role}"`);
    await gotoHash(vp, '#/alerts?status=');
    await vp.waitForSelector('#alerts-table');
    const link = vp.locator('[data-testid="alert-link"]').first();
    if (await link.count()) {
      await link.click();
      await vp.waitForSelector('#alert-detail #alert-status');
      assert(await vp.locator('#ack-button, #close-button, #reopen-button').count() === 0, 'viewer sees triage buttons');
    }
    await gotoHash(vp, '#/integrity');
    await vp.waitForSelector('#verifier-key');
    assert(await vp.locator('#verify-button').count() === 0, 'viewer sees the Verify button');
    // the API refuses anyway: a direct POST gets 403 with an error text
    const r = await vp.evaluate(async () => {
      const s = await (await fetch('/api/v1/session', { credentials: 'same-origin' })).json();
      const resp = await fetch('/api/v1/integrity/verify', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf }, body: '{}' });
      return { status: resp.status, body: await resp.json().catch(() => null) };
    });
    assert(r.status === 403 && r.body && typeof r.body.error === 'string', `viewer POST /api/v1/integrity/verify answered ${r.status} ${JSON.stringify(r.body)}`);
    assert(consoleErrors.length === 0, `console errors:\n       ${consoleErrors.join('\n       ')}`);
  });
} else {
  console.log('SKIP viewer checks (set VIGIL_VIEWER_USER and VIGIL_VIEWER_PASSWORD)');
}

await browser.close();
console.log(`ALL ${stepNo} STEPS PASSED`);
