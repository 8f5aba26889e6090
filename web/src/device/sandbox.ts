// The sandbox twin of `twilio.ts`: the same `PhoneDevice`, driving the
// simulated browser device of `switchboard --sandbox` over HTTP (the agent's
// sign-in token as bearer) instead of Twilio's Voice SDK. Everything the
// sandbox's device API looks like is in this file
// (crates/twilio-sim/src/sandbox.rs and device.rs serve it):
//
//   POST /sandbox/device/connect {token, params}     -> 201 a device call
//   GET  /sandbox/device/incoming                    -> {identity, calls: [device call]}
//   GET  /sandbox/device/calls/{callSid}             -> a device call
//   POST /sandbox/device/{callSid}/accept|reject|hangup   (409 not_ringing: it no longer rings)
//   POST /sandbox/device/{callSid}/digits {digits}
//
// A device call: {callSid, status, direction, from, to, parameters: {callId, from, kind}, …},
// its status Twilio's: ringing, in-progress, then completed, canceled (a
// colleague answered, the caller hung up), busy (rejected), no-answer, failed.
// Refusals: 401 invalid_access_token {twilioCode} (the Voice token, as Twilio
// checks it), 503 twilio_unreachable (the sandbox's `reachable` fault).

import { Listeners } from './types';
import type { DeviceEvent, DeviceFailure, Leg, LegEvent, PhoneDevice, Unsubscribe } from './types';

/** An HTTP call to the server, signed in (the page's API client). */
export type SandboxFetch = (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<unknown>;

const INCOMING_POLL_MS = 500;
const LEG_POLL_MS = 300;
const TOKEN_REFRESH_MS = 60_000;
/** Twilio's statuses of a call that is over. */
const ENDED = new Set(['completed', 'canceled', 'busy', 'no-answer', 'failed']);

export interface DeviceCallView {
  callSid: string;
  status: string;
  direction: 'incoming' | 'outgoing';
  params: Record<string, string>;
}

/** The calls of `GET /sandbox/device/incoming` (`{identity, calls}`). */
export function readIncoming(body: unknown): DeviceCallView[] {
  const calls = (body as { calls?: unknown } | null)?.calls;
  if (!Array.isArray(calls)) {
    return [];
  }
  return calls.flatMap((raw) => {
    const call = raw as { callSid?: unknown; status?: unknown; direction?: unknown; parameters?: unknown };
    if (typeof call.callSid !== 'string' || typeof call.status !== 'string') {
      return [];
    }
    const parameters = (call.parameters ?? {}) as Record<string, unknown>;
    const params = Object.fromEntries(Object.entries(parameters).map(([k, v]) => [k, String(v)]));
    return [{ callSid: call.callSid, status: call.status, direction: call.direction === 'outgoing' ? 'outgoing' : 'incoming', params }];
  });
}

/** What a status change means to the page, if anything. */
export function legEventOf(before: string, status: string, direction: 'incoming' | 'outgoing'): LegEvent | undefined {
  if (status === before) {
    return undefined;
  }
  if (status === 'ringing') {
    return { type: 'ringing' };
  }
  if (status === 'in-progress') {
    return { type: 'accepted' };
  }
  if (ENDED.has(status)) {
    // A ringing call that stopped before this device answered was taken away
    // (a colleague answered, the caller hung up): the SDK's `cancel`.
    const canceled = direction === 'incoming' && before === 'ringing' && status !== 'busy' && status !== 'failed';
    return { type: 'ended', reason: canceled ? 'canceled' : status === 'busy' ? 'rejected' : 'hangup' };
  }
  return undefined;
}

/** Sorts a refused device request by what the person can do about it. */
export function failureOf(error: unknown): DeviceFailure {
  const record = error as { status?: number; code?: string; body?: { error?: { twilioCode?: unknown } } };
  const message = error instanceof Error ? error.message : String(error);
  const twilioCode = record.body?.error?.twilioCode;
  const code = typeof twilioCode === 'number' ? twilioCode : undefined;
  let kind: DeviceFailure['kind'] = 'other';
  if (record.code === 'invalid_access_token' || record.code === 'not_your_token') {
    kind = 'token';
  } else if (record.status === undefined || record.status === 0 || record.status >= 500) {
    kind = 'network';
  }
  return code === undefined ? { kind, message } : { kind, code, message };
}

/** Seconds since the epoch when a JWT expires, or undefined. */
function expiry(token: string): number | undefined {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')));
    return typeof payload.exp === 'number' ? payload.exp : undefined;
  } catch {
    return undefined;
  }
}

function failed(error: unknown): Error {
  const failure = failureOf(error);
  return Object.assign(new Error(failure.message), { failure });
}

export class SandboxDevice implements PhoneDevice {
  readonly kind = 'sandbox' as const;
  private readonly listeners = new Listeners<DeviceEvent>();
  /** Incoming legs seen, by CallSid (a leg is announced once). */
  private readonly seen = new Map<string, SandboxLeg>();
  private poller: ReturnType<typeof setTimeout> | undefined;
  private refresh: ReturnType<typeof setTimeout> | undefined;
  private destroyed = false;
  private offline = false;

  constructor(
    private token: string,
    private readonly fetch: SandboxFetch,
  ) {
    this.scheduleRefresh();
  }

  async register(): Promise<void> {
    this.listeners.emit({ type: 'registering' });
    try {
      await this.poll();
    } catch (error) {
      // Keep trying, as the SDK does once its signalling socket drops.
      this.offline = true;
      this.schedulePoll();
      throw failed(error);
    }
    this.listeners.emit({ type: 'registered' });
    this.schedulePoll();
  }

