// Rule exceptions in a real browser (issue 19): an analyst opens an alert, suppresses further
// alerts for its group with a reason, sees the exception listed on the alert and on the rule
// in the Rules page, then removes it.
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, ALERT_ID, RULE_ID, GROUP_IP (required);
// ARTIFACTS (screenshots); CHROMIUM (default /usr/bin/chromium).
// Prints one PASS line per step and "STEPS PASSED" at the end; exits 1 at the first failure.

import { join } from 'node:path';
import { setup, assert } from './lib.mjs';

const t = await setup(['ALERT_ID', 'RULE_ID', 'GROUP_IP']);
const { page, context, gotoHash } = t;
const { VIGIL_USER: USER, ALERT_ID, RULE_ID, GROUP_IP, ARTIFACTS } = t.env;

await t.step('log in as an analyst', async () => {
  await t.login();
});

await t.step('suppress the alert group with a reason, from the alert', async () => {
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

await t.step('the exception shows on the rule', async () => {
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

await t.step('remove it from the alert', async () => {
  await gotoHash(`#/alerts/${ALERT_ID}`);
  const mine = page.locator('#exceptions-panel [data-testid=exception]', { hasText: `source.ip=${GROUP_IP}` });
  await mine.waitFor();
  await mine.locator('[data-testid=exception-remove]').click();
  await mine.waitFor({ state: 'detached' });
});

await t.done();
