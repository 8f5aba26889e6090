// The page's one view of a softphone device: what the rest of the page
// needs from Twilio's `Device` and its `Call`s, in its own words. Two
// implementations: `twilio.ts` wraps the Voice SDK, `sandbox.ts` drives the
// local server's simulated device (`switchboard --sandbox`) over HTTP.

/** What went wrong, sorted by what the person can do about it. */
export type FailureKind =
  /** The browser or the person refused the microphone. */
  | 'microphone'
  /** Twilio refused the Voice access token (invalid, expired, wrong grants). */
  | 'token'
  /** Twilio could not be reached, or the connection to it broke. */
  | 'network'
  | 'other';

export interface DeviceFailure {
  kind: FailureKind;
  /** Twilio's error code, when there is one (31401, 20104, 53000, …). */
  code?: number;
  message: string;
}

export type DeviceEvent =
  | { type: 'registering' }
  | { type: 'registered' }
  | { type: 'unregistered' }
  | { type: 'tokenWillExpire' }
  | { type: 'incoming'; leg: Leg }
  | { type: 'error'; failure: DeviceFailure };

export type LegEvent =
  | { type: 'ringing' }
  | { type: 'accepted'; callSid?: string }
  | { type: 'muted'; muted: boolean }
  | { type: 'reconnecting' }
  | { type: 'reconnected' }
  /** The leg is over: `canceled` when the caller (or a colleague's answer) took it away. */
  | { type: 'ended'; reason: 'hangup' | 'canceled' | 'rejected' }
  | { type: 'error'; failure: DeviceFailure };

export type Unsubscribe = () => void;

/** One browser leg of a call: placed with `connect`, or ringing in. */
export interface Leg {
  /** Custom parameters: `callId`, and for inbound legs `from` and `kind`. */
  readonly params: Readonly<Record<string, string>>;
  readonly direction: 'outgoing' | 'incoming';
  accept(): Promise<void>;
  reject(): void;
  hangUp(): void;
  mute(muted: boolean): void;
  isMuted(): boolean;
  sendDigits(digits: string): void;
  on(listener: (event: LegEvent) => void): Unsubscribe;
}

export interface PhoneDevice {
  readonly kind: 'twilio' | 'sandbox';
  register(): Promise<void>;
  /** Places the agent's leg with custom parameters (`{callId}` from `POST /calls`). */
  connect(params: Record<string, string>): Promise<Leg>;
  updateToken(token: string): void;
  destroy(): void;
  on(listener: (event: DeviceEvent) => void): Unsubscribe;
}

/** Twilio's error codes, by what the person can do about them. */
const MICROPHONE_CODES = new Set([31401, 31402, 31208]);
const TOKEN_CODES = new Set([20101, 20102, 20103, 20104, 20105, 20106, 20107, 20151, 31202, 31204, 31205, 31207]);
// 31000 ("UnknownError") is what the SDK reports when its signalling socket cannot open.
const NETWORK_CODES = new Set([31000, 31003, 31005, 31009, 53000, 53001, 53405]);

/** Sorts a Twilio error (or a browser's `DOMException`) into a failure. */
export function classify(error: unknown): DeviceFailure {
  const record = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  const code = typeof record.code === 'number' ? record.code : undefined;
  const name = typeof record.name === 'string' ? record.name : '';
  const message = typeof record.message === 'string' && record.message ? record.message : String(error);
  let kind: FailureKind = 'other';
  if ((code !== undefined && MICROPHONE_CODES.has(code)) || name === 'NotAllowedError' || name === 'SecurityError') {
    kind = 'microphone';
  } else if (code !== undefined && TOKEN_CODES.has(code)) {
    kind = 'token';
  } else if (code !== undefined && NETWORK_CODES.has(code)) {
    kind = 'network';
  }
  return code === undefined ? { kind, message } : { kind, code, message };
}

/** A tiny typed listener list. */
export class Listeners<E> {
  private readonly listeners = new Set<(event: E) => void>();

  add(listener: (event: E) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: E): void {
    for (const listener of [...this.listeners]) {
      listener(event);
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