  async connect(params: Record<string, string>): Promise<Leg> {
    let answer: { callSid?: string; status?: string };
    try {
      answer = (await this.fetch('POST', 'sandbox/device/connect', { token: this.token, params })) as typeof answer;
    } catch (error) {
      throw failed(error);
    }
    if (!answer?.callSid) {
      throw failed(new Error('the sandbox answered without a callSid'));
    }
    const leg = new SandboxLeg(answer.callSid, 'outgoing', params, this.fetch);
    leg.watch(answer.status ?? 'ringing');
    return leg;
  }

  updateToken(token: string): void {
    this.token = token;
    this.scheduleRefresh();
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.poller);
    clearTimeout(this.refresh);
    for (const leg of this.seen.values()) {
      leg.stop();
    }
    this.seen.clear();
    this.listeners.emit({ type: 'unregistered' });
    this.listeners.clear();
  }

  on(listener: (event: DeviceEvent) => void): Unsubscribe {
    return this.listeners.add(listener);
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refresh);
    const exp = expiry(this.token);
    if (exp !== undefined) {
      const wait = Math.max(0, exp * 1000 - Date.now() - TOKEN_REFRESH_MS);
      this.refresh = setTimeout(() => this.listeners.emit({ type: 'tokenWillExpire' }), Math.min(wait, 2 ** 31 - 1));
    }
  }

  private schedulePoll(): void {
    if (this.destroyed) {
      return;
    }
    this.poller = setTimeout(() => {
      this.poll()
        .then(() => {
          if (this.offline) {
            this.offline = false;
            this.listeners.emit({ type: 'registered' });
          }
        })
        .catch((error) => {
          // Reported once per outage, like the SDK's signalling errors.
          if (!this.offline && !this.destroyed) {
            this.offline = true;
            this.listeners.emit({ type: 'error', failure: failureOf(error) });
          }
        })
        .finally(() => this.schedulePoll());
    }, INCOMING_POLL_MS);
  }

  private async poll(): Promise<void> {
    const calls = readIncoming(await this.fetch('GET', 'sandbox/device/incoming'));
    if (this.destroyed) {
      return;
    }
    for (const call of calls) {
      if (call.status === 'ringing' && !this.seen.has(call.callSid)) {
        const leg = new SandboxLeg(call.callSid, 'incoming', call.params, this.fetch);
        this.seen.set(call.callSid, leg);
        leg.watch('ringing');
        this.listeners.emit({ type: 'incoming', leg });
      }
    }
  }
}

export class SandboxLeg implements Leg {
  readonly params: Readonly<Record<string, string>>;
  private readonly listeners = new Listeners<LegEvent>();
  private status = 'ringing';
  private muted = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private done = false;

  constructor(
    readonly callSid: string,
    readonly direction: 'outgoing' | 'incoming',
    params: Record<string, string>,
    private readonly fetch: SandboxFetch,
  ) {
    this.params = Object.freeze({ ...params });
  }

  /** Follows the leg's status (from `status`) until it ends. */
  watch(status: string): void {
    this.status = status;
    const tick = () => {
      this.timer = setTimeout(() => {
        this.fetch('GET', `sandbox/device/calls/${encodeURIComponent(this.callSid)}`)
          .then((body) => this.apply(String((body as { status?: unknown })?.status ?? '')))
          .catch((error) => {
            if ((error as { status?: number }).status === 404) {
              this.finish('hangup');
            }
          })
          .finally(() => {
            if (!this.done) {
              tick();
            }
          });
      }, LEG_POLL_MS);
    };
    // A leg already in progress when it is placed says so first.
    if (status === 'in-progress') {
      queueMicrotask(() => this.listeners.emit({ type: 'accepted', callSid: this.callSid }));
    }
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private apply(status: string): void {
    if (!status || this.done) {
      return;
    }
    const event = legEventOf(this.status, status, this.direction);
    this.status = status;
    if (!event) {
      return;
    }
    if (event.type === 'ended') {
      this.finish(event.reason);
    } else {
      this.listeners.emit(event.type === 'accepted' ? { type: 'accepted', callSid: this.callSid } : event);
    }
  }

  private finish(reason: 'hangup' | 'canceled' | 'rejected'): void {
    if (!this.done) {
      this.done = true;
      this.stop();
      this.listeners.emit({ type: 'ended', reason });
    }
  }

  private act(action: string, body?: unknown): Promise<unknown> {
    return this.fetch('POST', `sandbox/device/${encodeURIComponent(this.callSid)}/${action}`, body);
  }

  async accept(): Promise<void> {
    let answer: unknown;
    try {
      answer = await this.act('accept');
    } catch (error) {
      // 409: it stopped ringing (the caller hung up, a colleague answered).
      if ((error as { status?: number }).status === 409) {
        this.finish('canceled');
        return;
      }
      throw failed(error);
    }
    this.apply(String((answer as { status?: unknown })?.status ?? 'in-progress'));
  }

  reject(): void {
    this.act('reject').catch(() => undefined);
    this.finish('rejected');
  }

  hangUp(): void {
    this.act('hangup').catch(() => undefined);
    this.finish('hangup');
  }

  mute(muted: boolean): void {
    // The microphone is the browser's: muting stays on this side, as the SDK's does.
    this.muted = muted;
    this.listeners.emit({ type: 'muted', muted });
  }

  isMuted(): boolean {
    return this.muted;
  }

  sendDigits(digits: string): void {
    this.act('digits', { digits }).catch((error) => this.listeners.emit({ type: 'error', failure: failureOf(error) }));
  }

  on(listener: (event: LegEvent) => void): Unsubscribe {
    return this.listeners.add(listener);
  }
}
