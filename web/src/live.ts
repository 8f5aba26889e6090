// Live events: one WebSocket (the `eventsUrl` of POST /token, `?token=` the
// sign-in token), and the README's reconnect loop: keep the newest
// `updatedAt` seen, catch up with `?updatedAfter=` once the socket is open,
// replace objects by id only when newer, back off 1, 2, 4 … 30 s.

import type { Api } from './api';
import type { Call, Message } from './model';
import { isNewer } from './model';
import { Listeners } from './device/types';

export type LiveStatus =
  | { state: 'connecting' }
  | { state: 'open' }
  | { state: 'reconnecting'; attempt: number; inSeconds: number; reason: string }
  | { state: 'closed'; reason: string };

const PING_MS = 4 * 60_000;
const MAX_BACKOFF_MS = 30_000;
const TOKEN_EXPIRED = 4001;

export class LiveEvents {
  readonly calls = new Map<string, Call>();
  readonly messages = new Map<string, Message>();
  /** Every call that changed (from a frame, the catch-up or a listing). */
  readonly callChanged = new Listeners<Call>();
  readonly messageChanged = new Listeners<Message>();
  onStatus: (status: LiveStatus) => void = () => undefined;
  /** The socket closed because the sign-in token expired (4001). */
  onTokenExpired: () => void = () => undefined;

  private socket: WebSocket | undefined;
  private watermark = '';
  private attempt = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private ping: ReturnType<typeof setInterval> | undefined;
  private stopped = false;

  constructor(
    private readonly api: Api,
    private eventsUrl: string,
  ) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.ping);
    this.socket?.close(1000, 'signed out');
    this.socket = undefined;
  }

  setEventsUrl(url: string): void {
    this.eventsUrl = url;
  }

  /** A call or message from a listing: applied like a frame, moving the watermark. */
  applyCall(call: Call): boolean {
    return this.apply(this.calls, call.callId, call, this.callChanged);
  }

  applyMessage(message: Message): boolean {
    return this.apply(this.messages, message.sid, message, this.messageChanged);
  }

  private apply<T extends { updatedAt: string }>(known: Map<string, T>, id: string, object: T, changed: Listeners<T>): boolean {
    this.see(object.updatedAt);
    if (!isNewer(object, known.get(id))) {
      return false;
    }
    known.set(id, object);
    changed.emit(object);
    return true;
  }

  private see(updatedAt: string): void {
    if (updatedAt > this.watermark) {
      this.watermark = updatedAt;
    }
  }

  private open(): void {
    clearTimeout(this.retry);
    this.onStatus({ state: 'connecting' });
    const url = new URL(this.eventsUrl, this.api.base);
    url.protocol = url.protocol.replace(/^http/, 'ws');
    url.searchParams.set('token', this.api.signInToken);
    let socket: WebSocket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      this.scheduleReconnect(`the events URL is not usable (${(error as Error).message})`);
      return;
    }
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.attempt = 0;
      this.onStatus({ state: 'open' });
      clearInterval(this.ping);
      this.ping = setInterval(() => socket.send(JSON.stringify({ action: 'ping' })), PING_MS);
      // The socket is open first, so nothing falls between the two.
      this.catchUp().catch(() => undefined);
    });
    socket.addEventListener('message', (event) => this.frame(String(event.data)));
    socket.addEventListener('close', (event) => {
      clearInterval(this.ping);
      if (this.socket !== socket || this.stopped) {
        return;
      }
      if (event.code === TOKEN_EXPIRED) {
        this.onStatus({ state: 'closed', reason: 'the sign-in token expired' });
        this.onTokenExpired();
        return;
      }
      this.scheduleReconnect(event.reason || `closed (${event.code})`);
    });
  }

  private scheduleReconnect(reason: string): void {
    if (this.stopped) {
      return;
    }
    this.attempt += 1;
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.attempt - 1));
    const wait = Math.round(base / 2 + Math.random() * (base / 2));
    this.onStatus({ state: 'reconnecting', attempt: this.attempt, inSeconds: Math.ceil(wait / 1000), reason });
    this.retry = setTimeout(() => this.open(), wait);
  }

  private frame(text: string): void {
    let frame: { type?: string; data?: unknown };
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === 'call' && frame.data) {
      this.applyCall(frame.data as Call);
    } else if (frame.type === 'message' && frame.data) {
      this.applyMessage(frame.data as Message);
    }
  }

  /** Everything that changed at or after the watermark, oldest first, every page. */
  private async catchUp(): Promise<void> {
    if (!this.watermark) {
      return;
    }
    const since = this.watermark;
    for (const [path, key] of [
      ['calls', 'calls'],
      ['messages', 'messages'],
    ] as const) {
      let cursor: string | null = null;
      do {
        const page: { next: string | null; [k: string]: unknown } = await this.api.request('GET', path, {
          query: { updatedAfter: since, limit: 100, cursor },
        });
        for (const item of (page[key] as unknown[]) ?? []) {
          if (key === 'calls') {
            this.applyCall(item as Call);
          } else {
            this.applyMessage(item as Message);
          }
        }
        cursor = page.next;
      } while (cursor);
    }
  }
}
