// The search page's analyst tools in a real browser (issue 19), driven by
// crates/vigil/tests/saved_search.rs over its known data (450 `app=paging` events in five
// minutes: alice 250, bob 150, carol 50; 20 `app=side` events: host web1 12, web2 5, db 3).
//
// PHASE=before: a timechart drawn as a line with one point per bucket, `stats … by` as one bar
// per group, the field sidebar's top value and count (a click filters), field autocomplete,
// rows 201–400 of the 450 with no repeats, and a search saved and put on the dashboard.
// PHASE=after (the server restarted): the saved search is still listed and re-runs, and the
// dashboard shows its panel with its count and the shared stats panel with its bars.
//
// Environment: VIGIL_URL, VIGIL_USER (an analyst), VIGIL_PASSWORD, PHASE, ARTIFACTS; CHROMIUM.

import { join } from 'node:path';
import { setup, assert } from './lib.mjs';

const t = await setup(['PHASE']);
const { page, gotoHash } = t;
const { PHASE, ARTIFACTS } = t.env;

const search = async (q) => {
  await gotoHash(`#/search?${new URLSearchParams({ q, from: '-2h' })}`);
};
const count = async () => Number(await page.locator('#result-count').getAttribute('data-count'));
const waitCount = async (n) => {
  await page.waitForFunction((want) => {
    const c = document.querySelector('#result-count');
    const r = document.querySelector('#results');
    return c && Number(c.dataset.count) === want && r && !r.classList.contains('stale');
  }, n);
};

await t.step('log in as an analyst', () => t.login());

if (PHASE === 'before') {
  await t.step('a timechart is drawn as a line with one point per bucket', async () => {
    await search('app=paging | timechart span=1m count');
    await waitCount(5);
    const points = page.locator('[data-testid=result-chart] circle.point');
    assert(await points.count() === 5, `points: ${await points.count()}`);
    const values = await points.evaluateAll((ps) => ps.map((p) => Number(p.getAttribute('data-value'))));
    assert(values.reduce((a, b) => a + b, 0) === 450, `values ${values}`);
    assert(await page.locator('[data-testid=result-chart] polyline.series').count() === 1, 'one series');
  });

  await t.step('stats … by is drawn as one bar per group with its count', async () => {
    await search('app=paging | stats count by user.name');
    await waitCount(3);
    const bars = page.locator('[data-testid=result-chart] rect.bar');
    assert(await bars.count() === 3, `bars: ${await bars.count()}`);
    const counts = (await bars.evaluateAll((bs) => bs.map((b) => Number(b.getAttribute('data-count'))))).sort((a, b) => a - b);
    assert(counts.join() === '50,150,250', `bar counts ${counts}`);
    const labels = await page.locator('[data-testid=result-chart] .hbar-label').allTextContents();
    assert(['alice', 'bob', 'carol'].every((u) => labels.includes(u)), `labels ${labels}`);
    await page.screenshot({ path: join(ARTIFACTS, 'stats-chart.png'), fullPage: true });
  });

  await t.step('the field sidebar shows the top values with counts; a click filters', async () => {
    await search('app=side');
    await waitCount(20);
    const values = page.locator('[data-testid=sidebar-value][data-field="host.name"]');
    assert(await values.count() === 3, `host values: ${await values.count()}`);
    const top = values.first();
    assert(await top.getAttribute('data-value') === 'web1' && await top.getAttribute('data-count') === '12',
      `top: ${await top.getAttribute('data-value')} ${await top.getAttribute('data-count')}`);
    const second = values.nth(1);
    assert(await second.getAttribute('data-value') === 'web2' && await second.getAttribute('data-count') === '5', 'second: web2 5');
    await top.click();
    await waitCount(12);
    const q = await page.inputValue('#query');
    assert(q === 'app=side host.name="web1"', q);
  });

  await t.step('field names are suggested while typing; Tab completes', async () => {
    await page.fill('#query', 'app=side hos');
    const item = page.locator('[data-testid=suggest-item]', { hasText: 'host.name' });
    await item.waitFor();
    await page.focus('#query');
    await page.keyboard.press('End');
    await page.keyboard.type('t.n');
    await page.keyboard.press('Tab');
    const q = await page.inputValue('#query');
    assert(q === 'app=side host.name=', q);
    assert(await page.locator('#field-suggest').isHidden(), 'the list closes');
  });

  await t.step('paging shows rows 201–400 of 450 with no repeats', async () => {
    await search('app=paging');
    await waitCount(200);
    const range = page.locator('#page-range');
    assert(await range.getAttribute('data-first') === '1' && await range.getAttribute('data-last') === '200', 'page 1');
    const seqs = () => page.locator('[data-testid=event-row]').evaluateAll((rs) => rs.map((r) => r.dataset.seq));
    const first = await seqs();
    await page.click('#page-next');
    await page.waitForFunction(() => document.querySelector('#page-range')?.dataset.first === '201');
    await waitCount(200);
    assert(await range.getAttribute('data-last') === '400', 'rows 201–400');
    const second = await seqs();
    assert(second.length === 200, `rows ${second.length}`);
    const seen = new Set(first);
    assert(second.every((x) => x && !seen.has(x)) && new Set(second).size === 200, 'no repeats between pages');
    await page.screenshot({ path: join(ARTIFACTS, 'page-2.png'), fullPage: true });
    await page.click('#page-next');
    await page.waitForFunction(() => document.querySelector('#page-range')?.dataset.first === '401');
    await waitCount(50);
    assert(await page.locator('#page-next').isDisabled(), 'no page after the last');
    await page.click('#page-prev');
    await page.waitForFunction(() => document.querySelector('#page-range')?.dataset.first === '201');
  });

  await t.step('save a search and put it on the dashboard', async () => {
    await search('app=paging user.name=bob');
    await waitCount(150);
    await page.fill('#saved-name', 'Bob events');
    await page.click('#save-search');
    const item = page.locator('[data-testid=saved-item][data-name="Bob events"]');
    await item.waitFor();
    await item.locator('[data-testid=saved-panel]').click();
    await page.waitForSelector('[data-testid=saved-item][data-name="Bob events"] [data-testid=saved-panel][aria-pressed=true]');
  });
} else {
  await t.step('the saved search survived the restart and re-runs', async () => {
    await search('app=side');
    await waitCount(20);
    const item = page.locator('[data-testid=saved-item][data-name="Bob events"]');
    await item.waitFor();
    await item.locator('[data-testid=saved-run]').click();
    await waitCount(150);
    assert(await page.inputValue('#query') === 'app=paging user.name=bob', await page.inputValue('#query'));
  });

  await t.step('the dashboard shows the saved panels with their content', async () => {
    await gotoHash('#/dashboards');
    const card = page.locator('[data-testid=saved-card][data-name="Bob events"] [data-testid=saved-card-count]');
    await card.waitFor();
    assert(await card.getAttribute('data-count') === '150', `count ${await card.getAttribute('data-count')}`);
    const bars = page.locator('[data-testid=saved-card][data-name="Paging users"] rect.bar');
    await bars.first().waitFor();
    assert(await bars.count() === 3, `bars ${await bars.count()}`);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });

  await t.step('an analyst takes a panel off the dashboard', async () => {
    await page.click('[data-testid=saved-card][data-name="Bob events"] [data-testid=saved-card-remove]');
    await page.locator('[data-testid=saved-card][data-name="Bob events"]').waitFor({ state: 'detached' });
    await gotoHash('#/search');
    await page.waitForSelector('[data-testid=saved-item][data-name="Bob events"] [data-testid=saved-panel][aria-pressed=false]');
  });
}

await t.done();
