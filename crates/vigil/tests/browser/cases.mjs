// Incident response in a real browser (issue 19): an analyst opens the brute-force alert and
// sees every contributing event, opens a case from it, works the case (status, comment), follows
// the attacker's address to its entity page (events from every source, its alerts and case),
// and reads the ATT&CK coverage matrix (cells counted only for rules with data) and downloads
// its Navigator layer.
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD (an analyst), ALERT_ID (the brute-force
// alert), ATTACKER (its address), FIRST_FAILURE (the sequence number of its first failed
// login), WEB_SEQ (its web request), ARTIFACTS; CHROMIUM (default /usr/bin/chromium).
// Prints one PASS line per step and "STEPS PASSED" at the end; exits 1 at the first failure.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setup, assert } from './lib.mjs';

const t = await setup(['ALERT_ID', 'ATTACKER', 'FIRST_FAILURE', 'WEB_SEQ'], { acceptDownloads: true });
const { page, gotoHash } = t;
const { ALERT_ID, ATTACKER, FIRST_FAILURE, WEB_SEQ, ARTIFACTS } = t.env;
let caseId = '';
let coveredScore = 0;

await t.step('log in as an analyst', () => t.login());

await t.step('the brute-force alert shows every contributing event, its rule by title', async () => {
  await gotoHash(`#/alerts/${ALERT_ID}`);
  await page.waitForSelector('[data-testid=contributing-events-list] [data-testid=alert-event]');
  const seqs = await page.$$eval('[data-testid=contributing-events-list] [data-testid=alert-event] summary', (ss) => ss.map((s) => s.textContent));
  assert(seqs.length === 5, `five contributing failures: ${JSON.stringify(seqs)}`);
  assert(seqs[0].includes(`seq ${FIRST_FAILURE}`), `the first failure first: ${seqs[0]}`);
  assert(seqs.every((x) => x.includes(`Failed password for root from ${ATTACKER}`)), JSON.stringify(seqs));
  assert((await page.textContent('[data-testid=alert-rule-title]')) === 'SSH brute force', 'the rule by title');
  const chips = await page.$$eval('[data-testid=attack-technique]', (as) => as.map((a) => a.textContent));
  assert(chips.length === 1 && chips[0] === 'T1110.001 Password Guessing', `one named technique chip: ${JSON.stringify(chips)}`);
  const group = page.locator('[data-testid=alert-group] [data-testid=entity-link]');
  assert((await group.textContent()) === ATTACKER, 'the group address links to its entity page');
  await page.screenshot({ path: join(ARTIFACTS, 'alert-contributing.png'), fullPage: true });
});

await t.step('open a case from the alert', async () => {
  const form = page.locator('#alert-cases-panel [data-testid=new-case-form]');
  await form.waitFor();
  assert((await page.inputValue('#new-case-title')).startsWith('SSH brute force'), 'the title is proposed');
  assert((await page.inputValue('#new-case-severity')) === 'high', 'the alert level is proposed');
  await page.fill('#new-case-title', 'Brute force against web1');
  await Promise.all([page.waitForFunction(() => /^#\/cases\/\d+$/.test(location.hash)), page.click('#new-case-submit')]);
  caseId = await page.evaluate(() => location.hash.split('/')[2]);
  await page.waitForSelector('[data-testid=case-alert-row]');
  assert((await page.textContent('[data-testid=case-title]')) === 'Brute force against web1', 'the case title');
  const rows = await page.$$eval('[data-testid=case-alert-row]', (rs) => rs.map((r) => [r.dataset.alertId, r.textContent]));
  assert(rows.length === 1 && rows[0][0] === ALERT_ID && rows[0][1].includes('SSH brute force') && rows[0][1].includes(ATTACKER), `the case holds the alert: ${JSON.stringify(rows)}`);
});

await t.step('work the case: status, a stored event, a comment, all on its timeline', async () => {
  await page.selectOption('#case-status-select', 'in_progress');
  await page.click('#case-save');
  await page.waitForSelector('.page-header [data-testid=case-status][data-status=in_progress]');
  await page.fill('#case-event-seq', WEB_SEQ);
  await page.click('#case-event-add');
  await page.waitForSelector(`[data-testid=case-event-row][data-seq="${WEB_SEQ}"]`);
  const ev = await page.textContent(`[data-testid=case-event-row][data-seq="${WEB_SEQ}"]`);
  assert(ev.includes(`${ATTACKER} GET /wp-login.php → 404`), `the web request reads as a summary: ${ev}`);
  await page.fill('#case-comment-text', 'blocked at the edge firewall');
  await page.click('#case-comment-add');
  await page.waitForSelector('[data-testid=case-comment]');
  const comments = await page.$$eval('[data-testid=case-comment]', (cs) => cs.map((c) => c.textContent));
  assert(comments.length === 1 && comments[0].includes('blocked at the edge firewall'), JSON.stringify(comments));
  const kinds = await page.$$eval('[data-testid=case-timeline-item]', (is) => is.map((i) => i.dataset.kind));
  assert(kinds.filter((k) => k === 'change').length === 5, `created, alert added, updated, event added, commented: ${JSON.stringify(kinds)}`);
  assert(kinds.includes('alert') && kinds.includes('event'), JSON.stringify(kinds));
  const evLine = await page.textContent('[data-testid=case-timeline-item][data-kind=event] .history-comment');
  assert(evLine === `event ${WEB_SEQ}: ${ATTACKER} GET /wp-login.php → 404`, `the event on the timeline: ${evLine}`);
  await page.screenshot({ path: join(ARTIFACTS, 'case.png'), fullPage: true });
});

await t.step('the case list shows it', async () => {
  await gotoHash('#/cases');
  const row = page.locator(`[data-testid=case-row][data-case-id="${caseId}"]`);
  await row.waitFor();
  const text = await row.textContent();
  assert(text.includes('Brute force against web1') && text.includes('In progress'), text);
});

await t.step("the attacker's entity page: events from every source, its alerts and its case", async () => {
  await gotoHash(`#/alerts/${ALERT_ID}`);
  await page.click('[data-testid=alert-group] [data-testid=entity-link]');
  await page.waitForSelector('[data-testid=entity-event-row]');
  const rows = await page.$$eval('[data-testid=entity-event-row]', (rs) => rs.map((r) => r.dataset.dataset));
  assert(rows.length === 8, `eight events: ${JSON.stringify(rows)}`);
  assert(rows.filter((d) => d === 'system.auth').length === 6 && rows.includes('nginx.access') && rows.includes('app.records'), JSON.stringify(rows));
  assert((await page.textContent('[data-testid=entity-total]')) === '8', 'all-time count');
  const sources = await page.textContent('[data-testid=entity-sources]');
  assert(sources.includes('system.auth: 6') && sources.includes('nginx.access: 1'), sources);
  const alerts = await page.$$eval('[data-testid=entity-alert-row]', (rs) => rs.map((r) => r.textContent));
  assert(alerts.length === 2 && alerts.some((a) => a.includes('SSH brute force')) && alerts.some((a) => a.includes('Records of another department read')), JSON.stringify(alerts));
  const cases = await page.textContent('[data-testid=entity-cases]');
  assert(cases.includes(`#${caseId} Brute force against web1`), cases);
  await page.screenshot({ path: join(ARTIFACTS, 'entity.png'), fullPage: true });
});

await t.step('a user name links to its own entity page', async () => {
  await gotoHash('#/entity/user/alice');
  await page.waitForSelector('[data-testid=entity-event-row]');
  const rows = await page.$$eval('[data-testid=entity-event-row]', (rs) => rs.map((r) => r.textContent));
  assert(rows.length === 1 && rows[0].includes('alice read record 77 of finance'), JSON.stringify(rows));
});

await t.step('the ATT&CK matrix counts only rules with data', async () => {
  await page.click('[data-testid=nav-coverage]');
  await page.waitForSelector('[data-testid=attack-cell]');
  const cell = async (id) => page.$eval(`[data-testid=attack-cell][data-technique="${id}"]`, (c) => [c.dataset.rules, c.dataset.idle, c.className, c.textContent, c.title]);
  // Vigil's own bundled rules (login brute force) cover password guessing too.
  const brute = await cell('T1110.001');
  assert(Number(brute[0]) >= 1 && brute[1] === '0' && brute[2].includes('covered') && brute[3].includes('Password Guessing') && brute[4].includes('SSH brute force'), JSON.stringify(brute));
  const lsass = await cell('T1003.001');
  assert(lsass[0] === '0' && lsass[1] === '1' && lsass[2].includes('idle'), `the Sysmon rule has no data: ${JSON.stringify(lsass)}`);
  const tactic = await page.$eval('[data-testid=attack-cell][data-technique="T1213"]', (c) => c.closest('[data-testid=attack-tactic]').dataset.tactic);
  assert(tactic === 'collection', tactic);
  const summary = await page.textContent('[data-testid=coverage-summary]');
  const [, covered, named] = summary.match(/^(\d+) of (\d+) techniques/) || [];
  assert(Number(named) - Number(covered) === 1, `only the Sysmon technique lacks data: ${summary}`);
  coveredScore = Number(brute[0]);
  await page.screenshot({ path: join(ARTIFACTS, 'coverage.png'), fullPage: true });
});

await t.step('download the ATT&CK Navigator layer', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=navigator-export]')]);
  const path = join(ARTIFACTS, 'layer.json');
  await download.saveAs(path);
  const layer = JSON.parse(readFileSync(path, 'utf8'));
  assert(layer.versions.layer === '4.5' && layer.domain === 'enterprise-attack', JSON.stringify(layer.versions));
  const scores = Object.fromEntries(layer.techniques.map((x) => [x.techniqueID, x.score]));
  assert(scores['T1110.001'] === coveredScore && scores['T1003.001'] === 0 && scores.T1213 === 1, JSON.stringify(scores));
});

await t.done();
