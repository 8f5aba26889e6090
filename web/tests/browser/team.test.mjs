// Several people, each in their own browser context: an inbound call rings
// two agents and vanishes from the second's screen when the first answers; a
// warm transfer from one agent to another (ringing, talking, handed over); a
// supervisor listening in, whispering, and leaving. The callers and
// customers are the sandbox's.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { agentToken, api, browser, callState, connectTwilio, eventually, pathOf, person, sandbox, screenshot, signIn, startServer } from './harness.mjs';

const CALLER = '+14155550177';
const CUSTOMER = '+15005550001';

describe('a team', () => {
  let server;
  let chrome;
  let tokens;
  let numbers;

  before(async () => {
    [server, chrome] = await Promise.all([startServer(), browser()]);
    const [admin, alice, bob, sam] = await Promise.all([
      agentToken({ workspace: 'acme', agent: 'root', role: 'admin' }),
      agentToken({ workspace: 'acme', agent: 'alice' }),
      agentToken({ workspace: 'acme', agent: 'bob' }),
      agentToken({ workspace: 'acme', agent: 'sam', role: 'supervisor' }),
    ]);
    tokens = { admin, alice, bob, sam };
    ({ numbers } = await connectTwilio(server, admin));
    // alice and bob answer the first number, and call from it.
    await api(server, admin, 'PUT', `workspace/numbers/${encodeURIComponent(numbers[0])}`, { agents: ['alice', 'bob'], label: 'Support' });
  });

  after(async () => {
    await chrome?.close();
    await server?.stop();
  });

  /** Each agent in a browser context of their own, signed in, phone ready. */
  async function people(...names) {
    const signedIn = {};
    for (const name of names) {
      const { context, page } = await person(chrome, server, { width: 520, height: 900 });
      await signIn(page, server, tokens[name], { ready: true });
      await page.locator('#live-status', { hasText: 'Live' }).waitFor();
      signedIn[name] = { context, page };
    }
    return signedIn;
  }

  async function closeAll(signedIn) {
    await Promise.all(Object.values(signedIn).map(({ context }) => context.close()));
  }

  it('rings both agents; the banner goes from the second when the first answers', async () => {
    const team = await people('alice', 'bob');
    const { alice, bob } = team;
    const { callSid } = await sandbox(server, 'POST', 'sandbox/calls', { from: CALLER, to: numbers[0] });
    assert.match(callSid, /^CA[0-9a-f]{32}$/);

    const banner = (page) => page.locator('#incoming .incoming', { hasText: `Incoming call from ${CALLER}` });
    await Promise.all([banner(alice.page).waitFor(), banner(bob.page).waitFor()]);
    await screenshot(bob.page, 'incoming-call');
    const callId = await banner(bob.page).getAttribute('data-call-id');
    assert.equal(await banner(alice.page).getAttribute('data-call-id'), callId, 'the same call rings both');

    await banner(alice.page).getByRole('button', { name: 'Accept' }).click();
    await callState(alice.page).filter({ hasText: 'Connected' }).waitFor();
    await banner(bob.page).waitFor({ state: 'detached', timeout: 5_000 });
    assert.equal(await bob.page.locator('#call-panel').isHidden(), true, 'nothing rings or shows for bob');
    const call = (await api(server, tokens.alice, 'GET', `calls/${callId}`)).body;
    assert.equal(call.agent, 'alice');
    assert.equal(call.participants[call.answeredBy].agent, 'alice');

    // On hold, as the conference reports it (the call's own participants, live).
    await alice.page.getByRole('button', { name: 'Hold', exact: true }).click();
    await alice.page.locator('#call-panel li[data-label="customer"]', { hasText: 'on hold' }).waitFor();
    await callState(alice.page).filter({ hasText: 'On hold' }).waitFor();
    await eventually('the call to say the caller is on hold', async () => (await api(server, tokens.alice, 'GET', `calls/${callId}`)).body.participants.customer.held);
    await alice.page.getByRole('button', { name: 'Resume', exact: true }).click();
    await alice.page.locator('#call-panel li[data-label="customer"]:not(:has-text("on hold"))').waitFor();
    await callState(alice.page).filter({ hasText: 'Connected' }).waitFor();

    // The caller is still there: alice ends it.
    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    await callState(alice.page).filter({ hasText: 'Ended: completed' }).waitFor();
    await closeAll(team);
  });

  it('transfers a call warm from alice to bob: ringing, talking, handed over', async () => {
    const team = await people('alice', 'bob');
    const { alice, bob } = team;
    // A customer calls the Support line; alice answers (bob's ring stops).
    await sandbox(server, 'POST', 'sandbox/calls', { from: CALLER, to: numbers[0] });
    const ringing = alice.page.locator('#incoming .incoming', { hasText: `Incoming call from ${CALLER}` });
    await ringing.getByRole('button', { name: 'Accept' }).click();
    const aliceState = callState(alice.page);
    await aliceState.filter({ hasText: 'Connected' }).waitFor();
    const callId = await alice.page.locator('#call-panel').getAttribute('data-call-id');
    await bob.page.locator('#incoming .incoming').waitFor({ state: 'detached' });

    const asking = alice.page.waitForRequest((r) => pathOf(r) === `/calls/${callId}/transfer`);
    await alice.page.getByLabel('To', { exact: true }).fill('bob');
    await alice.page.getByLabel('Mode').selectOption('warm');
    await alice.page.getByRole('button', { name: 'Transfer', exact: true }).click();
    assert.deepEqual((await asking).postDataJSON(), { to: { agent: 'bob' }, mode: 'warm' });
    await aliceState.filter({ hasText: 'Warm transfer to bob: ringing' }).waitFor();
    // The customer waits on hold meanwhile.
    await alice.page.locator('#call-panel li[data-label="customer"]', { hasText: 'on hold' }).waitFor();
    assert.equal(await alice.page.getByRole('button', { name: 'Complete transfer' }).isDisabled(), true, 'not before bob answers');

    const banner = bob.page.locator('#incoming .incoming[data-kind="transfer"]', { hasText: `Transferred call from ${CALLER}` });
    await banner.waitFor();
    await banner.getByRole('button', { name: 'Accept' }).click();
    await callState(bob.page).filter({ hasText: 'alice is handing this call to you' }).waitFor();
    await aliceState.filter({ hasText: 'Warm transfer to bob: talking' }).waitFor();
    await screenshot(alice.page, 'warm-transfer', '#call-panel');

    await alice.page.getByRole('button', { name: 'Complete transfer' }).click();
    await aliceState.filter({ hasText: 'Transferred to bob' }).waitFor();
    await alice.page.getByRole('button', { name: 'Done' }).waitFor();
    await callState(bob.page).filter({ hasText: 'Connected' }).waitFor();
    await bob.page.locator('#call-panel li[data-label="customer"]:not(:has-text("on hold"))').waitFor();
    const call = (await api(server, tokens.bob, 'GET', `calls/${callId}`)).body;
    assert.equal(call.agent, 'bob');
    assert.equal(call.transfer.state, 'completed');
    assert.equal(call.participants.customer.held, false);

    // bob is the call's agent now: his hanging up ends it.
    await bob.page.getByRole('button', { name: 'Hang up' }).click();
    await callState(bob.page).filter({ hasText: 'Ended: completed' }).waitFor();
    await eventually('the call to end', async () => (await api(server, tokens.bob, 'GET', `calls/${callId}`)).body.state === 'completed');
    await closeAll(team);
  });

  it('lets a supervisor listen in, whisper to the agent, and leave', async () => {
    const team = await people('alice', 'sam');
    const { alice, sam } = team;
    const placed = alice.page.waitForResponse((r) => r.request().method() === 'POST' && pathOf(r) === '/calls');
    await alice.page.getByLabel('Number to call').fill(CUSTOMER);
    await alice.page.getByRole('button', { name: 'Call', exact: true }).click();
    const { callId } = await (await placed).json();
    await callState(alice.page).filter({ hasText: 'Connected' }).waitFor();

    // sam sees alice's call among the team's live calls.
    const row = sam.page.locator(`#team-calls li[data-call-id="${callId}"]`);
    await row.filter({ hasText: `alice with ${CUSTOMER}` }).waitFor();
    const asking = sam.page.waitForRequest((r) => pathOf(r) === `/calls/${callId}/monitor`);
    await row.getByRole('button', { name: 'Listen' }).click();
    assert.deepEqual((await asking).postDataJSON(), { mode: 'listen' });
    // sam's phone rings and answers by itself (sam asked for it).
    const samState = callState(sam.page);
    await samState.filter({ hasText: 'Listening to alice’s call' }).waitFor();
    assert.equal(await sam.page.locator('#incoming .incoming').count(), 0, 'no banner for a call sam asked to join');
    await alice.page.locator('#call-panel li[data-label^="supervisor-"]', { hasText: 'listen' }).waitFor();

    await sam.page.locator('#call-panel').getByRole('button', { name: 'Whisper' }).click();
    await samState.filter({ hasText: 'Whispering to alice' }).waitFor();
    assert.equal(await sam.page.locator('#call-panel').getByRole('button', { name: 'Whisper' }).getAttribute('aria-pressed'), 'true');
    await alice.page.locator('#call-panel li[data-label^="supervisor-"]', { hasText: 'whisper' }).waitFor();
    await screenshot(sam.page, 'supervisor-whisper');

    await sam.page.getByRole('button', { name: 'Leave' }).click();
    await samState.filter({ hasText: 'You left alice’s call' }).waitFor();
    await alice.page.locator('#call-panel li[data-label^="supervisor-"][data-state="left"]').waitFor();
    // The call goes on without sam.
    assert.equal(await callState(alice.page).textContent(), 'Connected');
    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    await callState(alice.page).filter({ hasText: 'Ended: completed' }).waitFor();
    await closeAll(team);
  });
});
