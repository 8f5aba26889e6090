// The agent's phone: the device (registered with a Voice access token,
// refreshed on `tokenWillExpire`), the dial pad with its caller-ID picker,
// the incoming-call banner, the live call panel (callpanel.ts) and, for
// supervisors, the team's live calls to listen in on, whisper or barge.

import type { Api } from './api';
import { ApiError } from './api';
import type { ActiveCall, MonitorMode } from './callpanel';
import { CallPanel, MONITOR_MODES } from './callpanel';
import { byId, duration, field, fill, h } from './dom';
import type { DeviceFailure, Leg, PhoneDevice } from './device/types';
import { classify } from './device/types';
import type { LiveEvents } from './live';
import type { Call, PhoneNumber, VoiceToken } from './model';
import { counterpart, mayUse } from './model';
import type { Notices } from './notices';
import { normalise, problem } from './phone-number';

export type DeviceFactory = (token: string) => PhoneDevice;

interface Ringing {
  leg: Leg;
  callId: string;
  banner: HTMLElement;
}

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];
/** How long after asking to supervise a call its ring is answered by itself. */
const MONITOR_RING_MS = 30_000;

export class Phone {
  private device: PhoneDevice | undefined;
  private numbers: PhoneNumber[] = [];
  private readonly ringing = new Map<Leg, Ringing>();
  private deviceState = 'Not connected';
  /** The call this supervisor asked to join, and when. */
  private monitorAsked: { callId: string; at: number } | undefined;

  private readonly root = byId('phone');
  private readonly banners = byId('incoming');
  private readonly status = h('p', { id: 'device-status', role: 'status' });
  private readonly micStatus = h('p', { id: 'mic-status' });
  private readonly number = h('input', {
    id: 'dial-number',
    type: 'tel',
    inputmode: 'tel',
    autocomplete: 'off',
    placeholder: '+14155550100',
    'aria-describedby': 'dial-error',
  });
  private readonly callerId = h('select', { id: 'caller-id' }, h('option', { value: '' }, 'Automatic'));
  private readonly dialError = h('p', { id: 'dial-error', class: 'error', role: 'alert' });
  private readonly callButton = h('button', { type: 'submit', id: 'call-button', class: 'primary' }, 'Call');
  private readonly panel: CallPanel;
  private readonly teamCalls = h('section', { id: 'team-calls', 'aria-labelledby': 'team-calls-title', hidden: true });

  constructor(
    private readonly api: Api,
    private readonly me: string,
    private readonly makeDevice: DeviceFactory,
    private readonly live: LiveEvents,
    private readonly notices: Notices,
    private readonly openAdmin: () => void,
    /** Admins and supervisors may listen in, whisper and barge (the server checks). */
    private readonly supervises = false,
  ) {
    this.panel = new CallPanel(api, me, live, notices, () => this.number.focus());
    this.renderShell();
    live.callChanged.add((call) => this.onCall(call));
  }

  private get active(): ActiveCall | undefined {
    return this.panel.current;
  }

  /** Registers the device; answers the live events URL (or undefined when the workspace is not configured). */
  async start(): Promise<string | undefined> {
    this.loadNumbers().catch(() => undefined);
    this.checkMicrophonePermission().catch(() => undefined);
    if (this.supervises) {
      this.loadLiveCalls().catch(() => undefined);
    }
    let voice: VoiceToken;
    try {
      voice = await this.api.request<VoiceToken>('POST', 'token');
    } catch (error) {
      this.tokenFailed(error);
      return undefined;
    }
    this.notices.clear('not-configured');
    this.notices.clear('twilio-unreachable');
    this.setDeviceState('Registering…');
    const device = this.makeDevice(voice.token);
    this.device = device;
    device.on((event) => {
      switch (event.type) {
        case 'registering':
          this.setDeviceState('Registering…');
          break;
        case 'registered':
          this.setDeviceState('Ready for calls');
          this.notices.clear('device');
          this.notices.clear('twilio-unreachable');
          break;
        case 'unregistered':
          this.setDeviceState('Offline');
          break;
        case 'tokenWillExpire':
          this.refreshToken().catch(() => undefined);
          break;
        case 'incoming':
          this.incoming(event.leg);
          break;
        case 'error':
          this.deviceFailed(event.failure);
          break;
      }
    });
    device.register().catch((error) => this.deviceFailed((error as { failure?: DeviceFailure }).failure ?? classify(error)));
    return voice.eventsUrl;
  }

