// The admin screens against the sandbox's simulated Twilio: connecting a
// sandbox account (the per-resource report), Twilio refusing the credentials
// and Twilio unreachable (the sandbox's fault switches), the wiring check,
// assigning agents, disconnecting; and the live events socket reconnecting
// after the server went away.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { agentToken, api, browser, closedPort, faults, person, sandboxAccounts, screenshot, signIn, startServer } from './harness.mjs';

async function openAdmin(page) {
  await page.locator('#tab-admin').click();
  await page.locator('#admin').waitFor({ state: 'visible' });
}

async function connect(page, account, { record = false, callerId } = {}) {
  const form = page.locator('#connect-form');
  await form.getByLabel('Account SID').fill(account.accountSid);
  await form.getByLabel('Auth Token').fill(account.authToken);
  if (callerId) {
    await form.getByLabel('Default caller ID (optional)').fill(callerId);
  }
  await form.getByLabel('Record calls').setChecked(record);
  await form.getByRole('button', { name: 'Connect' }).click();
}

describe('admin screens', () => {
  let chrome;
  let admin;

  before(async () => {
    chrome = await browser();
    admin = await agentToken({ workspace: 'initech', agent: 'root', role: 'admin' });
  });

  after(async () => {
    await chrome?.close();
  });

  it('connects a sandbox account with a per-resource report, after Twilio refused and could not be reached', async () => {
    const server = await startServer();
    try {
      const [account] = await sandboxAccounts(server);
      const { context, page } = await person(chrome, server);
      await signIn(page, server, admin);
      await openAdmin(page);
      const failure = page.locator('#connect-result [role="alert"]');

      // Twilio refuses the account's credentials.
      await faults(server, { credentials: 'refused' });
      await connect(page, account);
      await failure.waitFor();
      assert.equal(await failure.getAttribute('data-code'), 'twilio_credentials_rejected');
      assert.match(await failure.textContent(), /Twilio refused these credentials/);
      await screenshot(page, 'admin-credentials-refused', '#admin');

      // Twilio cannot be reached at all.
      await faults(server, { credentials: 'ok', reachable: false });
      await connect(page, account);
      await failure.filter({ hasText: 'Twilio could not be reached.' }).waitFor();
      assert.equal(await failure.getAttribute('data-code'), 'upstream_error');
      assert.equal(await page.locator('#connect-form').getByRole('button', { name: 'Connect' }).isEnabled(), true, 'the admin can try again');
      await screenshot(page, 'admin-twilio-unreachable', '#admin');

      // Twilio is back: the account is connected, resource by resource.
      await faults(server, { reachable: true });
      await connect(page, account, { record: true, callerId: account.numbers[0] });
      await page.locator('#connect-result', { hasText: 'Connected: every resource is in place.' }).waitFor();
      const report = await page
        .locator('#connect-result .report tbody tr')
        .evaluateAll((rows) => rows.map((r) => ({ what: r.cells[0].textContent, result: r.dataset.result })));
      assert.equal(report.length, 2 + account.numbers.length, `the API key, the TwiML App and every number: ${JSON.stringify(report)}`);
      assert.ok(report.every((r) => r.result !== 'failed'), `no resource failed: ${JSON.stringify(report)}`);
      for (const number of account.numbers) {
        assert.ok(report.some((r) => r.what.includes(number)), `${number} is in the report`);
      }
      assert.equal(await page.locator('#auth-token').inputValue(), '', 'the secret is not kept in the form');
      await screenshot(page, 'admin-connected', '#admin');
      // The phone on the same page is ready for calls now.
      await page.locator('#tab-phone').click();
      await page.locator('#device-status', { hasText: 'Ready for calls' }).waitFor();
      await openAdmin(page);

      await page.getByRole('button', { name: 'Check now' }).click();
      await page.locator('#check-result', { hasText: 'In sync' }).waitFor();
      assert.match(await page.locator('#check-result').textContent(), new RegExp(account.accountSid));

      const row = page.locator(`form[data-number="${account.numbers[0]}"]`);
      await row.waitFor();
      await row.getByLabel('Label').fill('Support');
      await row.getByLabel('Agents (comma-separated ids)').fill('alice, bob');
      await row.getByRole('button', { name: 'Save' }).click();
      await row.getByText('Saved').waitFor();
      const numbers = await api(server, admin, 'GET', 'workspace/numbers');
      const saved = numbers.body.numbers.find((n) => n.number === account.numbers[0]);
      assert.deepEqual([saved.label, saved.agents], ['Support', ['alice', 'bob']]);

      await page.getByRole('button', { name: 'Disconnect…' }).click();
      await page.getByRole('button', { name: 'Disconnect', exact: true }).click();
      await page.locator('#clear-result', { hasText: 'Disconnected.' }).waitFor();
      assert.equal((await api(server, admin, 'POST', 'token')).body.error.code, 'twilio_not_configured');
      await context.close();
    } finally {
      await server.stop();
    }
  });

  it('shows the live events socket reconnecting, then live again', async () => {
    const port = await closedPort();
    const listen = `127.0.0.1:${port}`;
    let server = await startServer({ listen });
    const dataDir = server.dir;
    try {
      const { context, page } = await person(chrome, server);
      await signIn(page, server, admin);
      const status = page.locator('#live-status');
      await status.filter({ hasText: 'Live' }).waitFor();
      await server.stop({ keepData: true });
      await status.filter({ hasText: /Reconnecting in \d+ s/ }).waitFor();
      assert.equal(await status.getAttribute('data-state'), 'reconnecting');
      await screenshot(page, 'reconnecting');
      server = await startServer({ listen, dataDir });
      await status.filter({ hasText: 'Live' }).waitFor({ timeout: 40_000 });
      await context.close();
    } finally {
      await server.stop();
    }
  });
});
