// A workspace connected to a sandbox Twilio account (recording calls): an
// agent places a call and watches it ring, connect, go on hold and end as the
// sandbox plays the customer; keys, notes; a customer who hangs up, and the
// recording played from the call log; the call log (paging, filters, live
// rows); texts received live and sent; the dial pad's checks; and the phone's
// failures: the microphone refused, Twilio refusing the phone's access token,
// Twilio unreachable (the sandbox's fault switch).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  agentToken,
  api,
  browser,
  callState,
  connectTwilio,
  eventually,
  faults,
  pathOf,
  person,
  sandbox,
  screenshot,
  signIn,
  startServer,
  twilioRest,
} from './harness.mjs';

const SEEDED = 23;
const HUNG_UP = 3;
/** Sandbox people (README, "Try it without a Twilio account"). */
const RINGS_5_S_THEN_ANSWERS = '+15005552005';
const HANGS_UP_AFTER_10_S = '+15005551010';
const CUSTOMER = '+15005550001';

describe('a connected workspace', () => {
  let server;
  let chrome;
  let admin;
  let alice;
  let numbers;
  let account;

  before(async () => {
    [server, chrome] = await Promise.all([startServer(), browser()]);
    admin = await agentToken({ workspace: 'acme', agent: 'root', role: 'admin' });
    alice = await agentToken({ workspace: 'acme', agent: 'alice' });
    account = await connectTwilio(server, admin, { record: true });
    ({ numbers } = account);
    // alice may use the first number; the others are shared lines.
    await api(server, admin, 'PUT', `workspace/numbers/${encodeURIComponent(numbers[0])}`, { agents: ['alice'], label: 'Sales' });
  });

  after(async () => {
    await chrome?.close();
    await server?.stop();
  });

  it('places a call and follows it: ringing, connected, on hold, keys, notes, hung up', async () => {
    const { context, page } = await person(chrome, server);
    const voiceToken = page.waitForResponse((r) => pathOf(r) === '/token' && r.request().method() === 'POST');
    await signIn(page, server, alice, { ready: true });
    const { token } = await (await voiceToken).json();

    const placing = page.waitForRequest((r) => r.method() === 'POST' && pathOf(r) === '/calls');
    const placed = page.waitForResponse((r) => r.request().method() === 'POST' && pathOf(r) === '/calls');
    const connecting = page.waitForRequest((r) => r.method() === 'POST' && pathOf(r) === '/sandbox/device/connect');
    await page.getByLabel('Number to call').fill('+1 500 555 2005');
    await page.getByLabel('Call from').selectOption(numbers[0]);
    await page.getByRole('button', { name: 'Call', exact: true }).click();

    // What the page asked Switchboard for, and what it gave the device.
    const request = await placing;
    assert.deepEqual(request.postDataJSON(), { to: RINGS_5_S_THEN_ANSWERS, from: numbers[0] });
    assert.match(request.headers()['idempotency-key'] ?? '', /^[0-9a-f-]{36}$/);
    const answer = await (await placed).json();
    assert.deepEqual(Object.keys(answer.connectParams), ['callId']);
    assert.equal(answer.connectParams.callId, answer.callId);
    const connect = (await connecting).postDataJSON();
    assert.deepEqual(connect, { token, params: answer.connectParams }, 'device.connect gets the Voice token and the call’s connectParams');

    // Twilio's side, as the sandbox plays it: the customer rings, then answers.
    const state = callState(page);
    await state.filter({ hasText: 'Ringing' }).waitFor();
    assert.equal(await page.locator('#call-title').textContent().then((t) => t.startsWith(`Call with ${RINGS_5_S_THEN_ANSWERS}`)), true);
    await state.filter({ hasText: 'Connected' }).waitFor();
    await page.locator('#call-panel li[data-label="customer"][data-state="joined"]').waitFor();
    await page.locator('#call-panel .clock', { hasText: /^0:0\d$/ }).waitFor();

    // On hold: at Twilio, the customer's participant in the call's conference.
    const { conferenceSid, customerCallSid } = (await api(server, alice, 'GET', `calls/${answer.callId}`)).body;
    const customerAtTwilio = () => twilioRest(server, account, `Conferences/${conferenceSid}/Participants/${customerCallSid}.json`);
    assert.equal((await customerAtTwilio()).hold, false);
    await page.getByRole('button', { name: 'Hold', exact: true }).click();
    await state.filter({ hasText: 'On hold' }).waitFor();
    assert.equal((await customerAtTwilio()).hold, true);
    await screenshot(page, 'call-on-hold', '#call-panel');
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await state.filter({ hasText: 'Connected' }).waitFor();
    assert.equal((await customerAtTwilio()).hold, false);

    // The keypad sends tones on the call (not into the number field).
    const tones = page.waitForRequest((r) => /^\/sandbox\/device\/CA[0-9a-f]{32}\/digits$/.test(pathOf(r)));
    await page.getByRole('button', { name: 'Key 5' }).click();
    assert.deepEqual((await tones).postDataJSON(), { digits: '5' });

    // Notes and disposition, saved on the call while it goes on.
    await page.getByLabel('Notes', { exact: true }).fill('Wants the blue one; call back Friday.');
    await page.getByLabel('Disposition', { exact: true }).fill('callback');
    await page.getByRole('button', { name: 'Save notes' }).click();
    await page.locator('#call-panel .saved', { hasText: 'Saved' }).waitFor();
    const saved = (await api(server, alice, 'GET', `calls/${answer.callId}`)).body;
    assert.deepEqual([saved.notes, saved.disposition], ['Wants the blue one; call back Friday.', 'callback']);
    await screenshot(page, 'call-connected');

    await page.getByRole('button', { name: 'Hang up' }).click();
    await state.filter({ hasText: 'Ended: completed' }).waitFor();
    // What was typed stays, and the call log has it too.
    assert.equal(await page.getByLabel('Notes', { exact: true }).inputValue(), 'Wants the blue one; call back Friday.');
    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.locator('#call-panel').isHidden(), true);
    const ended = (await api(server, alice, 'GET', `calls/${answer.callId}`)).body;
    assert.equal(ended.state, 'completed');
    assert.deepEqual(
      ['dialing', 'ringing', 'in-progress', 'completed'].map((s) => s in ended.reached),
      [true, true, true, true],
      'the session went through every state',
    );
    await context.close();
  });

  it('plays the recording of a call the customer hung up', async () => {
    const { context, page } = await person(chrome, server);
    await signIn(page, server, alice, { ready: true });
    const placed = page.waitForResponse((r) => r.request().method() === 'POST' && pathOf(r) === '/calls');
    await page.getByLabel('Number to call').fill(HANGS_UP_AFTER_10_S);
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    const { callId } = await (await placed).json();
    await callState(page).filter({ hasText: 'Connected' }).waitFor();
    // The customer hangs up after ten simulated seconds.
    await callState(page).filter({ hasText: 'Ended: completed' }).waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Done' }).click();

    await page.locator('#tab-calls').click();
    await page.locator(`#call-log tr[data-call-id="${callId}"]`).getByRole('button', { name: 'Details' }).click();
    // The recording arrives (Twilio's callback, then the copy into Switchboard's storage): the details follow live.
    const play = page.locator('#call-detail button[data-recording]:enabled');
    await play.waitFor({ timeout: 20_000 });
    const fetched = page.waitForResponse((r) => pathOf(r) === `/calls/${callId}/recording`);
    await play.click();
    const response = await fetched;
    assert.equal(response.status(), 200);
    assert.equal(response.headers()['content-type'], 'audio/mpeg');
    await response.finished();
    const bytes = Number(response.headers()['content-length'] ?? (await response.body()).length);
    await page.locator('#call-detail [role="status"]', { hasText: /^Playing/ }).waitFor();
    // The <audio> element plays the bytes that came with the bearer token
    // (a blob: URL, which the page's media-src allows), decoded by the browser.
    const recording = Object.values((await api(server, alice, 'GET', `calls/${callId}`)).body.recordings)[0];
    assert.equal(bytes, recording.size, 'the whole recording came');
    const player = await page.evaluate(async () => {
      const audio = document.getElementById('recording-player');
      if (audio.readyState < 1) {
        await new Promise((resolve, reject) => {
          audio.addEventListener('loadedmetadata', resolve, { once: true });
          audio.addEventListener('error', () => reject(new Error(`audio error ${audio.error?.code}`)), { once: true });
        });
      }
      return { src: audio.src, duration: audio.duration, hidden: audio.hidden };
    });
    assert.match(player.src, /^blob:/);
    assert.equal(player.hidden, false);
    console.log(`recording: ${bytes} bytes, ${recording.durationSeconds} s; the browser decoded ${player.duration} s`);
    assert.ok(Math.abs(player.duration - recording.durationSeconds) <= 1, 'the browser decoded all of it');
    assert.match(await page.locator('#call-detail [role="status"]').textContent(), new RegExp(`Playing \\(${Math.round(bytes / 1024)} KB\\)`));
    await screenshot(page, 'recording', '#call-detail');

    // A change of the call while it plays (its notes saved elsewhere) re-renders
    // the details live; the same player keeps its recording and position.
    await page.evaluate(() => {
      window.playerBefore = document.getElementById('recording-player');
      window.playerBefore.pause();
      window.playerBefore.currentTime = 1;
    });
    const patched = await api(server, alice, 'PATCH', `calls/${callId}`, { notes: 'Asked for a refund.' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    await page.locator('#call-detail dd', { hasText: 'Asked for a refund.' }).waitFor();
    const kept = await page.evaluate(() => {
      const audio = document.getElementById('recording-player');
      return { same: audio === window.playerBefore, src: audio.src, hidden: audio.hidden, at: audio.currentTime };
    });
    assert.deepEqual(kept, { same: true, src: player.src, hidden: false, at: 1 }, 'the player survived the re-render');
    await context.close();
  });

  it('lists the calls, newest first, a page at a time, filtered, and live', async () => {
    for (let i = 0; i < SEEDED; i += 1) {
      const to = `+1415555${String(1000 + i).padStart(4, '0')}`;
      const placed = await api(server, alice, 'POST', 'calls', { to }, { 'idempotency-key': `seed-${i}` });
      assert.equal(placed.status, 201, JSON.stringify(placed.body));
      if (i < HUNG_UP) {
        const ended = await api(server, alice, 'POST', `calls/${placed.body.callId}/hangup`);
        assert.equal(ended.status, 202, JSON.stringify(ended.body));
      }
    }
    const { context, page } = await person(chrome, server);
    await signIn(page, server, alice);
    await page.locator('#tab-calls').click();
    const rows = page.locator('#call-log tbody tr');
    await page.locator('#calls-summary', { hasText: '20 calls shown' }).waitFor();
    assert.equal(await rows.count(), 20);
    // Newest first: the last call seeded is the first row.
    assert.equal(await rows.first().locator('td').nth(1).textContent(), `+1415555${1000 + SEEDED - 1}`);
    await page.getByRole('button', { name: 'Older calls' }).click();
    // The seeded calls and the two placed from the page above.
    const total = SEEDED + 2;
    await page.locator('#calls-summary', { hasText: `${total} calls shown` }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Older calls' }).isHidden(), true);

    await page.getByLabel('Status').selectOption('abandoned');
    await page.locator('#calls-summary', { hasText: `${HUNG_UP} calls shown` }).waitFor();
    assert.deepEqual(new Set(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.state))), new Set(['abandoned']));
    await page.getByLabel('Status').selectOption('');
    await page.locator('#calls-summary', { hasText: '20 calls shown' }).waitFor();

    // A call placed elsewhere shows up on its own (the live events socket).
    await page.locator('#live-status', { hasText: 'Live' }).waitFor();
    const placed = await api(server, alice, 'POST', 'calls', { to: '+14155559999' }, { 'idempotency-key': 'live-1' });
    await page.locator(`#call-log tr[data-call-id="${placed.body.callId}"]`).waitFor();
    assert.equal(await page.locator('#calls-summary').textContent(), '21 calls shown');
    // …and changes in place when it ends.
    await api(server, alice, 'POST', `calls/${placed.body.callId}/hangup`);
    await page.locator(`#call-log tr[data-call-id="${placed.body.callId}"][data-state="abandoned"]`).waitFor();

    await rows.first().getByRole('button', { name: 'Details' }).click();
    await page.locator('#call-detail-title', { hasText: 'To +14155559999' }).waitFor();
    assert.match(await page.locator('#call-detail dl').textContent(), /Statusabandoned \(hung up before the customer was dialed\)/);
    await screenshot(page, 'call-log', '#calls');
    await context.close();
  });

  it('receives a text live and sends one, by conversation', async () => {
    const { context, page } = await person(chrome, server);
    await signIn(page, server, alice);
    await page.locator('#tab-texts').click();
    await page.locator('#live-status', { hasText: 'Live' }).waitFor();
    // A customer texts the Sales number: the sandbox posts it to its SMS URL.
    await sandbox(server, 'POST', 'sandbox/messages', { from: CUSTOMER, to: numbers[0], body: 'Is my order ready?' });
    const conversation = page.locator(`#conversations button[data-counterpart="${CUSTOMER}"]`);
    await conversation.filter({ hasText: 'Is my order ready?' }).waitFor();
    await conversation.click();
    await page.locator('.bubbles li.inbound', { hasText: 'Is my order ready?' }).waitFor();
    assert.equal(await page.locator('#thread').getByLabel('From').inputValue(), numbers[0], 'answered from the number it came to');
    await page.locator('#thread').getByLabel('Message').fill('Yes, come by!');
    const sending = page.waitForRequest((r) => r.method() === 'POST' && pathOf(r) === '/messages');
    await page.getByRole('button', { name: 'Send' }).click();
    assert.deepEqual((await sending).postDataJSON(), { to: CUSTOMER, from: numbers[0], body: 'Yes, come by!' });
    // The sandbox delivers it; the status follows live.
    await page.locator('.bubbles li.outbound', { hasText: 'Yes, come by!' }).filter({ hasText: 'delivered' }).waitFor();
    await screenshot(page, 'texts', '#texts');
    await context.close();
  });

  it('checks the number before calling, and picks the caller ID from the numbers the agent may use', async () => {
    const { context, page } = await person(chrome, server, { width: 400, height: 860 });
    await signIn(page, server, alice);
    await page.locator(`#caller-id option[value="${numbers[2]}"]`).waitFor({ state: 'attached' });
    const options = await page.locator('#caller-id option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(options, ['', ...numbers]);
    assert.equal(await page.locator(`#caller-id option[value="${numbers[0]}"]`).textContent(), `Sales (${numbers[0]})`);
    let placed = 0;
    page.on('request', (request) => {
      if (request.method() === 'POST' && pathOf(request) === '/calls') {
        placed += 1;
      }
    });
    await page.getByLabel('Number to call').fill('415 555 0100');
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    assert.match(await page.locator('#dial-error').textContent(), /Start with \+ and the country code/);
    assert.equal(await page.getByLabel('Number to call').getAttribute('aria-invalid'), 'true');
    // The keypad types into the number (keyboard or mouse).
    await page.getByLabel('Number to call').fill('+1415555010');
    await page.getByRole('button', { name: 'Key 7' }).click();
    assert.equal(await page.getByLabel('Number to call').inputValue(), '+14155550107');
    assert.equal(placed, 0, 'nothing was placed for a number that is not E.164');
    await page.locator('#device-status', { hasText: 'Ready for calls' }).waitFor();
    await screenshot(page, 'phone-narrow');
    await context.close();
  });

  it('says so when the microphone is refused, and places nothing', async () => {
    const { context, page } = await person(chrome, server, { microphone: false });
    await signIn(page, server, alice, { ready: true });
    let placed = 0;
    page.on('request', (request) => {
      if (request.method() === 'POST' && pathOf(request) === '/calls') {
        placed += 1;
      }
    });
    await page.getByLabel('Number to call').fill(CUSTOMER);
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    const notice = page.locator('[data-notice="microphone"]');
    await notice.waitFor();
    assert.match(await notice.textContent(), /Microphone access is blocked/);
    assert.equal(placed, 0, 'no call is placed without a microphone');
    await screenshot(page, 'microphone-refused');
    await context.close();
  });

  it("says so when Twilio cannot be reached, and is ready again when it can", async () => {
    const { context, page } = await person(chrome, server);
    await signIn(page, server, alice, { ready: true });
    await faults(server, { reachable: false });
    try {
      const notice = page.locator('[data-notice="twilio-unreachable"]');
      await notice.waitFor();
      assert.match(await notice.textContent(), /Twilio cannot be reached/);
      await page.locator('#device-status', { hasText: 'Offline' }).waitFor();
      // A call placed now cannot reach Twilio: it is called off, nobody is dialed.
      const placed = page.waitForResponse((r) => r.request().method() === 'POST' && pathOf(r) === '/calls');
      await page.getByLabel('Number to call').fill(CUSTOMER);
      await page.getByRole('button', { name: 'Call', exact: true }).click();
      const { callId } = await (await placed).json();
      await page.locator('#dial-error', { hasText: 'The call was not placed' }).waitFor();
      await eventually('the call to be called off', async () => (await api(server, alice, 'GET', `calls/${callId}`)).body.state === 'abandoned');
      await screenshot(page, 'twilio-unreachable');
    } finally {
      await faults(server, { reachable: true });
    }
    await page.locator('#device-status', { hasText: 'Ready for calls' }).waitFor();
    assert.equal(await page.locator('[data-notice="twilio-unreachable"]').count(), 0);
    await context.close();
  });

  it("says so when Twilio refuses the phone's access token, and calls with a new one", async () => {
    const { context, page } = await person(chrome, server);
    await signIn(page, server, alice, { ready: true });
    // The admin connects the account again after clearing it: a new API key,
    // so the Voice token the phone holds is signed with a key Twilio no longer has.
    const cleared = await api(server, admin, 'DELETE', 'workspace/twilio');
    assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
    await connectTwilio(server, admin, { record: true });
    await api(server, admin, 'PUT', `workspace/numbers/${encodeURIComponent(numbers[0])}`, { agents: ['alice'], label: 'Sales' });
    // The phone's next look for incoming calls after that went through (any refusal in between is over).
    await page.waitForResponse((r) => pathOf(r) === '/sandbox/device/incoming' && r.status() === 200);

    const refused = page.waitForResponse((r) => pathOf(r) === '/sandbox/device/connect');
    await page.getByLabel('Number to call').fill(CUSTOMER);
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    const answer = await refused;
    assert.equal(answer.status(), 401);
    assert.equal((await answer.json()).error.code, 'invalid_access_token');
    const notice = page.locator('[data-notice="device"]');
    await notice.filter({ hasText: 'The phone has a new one: try again.' }).waitFor();
    assert.match(await notice.textContent(), /Twilio refused the phone’s access token/);
    assert.equal(await page.locator('#signin').isHidden(), true, 'still signed in: Twilio refused the Voice token, not Switchboard the sign-in');
    await screenshot(page, 'token-refused');

    // With the new token the call goes through.
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    await callState(page).filter({ hasText: 'Connected' }).waitFor();
    await page.getByRole('button', { name: 'Hang up' }).click();
    await callState(page).filter({ hasText: 'Ended: completed' }).waitFor();
    await context.close();
  });
});
