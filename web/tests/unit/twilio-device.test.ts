/// <reference types="node" />
// The real-SDK wrapper's event mapping, with an EventEmitter standing in for
// the SDK's Device and Call (same event names and arguments as the SDK's).

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';

import { TwilioDevice } from '../../src/device/twilio';
import type { SdkCall, SdkDevice } from '../../src/device/twilio';
import { classify } from '../../src/device/types';
import type { DeviceEvent, Leg, LegEvent } from '../../src/device/types';

/** A Twilio-style error: the SDK's TwilioError carries `code` and `message`. */
function twilioError(code: number, message: string): Error & { code: number } {
  return Object.assign(new Error(message), { code });
}

class FakeCall extends EventEmitter implements SdkCall {
  readonly customParameters: Map<string, string>;
  readonly parameters: Record<string, string> = {};
  readonly actions: string[] = [];
  private muted = false;

  constructor(params: Record<string, string> = {}) {
    super();
    this.customParameters = new Map(Object.entries(params));
  }

  accept(): void {
    this.actions.push('accept');
  }
  reject(): void {
    this.actions.push('reject');
  }
  disconnect(): void {
    this.actions.push('disconnect');
  }
  mute(shouldMute = true): void {
    this.muted = shouldMute;
    this.actions.push(`mute:${shouldMute}`);
  }
  isMuted(): boolean {
    return this.muted;
  }
  sendDigits(digits: string): void {
    this.actions.push(`digits:${digits}`);
  }
}

class FakeSdkDevice extends EventEmitter implements SdkDevice {
  readonly tokens: string[] = [];
  connected: { params: Record<string, string> } | undefined;
  destroyed = false;
  registerError: unknown;
  connectError: unknown;
  readonly outgoing = new FakeCall();

  async register(): Promise<void> {
    if (this.registerError) {
      throw this.registerError;
    }
  }
  async connect(options: { params: Record<string, string> }): Promise<SdkCall> {
    if (this.connectError) {
      throw this.connectError;
    }
    this.connected = options;
    return this.outgoing;
  }
  updateToken(token: string): void {
    this.tokens.push(token);
  }
  destroy(): void {
    this.destroyed = true;
  }
}

function recordDevice(device: TwilioDevice): DeviceEvent[] {
  const events: DeviceEvent[] = [];
  device.on((event) => events.push(event));
  return events;
}

function recordLeg(leg: Leg): LegEvent[] {
  const events: LegEvent[] = [];
  leg.on((event) => events.push(event));
  return events;
}