  stop(): void {
    for (const ringing of this.ringing.values()) {
      ringing.banner.remove();
    }
    this.ringing.clear();
    this.device?.destroy();
    this.device = undefined;
  }

  // ------------------------------------------------------------ the device

  private setDeviceState(text: string): void {
    this.deviceState = text;
    this.status.textContent = `Phone: ${text}`;
    this.callButton.disabled = !this.device;
  }

  private tokenFailed(error: unknown): void {
    if (error instanceof ApiError && error.code === 'twilio_not_configured') {
      this.setDeviceState('Not connected to Twilio');
      this.notices.show('not-configured', {
        tone: 'warning',
        title: 'This workspace is not connected to Twilio yet',
        body: 'Calls need a Twilio account. An admin connects it under Admin → Twilio account.',
        action: { label: 'Open Admin', run: this.openAdmin },
      });
    } else if (error instanceof ApiError && error.status === 401) {
      // The sign-out screen says why.
    } else if (error instanceof ApiError && error.unreachable) {
      this.setDeviceState('Offline');
      this.notices.show('twilio-unreachable', {
        tone: 'error',
        title: 'Calls are unavailable',
        body: error.message,
        action: { label: 'Try again', run: () => this.restart() },
      });
    } else {
      this.setDeviceState('Offline');
      this.notices.show('device', { tone: 'error', title: 'The phone could not start', body: (error as Error).message });
    }
  }

  private restart(): void {
    this.stop();
    this.start()
      .then((eventsUrl) => {
        if (eventsUrl) {
          this.live.setEventsUrl(eventsUrl);
        }
      })
      .catch(() => undefined);
  }

  private deviceFailed(failure: DeviceFailure): void {
    switch (failure.kind) {
      case 'microphone':
        this.microphoneRefused();
        break;
      case 'token': {
        const refused = {
          tone: 'error' as const,
          title: 'Twilio refused the phone’s access token',
          body: `${failure.message}${failure.code ? ` (Twilio error ${failure.code})` : ''}. Getting a new one…`,
        };
        this.notices.show('device', refused);
        this.refreshToken()
          .then(() => this.notices.show('device', { ...refused, tone: 'warning', body: `${refused.body.replace(/Getting a new one…$/, '')}The phone has a new one: try again.` }))
          .catch(() => undefined);
        break;
      }
      case 'network':
        this.setDeviceState('Offline');
        this.notices.show('twilio-unreachable', {
          tone: 'error',
          title: 'Twilio cannot be reached',
          body: `The phone cannot reach Twilio. Check the network; it keeps trying by itself. (${failure.message})`,
          action: { label: 'Reconnect now', run: () => this.restart() },
        });
        break;
      default:
        this.notices.show('device', { tone: 'error', title: 'The phone reported an error', body: failure.message });
    }
  }

  private async refreshToken(): Promise<void> {
    const voice = await this.api.request<VoiceToken>('POST', 'token');
    this.device?.updateToken(voice.token);
  }

  private async checkMicrophonePermission(): Promise<void> {
    const state = await navigator.permissions?.query({ name: 'microphone' as PermissionName });
    if (!state) {
      return;
    }
    const show = () => {
      this.micStatus.textContent = `Microphone: ${state.state === 'granted' ? 'allowed' : state.state === 'denied' ? 'blocked' : 'not asked yet'}`;
      if (state.state === 'denied') {
        this.microphoneRefused();
      } else {
        this.notices.clear('microphone');
      }
    };
    state.addEventListener('change', show);
    show();
  }

