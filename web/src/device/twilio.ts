// The real device: Twilio's Voice SDK `Device`, seen through `PhoneDevice`.
// The SDK's events are mapped here and nowhere else (unit-tested in
// tests/unit/twilio-device.test.ts with a stand-in for the SDK).

import { Device } from '@twilio/voice-sdk';

import { classify, Listeners } from './types';
import type { DeviceEvent, Leg, LegEvent, PhoneDevice, Unsubscribe } from './types';

/** What this module uses of the SDK's `Call`. */
export interface SdkCall {
  readonly customParameters: Map<string, string>;
  readonly parameters: Record<string, string>;
  accept(): void;
  reject(): void;
  disconnect(): void;
  mute(shouldMute?: boolean): void;
  isMuted(): boolean;
  sendDigits(digits: string): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/** What this module uses of the SDK's `Device`. */
export interface SdkDevice {
  register(): Promise<void>;
  connect(options: { params: Record<string, string> }): Promise<SdkCall>;
  updateToken(token: string): void;
  destroy(): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/** Milliseconds before the Voice token expires that `tokenWillExpire` fires. */
const TOKEN_REFRESH_MS = 60_000;

/** A `PhoneDevice` on Twilio's SDK, with the Voice access token from `POST /token`. */
export function createTwilioDevice(token: string): PhoneDevice {
  const sdk = new Device(token, {
    // Ask for a new token a minute ahead (the SDK's default is 10 s).
    tokenRefreshMs: TOKEN_REFRESH_MS,
    closeProtection: true,
    codecPreferences: ['opus', 'pcmu'] as never,
  });
  return new TwilioDevice(sdk as unknown as SdkDevice);
}

export class TwilioDevice implements PhoneDevice {
  readonly kind = 'twilio' as const;
  private readonly listeners = new Listeners<DeviceEvent>();

  constructor(private readonly sdk: SdkDevice) {
    const on = (event: string, listener: (...args: any[]) => void) => sdk.on(event, listener);
    on('registering', () => this.listeners.emit({ type: 'registering' }));
    on('registered', () => this.listeners.emit({ type: 'registered' }));
    on('unregistered', () => this.listeners.emit({ type: 'unregistered' }));
    on('tokenWillExpire', () => this.listeners.emit({ type: 'tokenWillExpire' }));
    on('incoming', (call: SdkCall) => this.listeners.emit({ type: 'incoming', leg: new TwilioLeg(call, 'incoming') }));
    // A call's own errors also reach the device's; the leg reports them.
    on('error', (error: unknown, call?: SdkCall) => {
      if (!call) {
        this.listeners.emit({ type: 'error', failure: classify(error) });
      }
    });
  }

  async register(): Promise<void> {
    try {
      await this.sdk.register();
    } catch (error) {
      throw Object.assign(new Error(classify(error).message), { failure: classify(error) });
    }
  }

  async connect(params: Record<string, string>): Promise<Leg> {
    try {
      const call = await this.sdk.connect({ params });
      return new TwilioLeg(call, 'outgoing', params);
    } catch (error) {
      throw Object.assign(new Error(classify(error).message), { failure: classify(error) });
    }
  }

  updateToken(token: string): void {
    this.sdk.updateToken(token);
  }

  destroy(): void {
    this.listeners.clear();
    this.sdk.destroy();
  }

  on(listener: (event: DeviceEvent) => void): Unsubscribe {
    return this.listeners.add(listener);
  }
}

export class TwilioLeg implements Leg {
  readonly params: Readonly<Record<string, string>>;
  private readonly listeners = new Listeners<LegEvent>();
  private ended = false;

  constructor(
    private readonly call: SdkCall,
    readonly direction: 'outgoing' | 'incoming',
    sent: Record<string, string> = {},
  ) {
    // An outgoing call's custom parameters are what we sent; an incoming
    // one's arrive on the invite (`callId`, `from`, `kind`).
    this.params = Object.freeze({ ...sent, ...Object.fromEntries(call.customParameters ?? new Map()) });
    const end = (reason: 'hangup' | 'canceled' | 'rejected') => {
      if (!this.ended) {
        this.ended = true;
        this.listeners.emit({ type: 'ended', reason });
      }
    };
    call.on('ringing', () => this.listeners.emit({ type: 'ringing' }));
    call.on('accept', () => {
      const callSid = call.parameters?.CallSid;
      this.listeners.emit(callSid ? { type: 'accepted', callSid } : { type: 'accepted' });
    });
    call.on('mute', (muted: boolean) => this.listeners.emit({ type: 'muted', muted }));
    call.on('reconnecting', () => this.listeners.emit({ type: 'reconnecting' }));
    call.on('reconnected', () => this.listeners.emit({ type: 'reconnected' }));
    call.on('error', (error: unknown) => this.listeners.emit({ type: 'error', failure: classify(error) }));
    call.on('cancel', () => end('canceled'));
    call.on('reject', () => end('rejected'));
    call.on('disconnect', () => end('hangup'));
  }

  async accept(): Promise<void> {
    this.call.accept();
  }

  reject(): void {
    this.call.reject();
  }

  hangUp(): void {
    this.call.disconnect();
  }

  mute(muted: boolean): void {
    this.call.mute(muted);
  }

  isMuted(): boolean {
    return this.call.isMuted();
  }

  sendDigits(digits: string): void {
    this.call.sendDigits(digits);
  }

  on(listener: (event: LegEvent) => void): Unsubscribe {
    return this.listeners.add(listener);
  }
}