describe('TwilioDevice maps the SDK Device events', () => {
  it('registration states and tokenWillExpire', () => {
    const sdk = new FakeSdkDevice();
    const events = recordDevice(new TwilioDevice(sdk));
    sdk.emit('registering');
    sdk.emit('registered');
    sdk.emit('tokenWillExpire', sdk);
    sdk.emit('unregistered');
    assert.deepEqual(
      events.map((e) => e.type),
      ['registering', 'registered', 'tokenWillExpire', 'unregistered'],
    );
  });

  it('updateToken reaches the SDK (the tokenWillExpire answer)', () => {
    const sdk = new FakeSdkDevice();
    const device = new TwilioDevice(sdk);
    device.updateToken('voice-token-2');
    assert.deepEqual(sdk.tokens, ['voice-token-2']);
  });

  it('sorts device errors by what the person can do', () => {
    const sdk = new FakeSdkDevice();
    const events = recordDevice(new TwilioDevice(sdk));
    sdk.emit('error', twilioError(31401, 'PermissionDeniedError (31401): denied'));
    sdk.emit('error', twilioError(20104, 'AccessTokenExpired (20104): expired'));
    sdk.emit('error', twilioError(53000, 'SignalingConnectionError (53000): no socket'));
    sdk.emit('error', twilioError(31480, 'TemporarilyUnavailable (31480)'));
    const failures = events.flatMap((e) => (e.type === 'error' ? [e.failure] : []));
    assert.deepEqual(
      failures.map((f) => [f.kind, f.code]),
      [
        ['microphone', 31401],
        ['token', 20104],
        ['network', 53000],
        ['other', 31480],
      ],
    );
    assert.equal(failures[1]!.message, 'AccessTokenExpired (20104): expired');
  });

  it("leaves a call's own errors to its leg", () => {
    const sdk = new FakeSdkDevice();
    const events = recordDevice(new TwilioDevice(sdk));
    sdk.emit('error', twilioError(31005, 'ConnectionError'), new FakeCall());
    assert.deepEqual(events, []);
  });

  it('an incoming call becomes a leg with its custom parameters', () => {
    const sdk = new FakeSdkDevice();
    const events = recordDevice(new TwilioDevice(sdk));
    const call = new FakeCall({ callId: '01JCALL', from: '+14155550100', kind: 'inbound' });
    sdk.emit('incoming', call);
    assert.equal(events.length, 1);
    const event = events[0]!;
    assert.equal(event.type, 'incoming');
    const leg = (event as { leg: Leg }).leg;
    assert.equal(leg.direction, 'incoming');
    assert.deepEqual({ ...leg.params }, { callId: '01JCALL', from: '+14155550100', kind: 'inbound' });
    void leg.accept();
    leg.mute(true);
    leg.sendDigits('1#');
    leg.reject();
    assert.deepEqual(call.actions, ['accept', 'mute:true', 'digits:1#', 'reject']);
    assert.equal(leg.isMuted(), true);
  });

  it('connect sends the params and answers an outgoing leg', async () => {
    const sdk = new FakeSdkDevice();
    const device = new TwilioDevice(sdk);
    const leg = await device.connect({ callId: '01JOUT' });
    assert.deepEqual(sdk.connected, { params: { callId: '01JOUT' } });
    assert.equal(leg.direction, 'outgoing');
    assert.equal(leg.params.callId, '01JOUT');
    leg.hangUp();
    assert.deepEqual(sdk.outgoing.actions, ['disconnect']);
  });

  it('a refused microphone on connect or register is a microphone failure', async () => {
    const sdk = new FakeSdkDevice();
    const device = new TwilioDevice(sdk);
    sdk.connectError = twilioError(31401, 'PermissionDeniedError');
    await assert.rejects(device.connect({ callId: 'x' }), (error: { failure?: { kind: string } }) => error.failure?.kind === 'microphone');
    sdk.registerError = twilioError(20101, 'AccessTokenInvalid');
    await assert.rejects(device.register(), (error: { failure?: { kind: string } }) => error.failure?.kind === 'token');
  });

  it('destroy stops the events and destroys the SDK device', () => {
    const sdk = new FakeSdkDevice();
    const device = new TwilioDevice(sdk);
    const events = recordDevice(device);
    device.destroy();
    sdk.emit('registered');
    assert.equal(sdk.destroyed, true);
    assert.deepEqual(events, []);
  });
});

describe('TwilioLeg maps the SDK Call events', () => {
  async function outgoing(): Promise<{ call: FakeCall; events: LegEvent[] }> {
    const sdk = new FakeSdkDevice();
    const leg = await new TwilioDevice(sdk).connect({ callId: '01J' });
    return { call: sdk.outgoing, events: recordLeg(leg) };
  }

  it('ringing, accept (with the CallSid), mute, reconnecting, disconnect', async () => {
    const { call, events } = await outgoing();
    call.emit('ringing', false);
    call.parameters.CallSid = 'CA0123';
    call.emit('accept', call);
    call.emit('mute', true, call);
    call.emit('reconnecting', twilioError(53405, 'media'));
    call.emit('reconnected');
    call.emit('disconnect', call);
    assert.deepEqual(events, [
      { type: 'ringing' },
      { type: 'accepted', callSid: 'CA0123' },
      { type: 'muted', muted: true },
      { type: 'reconnecting' },
      { type: 'reconnected' },
      { type: 'ended', reason: 'hangup' },
    ]);
  });

  it('a cancel (a colleague answered, or the caller hung up) ends the leg once', async () => {
    const { call, events } = await outgoing();
    call.emit('cancel');
    call.emit('disconnect', call);
    assert.deepEqual(events, [{ type: 'ended', reason: 'canceled' }]);
  });

  it('a reject ends the leg as rejected', async () => {
    const { call, events } = await outgoing();
    call.emit('reject');
    assert.deepEqual(events, [{ type: 'ended', reason: 'rejected' }]);
  });

  it("a call's error is classified on the leg", async () => {
    const { call, events } = await outgoing();
    call.emit('error', twilioError(31009, 'TransportError'));
    assert.deepEqual(events, [{ type: 'error', failure: { kind: 'network', code: 31009, message: 'TransportError' } }]);
  });
});

describe('classify', () => {
  it("reads the browser's own refusal of the microphone", () => {
    const refused = Object.assign(new Error('Permission denied'), { name: 'NotAllowedError' });
    assert.equal(classify(refused).kind, 'microphone');
    assert.equal(classify('something odd').kind, 'other');
  });
});
