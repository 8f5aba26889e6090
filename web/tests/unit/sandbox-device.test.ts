/// <reference types="node" />
// The sandbox twin of the Device, against a scripted stand-in for the
// sandbox's device API (the browser tests drive the real one): incoming
// calls announced once and taken away, a 409 on accept, the Voice token
// refused, Twilio unreachable and back.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';

import { SandboxDevice } from '../../src/device/sandbox';
import type { DeviceEvent, Leg, LegEvent } from '../../src/device/types';

type Route = (body: unknown) => unknown;

/** A device API answering from `routes` ("GET sandbox/device/incoming" → answer), recording requests. */
function sandboxApi(routes: Record<string, Route>) {
  const requests: string[] = [];
  const fetch = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const key = `${method} ${path}`;
    requests.push(key);
    const route = routes[key];
    if (!route) {
      throw Object.assign(new Error(`no route ${key}`), { status: 404, code: 'not_found' });
    }
    const answer = route(body);
    if (answer instanceof Error) {
      throw answer;
    }
    return answer;
  };
  return { fetch, requests };
}

function refusal(status: number, code: string, message: string, twilioCode?: number): Error {
  return Object.assign(new Error(message), { status, code, body: { error: { code, message, twilioCode } } });
}

/** Lets the fake's promises settle, then moves the clock on. */
async function advance(ms: number): Promise<void> {
  for (let i = 0; i < 5; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  mock.timers.tick(ms);
  for (let i = 0; i < 5; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const RINGING = { callSid: 'CA1', status: 'ringing', direction: 'incoming', parameters: { callId: '01J', from: '+14155550177', kind: 'inbound' } };

describe('SandboxDevice drives the sandbox’s simulated device', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('announces a ringing call once, and ends it as canceled when a colleague answers', async () => {
    let status = 'ringing';
    const api = sandboxApi({
      'GET sandbox/device/incoming': () => ({ identity: 'agent_bob', calls: [{ ...RINGING, status }] }),
      'GET sandbox/device/calls/CA1': () => ({ ...RINGING, status }),
    });
    const device = new SandboxDevice('voice-token', api.fetch);
    const events: DeviceEvent[] = [];
    device.on((event) => events.push(event));
    await device.register();
    assert.deepEqual(
      events.map((e) => e.type),
      ['registering', 'incoming', 'registered'],
    );
    const leg = (events[1] as { leg: Leg }).leg;
    assert.deepEqual(leg.params, { callId: '01J', from: '+14155550177', kind: 'inbound' });
    const legEvents: LegEvent[] = [];
    leg.on((event) => legEvents.push(event));
    await advance(600);
    await advance(600);
    assert.equal(events.filter((e) => e.type === 'incoming').length, 1, 'announced once, however often it is listed');
    status = 'canceled';
    await advance(400);
    assert.deepEqual(legEvents, [{ type: 'ended', reason: 'canceled' }]);
    device.destroy();
  });

  it('a 409 on accept means the call stopped ringing', async () => {
    const api = sandboxApi({
      'GET sandbox/device/incoming': () => ({ calls: [RINGING] }),
      'GET sandbox/device/calls/CA1': () => RINGING,
      'POST sandbox/device/CA1/accept': () => refusal(409, 'not_ringing', 'the call is canceled, not ringing'),
    });
    const device = new SandboxDevice('voice-token', api.fetch);
    let leg: Leg | undefined;
    device.on((event) => {
      if (event.type === 'incoming') {
        leg = event.leg;
      }
    });
    await device.register();
    const legEvents: LegEvent[] = [];
    leg!.on((event) => legEvents.push(event));
    await leg!.accept();
    assert.deepEqual(legEvents, [{ type: 'ended', reason: 'canceled' }]);
    device.destroy();
  });

  it('connects with the Voice token and params; Twilio refusing the token is a token failure', async () => {
    let refuse = false;
    const api = sandboxApi({
      'GET sandbox/device/incoming': () => ({ calls: [] }),
      'POST sandbox/device/connect': (body) => {
        assert.deepEqual(body, { token: 'voice-token', params: { callId: '01K' } });
        return refuse ? refusal(401, 'invalid_access_token', 'the access token has expired', 20104) : { callSid: 'CA2', status: 'ringing', direction: 'outgoing' };
      },
      'GET sandbox/device/calls/CA2': () => ({ callSid: 'CA2', status: 'in-progress' }),
    });
    const device = new SandboxDevice('voice-token', api.fetch);
    const leg = await device.connect({ callId: '01K' });
    const legEvents: LegEvent[] = [];
    leg.on((event) => legEvents.push(event));
    await advance(400);
    assert.deepEqual(legEvents, [{ type: 'accepted', callSid: 'CA2' }]);
    refuse = true;
    await assert.rejects(device.connect({ callId: '01K' }), (error: { failure?: unknown }) => {
      assert.deepEqual(error.failure, { kind: 'token', code: 20104, message: 'the access token has expired' });
      return true;
    });
    device.destroy();
  });

  it('reports Twilio unreachable once, and registers again when it is back', async () => {
    let reachable = false;
    const api = sandboxApi({
      'GET sandbox/device/incoming': () => (reachable ? { calls: [] } : refusal(503, 'twilio_unreachable', 'Twilio cannot be reached')),
    });
    const device = new SandboxDevice('voice-token', api.fetch);
    const events: DeviceEvent[] = [];
    device.on((event) => events.push(event));
    await assert.rejects(device.register(), (error: { failure?: { kind: string } }) => error.failure?.kind === 'network');
    await advance(600);
    await advance(600);
    assert.equal(events.filter((e) => e.type === 'error').length, 0, 'the outage is reported once (by register)');
    reachable = true;
    await advance(600);
    assert.deepEqual(
      events.map((e) => e.type),
      ['registering', 'registered'],
    );
    device.destroy();
  });
});