  /** Asks for the microphone before a call; false (with the notice shown) when refused. */
  private async microphone(): Promise<boolean> {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      for (const track of stream.getTracks()) {
        track.stop();
      }
      this.micStatus.textContent = 'Microphone: allowed';
      this.notices.clear('microphone');
      return true;
    } catch (error) {
      const failure = classify(error);
      if (failure.kind === 'microphone' || (error as Error).name === 'NotFoundError') {
        this.microphoneRefused((error as Error).name === 'NotFoundError');
      } else {
        this.notices.show('device', { tone: 'error', title: 'The microphone could not be opened', body: failure.message });
      }
      return false;
    }
  }

  private microphoneRefused(missing = false): void {
    this.micStatus.textContent = missing ? 'Microphone: none found' : 'Microphone: blocked';
    this.notices.show('microphone', {
      tone: 'error',
      title: missing ? 'No microphone found' : 'Microphone access is blocked',
      body: missing
        ? 'Plug in a headset or microphone, then try again.'
        : 'Calls need your microphone. Allow it for this site (the icon in the address bar, or the browser’s site settings), then try again.',
      action: { label: 'Try again', run: () => void this.microphone() },
    });
  }

  // ----------------------------------------------------------- numbers

  private async loadNumbers(): Promise<void> {
    const { numbers } = await this.api.request<{ numbers: PhoneNumber[] }>('GET', 'workspace/numbers');
    this.numbers = numbers;
    const usable = numbers.filter((n) => mayUse(n, this.me));
    fill(
      this.callerId,
      h('option', { value: '', title: 'Your own number, else the workspace’s caller ID' }, 'Automatic'),
      ...usable.map((n) => h('option', { value: n.number }, n.label ? `${n.label} (${n.number})` : n.number)),
    );
  }

  /** The numbers this agent may call or text from (the texts screen uses them too). */
  usableNumbers(): PhoneNumber[] {
    return this.numbers.filter((n) => mayUse(n, this.me));
  }

  // ----------------------------------------------------------- dialing

  private renderShell(): void {
    const keypad = h(
      'div',
      { class: 'keypad', role: 'group', 'aria-label': 'Keypad' },
      ...KEYS.map((key) =>
        h('button', { type: 'button', class: 'key', 'data-key': key, 'aria-label': `Key ${key}`, onclick: () => this.key(key) }, key),
      ),
    );
    const form = h(
      'form',
      { id: 'dial-form', 'aria-label': 'Place a call', novalidate: true },
      field('Number to call', this.number, 'International format: + and the country code'),
      field('Call from', this.callerId),
      this.dialError,
      keypad,
      this.callButton,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.dial();
    });
    this.number.addEventListener('input', () => {
      this.dialError.textContent = '';
      this.number.removeAttribute('aria-invalid');
    });
    this.callButton.disabled = true;
    fill(
      this.root,
      h('h2', { class: 'visually-hidden' }, 'Phone'),
      h('div', { class: 'device' }, this.status, this.micStatus, h('button', { type: 'button', class: 'quiet', onclick: () => void this.microphone() }, 'Check microphone')),
      this.panel.element,
      form,
      this.teamCalls,
    );
    this.setDeviceState(this.deviceState);
  }

  private key(key: string): void {
    if (this.active?.leg && !this.active.wrappedUp) {
      this.active.leg.sendDigits(key);
      return;
    }
    this.number.value += key;
    this.number.focus();
  }

  private async dial(): Promise<void> {
    const why = problem(this.number.value);
    if (why) {
      this.dialError.textContent = why;
      this.number.setAttribute('aria-invalid', 'true');
      this.number.focus();
      return;
    }
    if (!this.device) {
      this.dialError.textContent = 'The phone is not ready: see the message above.';
      return;
    }
    if (this.active && !this.active.wrappedUp) {
      this.dialError.textContent = 'Finish the current call first.';
      return;
    }
    const to = normalise(this.number.value);
    this.callButton.disabled = true;
    try {
      if (!(await this.microphone())) {
        return;
      }
      const from = this.callerId.value || undefined;
      const placed = await this.api.request<{ callId: string; connectParams: Record<string, string> }>('POST', 'calls', {
        body: { to, ...(from ? { from } : {}) },
        idempotencyKey: crypto.randomUUID(),
      });
      this.panel.open({ callId: placed.callId, leg: undefined, muted: false, wrappedUp: false, supervising: false });
      let leg: Leg;
      try {
        leg = await this.device.connect(placed.connectParams);
      } catch (error) {
        // Nobody will join the call Switchboard made: end it, so the customer is never rung.
        this.panel.close();
        this.api.request('POST', `calls/${encodeURIComponent(placed.callId)}/hangup`).catch(() => undefined);
        throw error;
      }
      this.attach(leg);
    } catch (error) {
      const failure = (error as { failure?: DeviceFailure }).failure;
      if (failure) {
        this.deviceFailed(failure);
        this.dialError.textContent = 'The call was not placed: see the message above.';
      } else if (error instanceof ApiError && error.status !== 401) {
        this.placeFailed(error);
      }
    } finally {
      this.callButton.disabled = !this.device;
    }
  }

  /** POST /calls refused: the workspace, Twilio, or the request. */
  private placeFailed(error: ApiError): void {
    if (error.code === 'twilio_not_configured') {
      this.tokenFailed(error);
    } else if (error.code === 'twilio_credentials_rejected') {
      this.notices.show('twilio-unreachable', {
        tone: 'error',
        title: 'Twilio refused the workspace’s credentials',
        body: `${error.message} An admin connects the account again under Admin → Twilio account.`,
        action: { label: 'Open Admin', run: this.openAdmin },
      });
    } else if (error.unreachable) {
      this.notices.show('twilio-unreachable', {
        tone: 'error',
        title: 'Twilio cannot be reached',
        body: `The call could not be placed: ${error.message}`,
      });
    }
    this.dialError.textContent = error.message;
  }

  private attach(leg: Leg): void {
    const active = this.active;
    if (!active) {
      return;
    }
    active.leg = leg;
    let answered = leg.direction === 'outgoing';
    leg.on((event) => {
      if (this.active !== active || active.leg !== leg) {
        return;
      }
      if (event.type === 'accepted') {
        answered = true;
      } else if (event.type === 'muted') {
        active.muted = event.muted;
      } else if (event.type === 'ended') {
        active.leg = undefined;
        if (event.reason === 'canceled' && !answered) {
          // It stopped ringing as it was answered: someone else has it.
          this.panel.close();
          this.notices.show('error', { tone: 'info', title: 'Someone else took that call', body: 'It stopped ringing before you answered.' });
          return;
        }
      } else if (event.type === 'error') {
        this.deviceFailed(event.failure);
      }
      this.panel.render();
    });
    this.panel.render();
  }

  // ----------------------------------------------------------- incoming

  private incoming(leg: Leg): void {
    const callId = leg.params.callId ?? '';
    const from = leg.params.from ?? 'an unknown number';
    // The supervisor asked to join this call a moment ago: no banner, just join.
    if (leg.params.kind === 'monitor' && this.monitorAsked?.callId === callId && Date.now() - this.monitorAsked.at < MONITOR_RING_MS) {
      this.monitorAsked = undefined;
      this.panel.open({ callId, leg: undefined, muted: false, wrappedUp: false, supervising: true });
      this.attach(leg);
      leg.accept().catch((error) => this.deviceFailed((error as { failure?: DeviceFailure }).failure ?? classify(error)));
      return;
    }
    const what = leg.params.kind === 'transfer' ? `Transferred call from ${from}` : `Incoming call from ${from}`;
    const accept = h('button', { type: 'button', class: 'primary', onclick: () => void this.accept(leg) }, 'Accept');
    const banner = h(
      'div',
      { class: 'incoming', role: 'alertdialog', 'aria-labelledby': `incoming-${callId}`, 'data-call-id': callId, 'data-kind': leg.params.kind ?? 'call' },
      h('strong', { id: `incoming-${callId}` }, what),
      h('div', { class: 'actions' }, accept, h('button', { type: 'button', class: 'danger', onclick: () => this.reject(leg) }, 'Reject')),
    );
    this.ringing.set(leg, { leg, callId, banner });
    this.banners.append(banner);
    accept.focus();
    leg.on((event) => {
      if (event.type === 'ended') {
        // Canceled: the caller hung up, or a colleague answered first.
        this.dismiss(leg);
      }
    });
  }

  private dismiss(leg: Leg): void {
    this.ringing.get(leg)?.banner.remove();
    this.ringing.delete(leg);
  }

  private async accept(leg: Leg): Promise<void> {
    if (!(await this.microphone())) {
      return;
    }
    if (this.active?.leg) {
      this.notices.show('error', { tone: 'info', title: 'Finish the current call first', body: 'Hang up (or complete the transfer) before answering another call.' });
      return;
    }
    this.dismiss(leg);
    this.panel.open({ callId: leg.params.callId ?? '', leg: undefined, muted: false, wrappedUp: false, supervising: false });
    this.attach(leg);
    try {
      await leg.accept();
    } catch (error) {
      this.deviceFailed((error as { failure?: DeviceFailure }).failure ?? classify(error));
    }
  }

  private reject(leg: Leg): void {
    leg.reject();
    this.dismiss(leg);
  }

  // ----------------------------------------------------------- calls changing

  private onCall(call: Call): void {
    // A colleague answered: this agent's banner for the call goes.
    if (call.answeredBy) {
      const answerer = call.participants?.[call.answeredBy];
      for (const ringing of [...this.ringing.values()]) {
        if (ringing.callId === call.callId && answerer?.agent !== this.me) {
          this.dismiss(ringing.leg);
        }
      }
    }
    if (call.callId === this.active?.callId) {
      this.panel.render();
    }
    if (this.supervises) {
      this.renderTeamCalls();
    }
  }

  // ----------------------------------------------------------- supervising

  /** The workspace's connected calls, so a supervisor who signs in mid-call sees them. */
  private async loadLiveCalls(): Promise<void> {
    const page = await this.api.request<{ calls: Call[] }>('GET', 'calls', { query: { status: 'in-progress', limit: 50 } });
    for (const call of page.calls) {
      this.live.applyCall(call);
    }
    this.renderTeamCalls();
  }

  private renderTeamCalls(): void {
    const calls = [...this.live.calls.values()]
      .filter((call) => call.state === 'in-progress' && call.agent !== this.me)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const rows = calls.map((call) => {
      const since = call.reached?.['in-progress'];
      const joined = this.active?.callId === call.callId && this.active.supervising;
      return h(
        'li',
        { 'data-call-id': call.callId },
        h('span', {}, `${call.agent ?? 'Nobody yet'} with ${counterpart(call)}`, since ? ` · ${duration((Date.now() - Date.parse(since)) / 1000)}` : ''),
        h(
          'span',
          { class: 'actions', role: 'group', 'aria-label': `Supervise ${call.agent ?? ''}’s call with ${counterpart(call)}` },
          ...MONITOR_MODES.map(({ mode, label, hint }) =>
            h('button', { type: 'button', title: hint, disabled: joined, onclick: () => void this.supervise(call.callId, mode) }, label),
          ),
        ),
      );
    });
    fill(
      this.teamCalls,
      h('h3', { id: 'team-calls-title' }, 'Team’s live calls'),
      rows.length ? h('ul', { class: 'team-calls' }, ...rows) : h('p', { class: 'empty' }, 'Nobody is on a call.'),
    );
    this.teamCalls.hidden = false;
  }

  /** Asks to join a call as its supervisor: the device rings, and the ring is answered by itself. */
  private async supervise(callId: string, mode: MonitorMode): Promise<void> {
    if (this.active?.leg) {
      this.notices.show('error', { tone: 'info', title: 'Finish the current call first', body: 'Hang up or leave before supervising another call.' });
      return;
    }
    if (!(await this.microphone())) {
      return;
    }
    this.monitorAsked = { callId, at: Date.now() };
    try {
      await this.api.request('POST', `calls/${encodeURIComponent(callId)}/monitor`, { body: { mode } });
    } catch (error) {
      this.monitorAsked = undefined;
      if (error instanceof ApiError && error.status !== 401) {
        this.notices.show('error', { tone: 'error', title: 'Could not join the call', body: error.message });
      }
    }
  }
}
