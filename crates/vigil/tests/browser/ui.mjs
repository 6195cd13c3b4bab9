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

async function newPage(label, contextOptions = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', ...contextOptions });
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
  const previous = page.locator('#previous-stop');
  assert(await previous.getAttribute('data-state') === 'none', `previous run: ${await previous.getAttribute('data-state')}`);
  assert(/first start/.test(await previous.textContent()), `previous run text: ${await previous.textContent()}`);
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

// ------------------------------------------------------------------ custom time range
// In a browser context with a fixed, non-UTC time zone without DST (UTC+05:30), so that the
// conversion of the local From/To inputs to RFC 3339 UTC is checked exactly.

const TZ = 'Asia/Kolkata';
const TZ_OFFSET_MS = 330 * 60e3;
const rp = await newPage('custom-range', { timezoneId: TZ });
currentPage = rp;
const searches = []; // bodies of POST /api/v1/search sent by the page
rp.on('request', (req) => {
  if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/v1/search') searches.push(req.postDataJSON());
});
const mainSearches = () => searches.filter((b) => !/\|\s*timechart\b/.test(b.query));
const histoSearches = () => searches.filter((b) => /\|\s*timechart\b/.test(b.query));
/** An instant as the datetime-local value the page shows in TZ (minutes). */
const localValue = (ms) => new Date(ms + TZ_OFFSET_MS).toISOString().slice(0, 16);
/** An instant (whole minutes) as the RFC 3339 UTC text the page must send. */
const utcValue = (ms) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
const hashParams = (p) => new URLSearchParams(new URL(p.url()).hash.split('?')[1] || '');
const MIN = 60e3;
const customRange = {}; // the range of the step below, for the later steps

await step('custom time range: local From/To sent as UTC, shown in the URL hash', async () => {
  await login(rp, USER, PASSWORD);
  await rp.waitForSelector('#query');
  await rp.selectOption('#time-range', 'custom');
  await rp.locator('#range-from').waitFor({ state: 'visible' });
  await rp.locator('#range-to').waitFor({ state: 'visible' });
  const zone = await rp.textContent('#range-zone');
  assert(zone.includes('+05:30'), `the custom range does not say which time zone it reads: "${zone}"`);
  assert(mainSearches().length === 0, 'choosing "Custom…" already ran a search');
  // the last 2 hours, to whole minutes, and a minute past now
  const now = Date.now();
  customRange.from = Math.floor((now - 2 * 3600e3) / MIN) * MIN;
  customRange.to = Math.ceil(now / MIN) * MIN + MIN;
  await rp.fill('#range-from', localValue(customRange.from));
  await rp.fill('#range-to', localValue(customRange.to));
  await rp.fill('#query', SEED_QUERY);
  await markResults(rp);
  await rp.press('#range-to', 'Enter'); // Enter in a date field applies the range
  const n = await waitFreshResults(rp);
  assert(n >= 1, `expected rows for the last 2 hours, got ${n}`);
  assert(await rp.locator('[data-testid="event-row"]').count() === n, 'result count and rows differ');
  const hp = hashParams(rp);
  customRange.hash = new URL(rp.url()).hash;
  assert(hp.get('q') === SEED_QUERY, `URL hash q=${hp.get('q')}`);
  assert(hp.get('from') === utcValue(customRange.from), `URL hash from=${hp.get('from')}, expected ${utcValue(customRange.from)} (local ${localValue(customRange.from)} in ${TZ})`);
  assert(hp.get('to') === utcValue(customRange.to), `URL hash to=${hp.get('to')}, expected ${utcValue(customRange.to)}`);
  const main = mainSearches().at(-1);
  assert(main && main.query === SEED_QUERY && main.from === hp.get('from') && main.to === hp.get('to'),
    `the search request does not carry the custom range: ${JSON.stringify(main)}`);
  await rp.waitForSelector('#histogram-svg');
  const histo = histoSearches().at(-1);
  const span = /span=(\w+)/.exec(histo && histo.query || '');
  assert(histo && span && histo.from === main.from && histo.to === main.to, `histogram request: ${JSON.stringify(histo)}`);
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[span[1].slice(-1)] * Number(span[1].slice(0, -1));
  const buckets = (customRange.to - customRange.from) / unit;
  assert(buckets >= 20 && buckets <= 150, `histogram span ${span[1]} gives ${buckets} buckets for 2 hours`);
  assert(await rp.inputValue('#time-range') === 'custom', 'the picker does not show Custom');
});

await step('From after To: inline error, and no request is sent', async () => {
  const sent = searches.length;
  const hash = new URL(rp.url()).hash;
  await rp.fill('#range-from', localValue(customRange.to + 3600e3));
  await rp.click('#run-search');
  const err = rp.locator('#range-error');
  await err.waitFor({ state: 'visible' });
  const text = (await err.textContent()).trim();
  assert(/before/i.test(text), `unexpected range error text: ${text}`);
  assert(await err.getAttribute('role') === 'alert', '#range-error should have role=alert');
  assert(await rp.getAttribute('#range-from', 'aria-invalid') === 'true', 'From is not marked invalid');
  await rp.press('#query', 'Enter'); // Enter in the query bar is refused too
  await rp.waitForTimeout(500);
  assert(searches.length === sent, `${searches.length - sent} search request(s) were sent with From after To`);
  assert(new URL(rp.url()).hash === hash, `the URL changed to ${rp.url()}`);
  await noErrorBanner(rp, 'range error');
  assert(await rp.locator('#query-error').isHidden(), 'the range error is shown as a query error');
});

await step('reloading the page with that hash runs the same search again', async () => {
  searches.length = 0;
  assert(new URL(rp.url()).hash === customRange.hash, 'the hash is not the one of the custom search');
  await rp.reload();
  await rp.waitForSelector('#result-count');
  const n = Number(await rp.getAttribute('#result-count', 'data-count'));
  assert(n >= 1, `the reloaded search shows ${n} rows`);
  const hp = hashParams(rp);
  const main = mainSearches().at(-1);
  assert(main && main.query === SEED_QUERY && main.from === utcValue(customRange.from) && main.to === utcValue(customRange.to),
    `after reload the search sent was ${JSON.stringify(main)}`);
  assert(hp.get('from') === main.from && hp.get('to') === main.to, `the hash changed on reload: ${rp.url()}`);
  assert(await rp.inputValue('#query') === SEED_QUERY, 'the query bar does not show the query');
  assert(await rp.inputValue('#time-range') === 'custom', 'the picker does not show Custom after reload');
  const fromShown = await rp.inputValue('#range-from');
  assert(fromShown.slice(0, 16) === localValue(customRange.from), `From shows ${fromShown}, expected ${localValue(customRange.from)}`);
  assert(await rp.locator('#range-error').isHidden(), 'a range error shows after reload');
});

await step('a histogram bar zooms in as a custom range; Back restores the previous search', async () => {
  await rp.waitForSelector('#histogram-svg rect.bar');
  const bar = rp.locator('#histogram-svg rect.bar').last();
  const t = Date.parse(await bar.getAttribute('data-time'));
  const span = /span=(\w+)/.exec(histoSearches().at(-1).query)[1];
  const spanMsTest = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[span.slice(-1)] * Number(span.slice(0, -1));
  searches.length = 0;
  await markResults(rp);
  await bar.click();
  await waitFreshResults(rp);
  const hp = hashParams(rp);
  assert(Date.parse(hp.get('from')) === t && Date.parse(hp.get('to')) === t + spanMsTest, `bar ${new Date(t).toISOString()} + ${span} gave the hash ${rp.url()}`);
  assert(/Z$/.test(hp.get('from')) && /Z$/.test(hp.get('to')), `bar bounds are not RFC 3339 UTC: ${rp.url()}`);
  assert(await rp.inputValue('#time-range') === 'custom', 'the picker does not show Custom after a bar click');
  assert(await rp.locator('#custom-range').isVisible(), 'the From/To inputs are not shown after a bar click');
  assert((await rp.inputValue('#range-from')).slice(0, 16) === localValue(Math.floor(t / MIN) * MIN), 'From does not show the bar start');
  const main = mainSearches().at(-1);
  assert(main && main.from === hp.get('from') && main.to === hp.get('to'), `the bar search sent ${JSON.stringify(main)}`);
  // Back: the previous (2-hour) search comes back and runs
  searches.length = 0;
  await markResults(rp);
  await rp.goBack();
  await waitFreshResults(rp);
  assert(new URL(rp.url()).hash === customRange.hash, `Back went to ${rp.url()}`);
  const back = mainSearches().at(-1);
  assert(back && back.from === utcValue(customRange.from) && back.to === utcValue(customRange.to), `after Back the search sent was ${JSON.stringify(back)}`);
  assert((await rp.inputValue('#range-from')).slice(0, 16) === localValue(customRange.from), 'after Back, From does not show the earlier range');
});

await step('keyboard: "/" focuses the query bar, Escape collapses an expanded event', async () => {
  await rp.locator('#histogram-note').click(); // focus out of any input
  await rp.evaluate(() => document.activeElement && document.activeElement.blur());
  const before = await rp.inputValue('#query');
  await rp.keyboard.press('/');
  assert(await rp.evaluate(() => document.activeElement && document.activeElement.id) === 'query', '"/" did not focus the query bar');
  assert(await rp.inputValue('#query') === before, '"/" was typed into the query bar');
  await rp.keyboard.press('/'); // in the query bar, "/" is just a character
  assert(await rp.inputValue('#query') === before + '/', '"/" could not be typed in the query bar');
  await rp.fill('#query', before);
  const row = rp.locator('[data-testid="event-row"]').first();
  const toggle = row.locator('[data-testid="expand-event"]');
  await toggle.click();
  assert(await toggle.getAttribute('aria-expanded') === 'true', 'the event did not expand');
  await rp.keyboard.press('Escape');
  assert(await toggle.getAttribute('aria-expanded') === 'false', 'Escape did not collapse the focused event');
  assert(await rp.locator('[data-testid="event-fields"]:visible').count() === 0, 'the event fields are still shown');
  // also with the focus elsewhere: the last expanded event collapses
  await toggle.click();
  await rp.evaluate(() => document.activeElement && document.activeElement.blur());
  await rp.keyboard.press('Escape');
  assert(await toggle.getAttribute('aria-expanded') === 'false', 'Escape (focus on the page) did not collapse the event');
  await noErrorBanner(rp, 'keyboard');
});

await step('a bookmarked search link survives signing in', async () => {
  const bp = await newPage('bookmark', { timezoneId: TZ });
  currentPage = bp;
  const sent = [];
  bp.on('request', (req) => {
    if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/v1/search') sent.push(req.postDataJSON());
  });
  await bp.goto(`${BASE}/ui/${customRange.hash}`);
  await bp.waitForSelector('#login-form');
  await bp.fill('#username', USER);
  await bp.fill('#password', PASSWORD);
  await Promise.all([bp.waitForURL((u) => u.pathname === '/ui/'), bp.click('#login-button')]);
  await bp.waitForSelector('#result-count');
  assert(new URL(bp.url()).hash === customRange.hash, `after signing in the page is ${bp.url()}`);
  const main = sent.filter((b) => !/timechart/.test(b.query)).at(-1);
  assert(main && main.query === SEED_QUERY && main.from === utcValue(customRange.from) && main.to === utcValue(customRange.to),
    `the bookmarked search sent ${JSON.stringify(main)}`);
  await bp.context().close();
  currentPage = rp;
});

if (SHOTS) {
  for (const [w, hgt] of [[1280, 800], [1920, 1080]]) {
    await rp.setViewportSize({ width: w, height: hgt });
    await rp.fill('#range-from', localValue(customRange.to + 3600e3));
    await rp.click('#run-search');
    await rp.locator('#range-error').waitFor({ state: 'visible' });
    await shot(rp, `search-custom-range-${w}x${hgt}`);
    await rp.fill('#range-from', localValue(customRange.from));
  }
}
await rp.context().close();
currentPage = page;

// ------------------------------------------------------------------ accounts, password change, API tokens
// Names are unique per run: a long-running server (or the mock) may keep earlier runs' accounts.

const RUN = Date.now().toString(36);
const NEW_USER = `uitest-${RUN}`;
const NEW_USER_ROLE = 'analyst';
const NEW_TOKEN = `uitest ingest ${RUN}`;
const newAccount = {}; // password (generated), then the changed one

/** Wait until the admin page's two tables have loaded. */
async function waitAdmin(p) {
  await p.waitForSelector('#users-table');
  await p.waitForSelector('#tokens-table');
}

await step('admin: Admin link shown; adding an account with a generated password shows it once', async () => {
  assert(await page.locator('#nav-admin').isVisible(), 'the admin sees no Admin link in the navigation');
  await gotoHash(page, '#/admin');
  await waitAdmin(page);
  assert(await page.locator(`[data-testid="user-row"][data-user-name="${USER}"]`).count() === 1, `the accounts table does not list ${USER}`);
  await page.fill('#new-user-name', NEW_USER);
  await page.selectOption('#new-user-role', NEW_USER_ROLE);
  assert(await page.inputValue('#new-user-password') === '', 'the password field is not empty');
  await page.click('#add-user-button');
  const secret = page.locator('#new-user-secret');
  await secret.waitFor({ state: 'visible' });
  const pw = await page.inputValue('#new-user-secret-value');
  assert(pw.length >= 12, `the generated password "${pw}" is shorter than 12 characters`);
  newAccount.password = pw;
  const warning = (await page.textContent('#new-user-secret-warning')).trim();
  assert(/shown only now/i.test(warning), `the generated password lacks the "shown only now" warning: ${warning}`);
  assert(await page.locator('#new-user-secret-copy').isVisible(), 'no Copy button next to the generated password');
  const row = page.locator(`[data-testid="user-row"][data-user-name="${NEW_USER}"]`);
  await row.waitFor();
  assert(await row.getAttribute('data-role') === NEW_USER_ROLE, `the new account's role is ${await row.getAttribute('data-role')}`);
  assert(await row.locator('time').count() === 2, 'the new account row does not show created and changed times');
  await noErrorBanner(page, 'adding an account');
  await shot(page, 'admin-new-account-1280x800');
  // Done removes it, and it never comes back
  await page.click('#new-user-secret-done');
  await secret.waitFor({ state: 'detached' });
  const leaked = await page.evaluate((v) => document.body.innerText.includes(v) || [...document.querySelectorAll('input')].some((i) => i.value === v), pw);
  assert(!leaked, 'the generated password is still on the page after Done');
  await gotoHash(page, '#/search');
  await gotoHash(page, '#/admin');
  await waitAdmin(page);
  assert(await page.locator('#new-user-secret').count() === 0, 'the generated password is shown again');
  assert(await page.locator(`[data-testid="user-row"][data-user-name="${NEW_USER}"]`).count() === 1, 'the new account is not listed after reopening #/admin');
});

await step('the new account signs in, changes its password under #/account, then signs in with the new one', async () => {
  assert(newAccount.password, 'no generated password from the previous step');
  const np = await newPage('new-account');
  currentPage = np;
  const pwRequests = [];
  np.on('request', (req) => {
    if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/v1/password') pwRequests.push(req.postDataJSON());
  });
  await login(np, NEW_USER, newAccount.password);
  assert((await np.textContent('#user-role')).trim() === NEW_USER_ROLE, 'the new account shows another role');
  assert(await np.locator('#nav-admin').isHidden(), `an ${NEW_USER_ROLE} sees the Admin link`);
  await np.click('#nav-account');
  await np.waitForFunction(() => location.hash === '#/account');
  await np.waitForSelector('#password-form');
  assert((await np.textContent('#account-user')).trim() === NEW_USER, 'the account page shows another user');
  const msg = np.locator('#pw-message');
  // client-side checks: too short, and the repetition differs; nothing is sent
  await np.fill('#pw-current', newAccount.password);
  await np.fill('#pw-new', 'short-1');
  await np.fill('#pw-repeat', 'short-1');
  await np.click('#pw-submit');
  await msg.waitFor({ state: 'visible' });
  assert(/12 characters/.test(await msg.textContent()), `too-short message: ${await msg.textContent()}`);
  assert(await np.getAttribute('#pw-new', 'aria-invalid') === 'true', 'the new password is not marked invalid');
  const next = `${RUN}-Changed-passphrase!`;
  await np.fill('#pw-new', next);
  await np.fill('#pw-repeat', `${next}x`);
  await np.click('#pw-submit');
  await np.waitForFunction(() => /differ/.test(document.getElementById('pw-message').textContent));
  assert(await np.getAttribute('#pw-repeat', 'aria-invalid') === 'true', 'the repetition is not marked invalid');
  assert(pwRequests.length === 0, `${pwRequests.length} password request(s) sent despite client-side errors`);
  // the server's answer to a wrong current password
  await np.fill('#pw-current', `${newAccount.password}-wrong`);
  await np.fill('#pw-repeat', next);
  await np.click('#pw-submit');
  await np.waitForFunction(() => /current password is wrong/i.test(document.getElementById('pw-message').textContent));
  assert(await msg.getAttribute('role') === 'alert', 'the password error is not role=alert');
  assert(await np.getAttribute('#pw-current', 'aria-invalid') === 'true', 'the current password is not marked invalid');
  // the real change
  await np.fill('#pw-current', newAccount.password);
  await np.fill('#pw-new', next);
  await np.fill('#pw-repeat', next);
  await np.click('#pw-submit');
  await np.waitForSelector('#pw-message.form-msg-ok');
  assert(/changed/i.test(await msg.textContent()), `success message: ${await msg.textContent()}`);
  assert(pwRequests.length === 2 && pwRequests[1].current === newAccount.password && pwRequests[1].new === next, `password requests: ${pwRequests.length}`);
  assert(await np.inputValue('#pw-new') === '' && await np.inputValue('#pw-current') === '', 'the form still holds the passwords');
  await noErrorBanner(np, 'after changing the password');
  await shot(np, 'account-changed-1280x800');
  newAccount.password = next;
  // the page keeps working with the new session's CSRF token: a search is a POST
  await gotoHash(np, `#/search?${new URLSearchParams({ q: SEED_QUERY, from: '-24h' })}`);
  const n = await waitFreshResults(np);
  assert(n >= 1, `a search after the change shows ${n} rows`);
  // log out, the old password is refused, the new one works
  await Promise.all([np.waitForURL((u) => u.pathname === '/login'), np.click('#logout-button')]);
  await np.waitForSelector('#login-form');
  await np.fill('#username', NEW_USER);
  await np.fill('#password', pwRequests[1].current);
  await np.click('#login-button');
  await np.locator('#login-error').waitFor({ state: 'visible' });
  await login(np, NEW_USER, next);
  assert((await np.textContent('#user-name')).trim() === NEW_USER, 'signed in as someone else');
  await np.context().close();
  currentPage = page;
});

await step('admin: a new ingest token is shown once, listed as never used, and revoked after an inline confirmation', async () => {
  await gotoHash(page, '#/admin');
  await waitAdmin(page);
  await page.fill('#new-token-name', NEW_TOKEN);
  await page.selectOption('#new-token-role', 'ingest');
  await page.click('#add-token-button');
  const secret = page.locator('#new-token-secret');
  await secret.waitFor({ state: 'visible' });
  const token = await page.inputValue('#new-token-secret-value');
  assert(/shown only now/i.test(await page.textContent('#new-token-secret-warning')), 'the token lacks the "shown only now" warning');
  assert(await page.locator('#new-token-secret-copy').isVisible(), 'no Copy button next to the token');
  const row = page.locator('[data-testid="token-row"]', { has: page.locator('.token-name', { hasText: NEW_TOKEN }) });
  await row.waitFor();
  assert(await row.count() === 1, `${await row.count()} rows for token "${NEW_TOKEN}"`);
  const id = await row.getAttribute('data-token-id');
  assert(token.startsWith(`vgl_${id}_`), `token "${token.slice(0, 16)}…" does not belong to id ${id}`);
  assert(await row.getAttribute('data-status') === 'active', 'the new token is not active');
  assert((await row.locator('[data-testid="token-last-used"]').textContent()).trim() === 'never', 'the new token\'s last use is not "never"');
  assert((await row.textContent()).includes('ingest'), 'the token row does not show its role');
  await shot(page, 'admin-new-token-1280x800');
  await page.click('#new-token-secret-done');
  await secret.waitFor({ state: 'detached' });
  assert(!(await page.evaluate((v) => document.body.innerText.includes(v), token)), 'the token is still on the page after Done');
  // revoke: "No" keeps it, "Yes" revokes it
  await row.locator('[data-testid="revoke-token"]').click();
  await row.locator('[data-testid="revoke-token-confirm"]').waitFor();
  await row.locator('[data-testid="revoke-token-no"]').click();
  await row.locator('[data-testid="revoke-token"]').waitFor();
  assert(await row.getAttribute('data-status') === 'active', '"No" revoked the token');
  await row.locator('[data-testid="revoke-token"]').click();
  await row.locator('[data-testid="revoke-token-yes"]').click();
  const revoked = page.locator(`[data-testid="token-row"][data-token-id="${id}"][data-status="revoked"]`);
  await revoked.waitFor();
  assert(/revoked/.test(await revoked.locator('[data-status="revoked"]').textContent()), 'the status does not say "revoked" in words');
  assert(await revoked.locator('[data-testid="token-revoked-at"] time').count() === 1, 'the revocation time is not shown');
  assert(await revoked.locator('[data-testid="revoke-token"]').count() === 0, 'a revoked token still has a Revoke button');
  assert(await page.locator('#tokens-status.form-msg-ok').isVisible(), 'no confirmation that the token was revoked');
  await noErrorBanner(page, 'revoking a token');
});

await step('admin: deleting the test account asks inline first, then removes it', async () => {
  const row = page.locator(`[data-testid="user-row"][data-user-name="${NEW_USER}"]`);
  await row.locator('[data-testid="delete-user"]').click();
  const confirm = row.locator('[data-testid="delete-user-confirm"]');
  await confirm.waitFor();
  assert((await confirm.textContent()).includes(NEW_USER), 'the confirmation does not name the account');
  await row.locator('[data-testid="delete-user-yes"]').click();
  await row.waitFor({ state: 'detached' });
  assert(await page.locator(`[data-testid="user-row"][data-user-name="${USER}"] [data-testid="delete-user"]`).count() === 0, 'the admin is offered to delete their own account');
  await noErrorBanner(page, 'deleting an account');
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
    for (const hash of ['#/alerts?status=', '#/integrity', '#/rules', '#/sources', '#/account', '#/admin']) {
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
  await step('viewer role: no triage or verify buttons, no Admin link, #/admin is for admins only', async () => {
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
    // no Admin link, and #/admin says it is for admins only without asking for data
    const adminCalls = [];
    vp.on('request', (req) => { if (/^\/api\/v1\/(users|tokens)\b/.test(new URL(req.url()).pathname)) adminCalls.push(req.url()); });
    assert(await vp.locator('#nav-admin').isHidden(), 'the viewer sees the Admin link');
    await gotoHash(vp, '#/admin');
    const denied = vp.locator('#admin-denied');
    await denied.waitFor({ state: 'visible' });
    assert(/admins only/i.test(await denied.textContent()), `#/admin for a viewer says: ${(await denied.textContent()).trim()}`);
    assert(await vp.locator('#users-table, #tokens-table, #add-user-form, #add-token-form').count() === 0, 'the viewer sees account or token data');
    assert(adminCalls.length === 0, `the page asked for admin data as a viewer: ${adminCalls.join(', ')}`);
    if (SHOTS) await shot(vp, 'admin-viewer-1280x800');
    await gotoHash(vp, '#/account');
    await vp.waitForSelector('#password-form');
    const users = await vp.evaluate(async () => (await fetch('/api/v1/users', { credentials: 'same-origin' })).status);
    assert(users === 403, `viewer GET /api/v1/users answered ${users}`);
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
