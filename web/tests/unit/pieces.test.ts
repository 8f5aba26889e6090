/// <reference types="node" />
// The page's small rules: numbers as typed, sign-in tokens, how a call looks
// to its agent, the sandbox device's answers.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { describe as describeCall, transferTarget } from '../../src/callpanel';
import { failureOf, legEventOf, readIncoming } from '../../src/device/sandbox';
import type { Call } from '../../src/model';
import { isNewer } from '../../src/model';
import { isE164, normalise, problem } from '../../src/phone-number';
import { claim, hasRole, readToken } from '../../src/session';

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.c2lnbmF0dXJl`;
}

describe('phone numbers', () => {
  it('normalises what people type', () => {
    assert.equal(normalise(' +1 (415) 555-0100 '), '+14155550100');
    assert.equal(normalise('0044 20 7946 0958'), '+442079460958');
    assert.equal(isE164('+14155550100'), true);
    assert.equal(isE164('+0123456789'), false);
    assert.equal(isE164('+1415555010012345'), false);
  });

  it('says what is wrong', () => {
    assert.match(problem('') ?? '', /Enter a number/);
    assert.match(problem('4155550100') ?? '', /Start with \+/);
    assert.match(problem('+12') ?? '', /not a full international number/);
    assert.equal(problem('+1 415 555 0100'), undefined);
  });
});

describe('sign-in tokens', () => {
  const now = Date.parse('2026-11-30T10:00:00Z');

  it('reads sub and exp', () => {
    const token = jwt({ sub: 'alice', exp: now / 1000 + 60, workspace_id: 'acme', role: ['agent', 'admin'] });
    const read = readToken(`Bearer ${token}`, now);
    assert.notEqual(typeof read, 'string');
    if (typeof read !== 'string') {
      assert.equal(read.agent, 'alice');
      assert.equal(read.expiresAt, now + 60_000);
      assert.equal(hasRole(read.claims, 'admin'), true);
      assert.equal(claim(read.claims, 'workspace_id'), 'acme');
    }
  });

  it('tells an expired token from one that is not a token', () => {
    assert.equal(readToken(jwt({ sub: 'alice', exp: now / 1000 - 1 }), now), 'expired');
    assert.equal(readToken('not.a.token', now), 'malformed');
    assert.equal(readToken(jwt({ exp: now / 1000 + 60 }), now), 'malformed');
  });

  it('reads dotted claim paths as the server does', () => {
    assert.equal(claim({ app_metadata: { workspace_id: 'acme' } }, 'app_metadata.workspace_id'), 'acme');
    assert.equal(claim({ 'https://x.example/ws': 'acme' }, 'https://x.example/ws'), 'acme');
  });
});

describe('a call as its agent sees it', () => {
  const base: Call = {
    callId: '01J',
    direction: 'outbound',
    agent: 'alice',
    from: '+14155550100',
    to: '+14155550199',
    state: 'in-progress',
    createdAt: '2026-11-30T10:00:00.000Z',
    updatedAt: '2026-11-30T10:00:01.000Z',
    agentLabel: 'agent-1',
    participants: {
      'agent-1': { label: 'agent-1', role: 'agent', agent: 'alice', state: 'joined' },
      customer: { label: 'customer', role: 'customer', number: '+14155550199', state: 'joined', held: false },
    },
  };

  it('connected, on hold, ringing, ended', () => {
    assert.deepEqual(describeCall(base, 'alice'), { text: 'Connected', tone: 'live' });
    const held = structuredClone(base);
    held.participants!.customer!.held = true;
    assert.equal(describeCall(held, 'alice').text, 'On hold');
    assert.equal(describeCall({ ...base, state: 'ringing' }, 'alice').text, 'Ringing');
    assert.deepEqual(describeCall({ ...base, state: 'no-answer' }, 'alice'), { text: 'Ended: no answer', tone: 'done' });
  });

  it('a warm transfer under way, then transferred away', () => {
    const transferring: Call = {
      ...base,
      transfer: { label: 'transfer-1', mode: 'warm', to: { agent: 'bob' }, state: 'talking', by: 'alice' },
    };
    assert.equal(describeCall(transferring, 'alice').text, 'Warm transfer to bob: talking');
    const done = structuredClone(base);
    done.agentLabel = 'transfer-1';
    done.participants!['agent-1']!.state = 'left';
    done.participants!['transfer-1'] = { label: 'transfer-1', role: 'transfer', agent: 'bob', state: 'joined' };
    assert.deepEqual(describeCall(done, 'alice'), { text: 'Transferred to bob', tone: 'done' });
    assert.equal(describeCall(done, 'bob').text, 'Connected');
    // The target, while it is handed over.
    transferring.participants!['transfer-1'] = { label: 'transfer-1', role: 'transfer', agent: 'bob', state: 'joined' };
    assert.equal(describeCall(transferring, 'bob').text, 'alice is handing this call to you');
  });

  it("a supervisor's view: joining, listening, whispering, barging, gone", () => {
    const supervised = structuredClone(base);
    const leg = { label: 'supervisor-1', role: 'supervisor' as const, agent: 'sam', state: 'ringing', monitor: 'listen' as const };
    supervised.participants!['supervisor-1'] = leg;
    assert.deepEqual(describeCall(supervised, 'sam'), { text: 'Joining alice’s call…', tone: 'wait' });
    leg.state = 'joined';
    assert.deepEqual(describeCall(supervised, 'sam'), { text: 'Listening to alice’s call', tone: 'live' });
    Object.assign(leg, { monitor: 'whisper' });
    assert.equal(describeCall(supervised, 'sam').text, 'Whispering to alice');
    Object.assign(leg, { monitor: 'barge' });
    assert.equal(describeCall(supervised, 'sam').text, 'Barged into alice’s call');
    leg.state = 'left';
    assert.deepEqual(describeCall(supervised, 'sam'), { text: 'You left alice’s call', tone: 'done' });
    // The agent sees their call as before.
    assert.equal(describeCall(supervised, 'alice').text, 'Connected');
  });

  it('replaces only with newer copies', () => {
    assert.equal(isNewer({ updatedAt: '2026-11-30T10:00:01.001Z' }, { updatedAt: '2026-11-30T10:00:01.000Z' }), true);
    assert.equal(isNewer({ updatedAt: '2026-11-30T10:00:01.000Z' }, { updatedAt: '2026-11-30T10:00:01.000Z' }), false);
    assert.equal(isNewer({ updatedAt: 'x' }, undefined), true);
  });
});

describe("the sandbox device's answers", () => {
  it('reads the calls of GET /sandbox/device/incoming, skipping what is not a call', () => {
    const body = {
      identity: 'agent_alice',
      calls: [
        { callSid: 'CA1', status: 'ringing', direction: 'incoming', parameters: { callId: '01J', from: '+14155550177', kind: 'inbound' } },
        { callSid: 'CA2', status: 'canceled', direction: 'incoming', parameters: { callId: 7 } },
        { nope: 1 },
      ],
    };
    assert.deepEqual(readIncoming(body), [
      { callSid: 'CA1', status: 'ringing', direction: 'incoming', params: { callId: '01J', from: '+14155550177', kind: 'inbound' } },
      { callSid: 'CA2', status: 'canceled', direction: 'incoming', params: { callId: '7' } },
    ]);
    assert.deepEqual(readIncoming(null), []);
    assert.deepEqual(readIncoming({ calls: 'no' }), []);
  });

  it("maps Twilio's call statuses to the leg's events", () => {
    assert.deepEqual(legEventOf('ringing', 'in-progress', 'outgoing'), { type: 'accepted' });
    assert.equal(legEventOf('in-progress', 'in-progress', 'outgoing'), undefined);
    assert.deepEqual(legEventOf('in-progress', 'completed', 'outgoing'), { type: 'ended', reason: 'hangup' });
    // Stopped ringing before this device answered: a colleague did, or the caller left.
    assert.deepEqual(legEventOf('ringing', 'canceled', 'incoming'), { type: 'ended', reason: 'canceled' });
    assert.deepEqual(legEventOf('ringing', 'no-answer', 'incoming'), { type: 'ended', reason: 'canceled' });
    assert.deepEqual(legEventOf('ringing', 'busy', 'incoming'), { type: 'ended', reason: 'rejected' });
    assert.deepEqual(legEventOf('ringing', 'failed', 'outgoing'), { type: 'ended', reason: 'hangup' });
    assert.equal(legEventOf('ringing', 'queued', 'outgoing'), undefined);
  });

  it('sorts refusals by what the person can do', () => {
    const refused = Object.assign(new Error('the access token signature is invalid'), {
      status: 401,
      code: 'invalid_access_token',
      body: { error: { code: 'invalid_access_token', twilioCode: 20107 } },
    });
    assert.deepEqual(failureOf(refused), { kind: 'token', code: 20107, message: 'the access token signature is invalid' });
    assert.equal(failureOf(Object.assign(new Error('down'), { status: 503, code: 'twilio_unreachable' })).kind, 'network');
    assert.equal(failureOf(Object.assign(new Error('no server'), { status: 0, code: 'unreachable' })).kind, 'network');
    assert.equal(failureOf(Object.assign(new Error('busy'), { status: 409, code: 'not_ringing' })).kind, 'other');
  });
});

describe('the transfer form', () => {
  it('reads a number or an agent id', () => {
    assert.deepEqual(transferTarget(' +1 415 555 0123 '), { number: '+14155550123' });
    assert.deepEqual(transferTarget('bob'), { agent: 'bob' });
    assert.match((transferTarget('415 555 0123') as { problem: string }).problem, /Start with \+/);
    assert.match((transferTarget('  ') as { problem: string }).problem, /agent id or a number/);
  });
});
