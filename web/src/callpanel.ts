// The live call panel: what the live events say about the call (ringing,
// connected, on hold, a transfer under way, transferred, ended), and its
// controls: mute (the browser's own microphone), hold, recording pause, hang
// up; transfer to a colleague or a number, warm (complete or cancel) or cold;
// per-participant mute; for a supervisor, listen / whisper / barge and leave;
// notes and disposition. Built once and updated in place, so what a person
// is typing (notes, a transfer target) and where the keyboard focus is stay
// put when an event arrives.

import type { Api } from './api';
import { ApiError } from './api';
import type { Leg } from './device/types';
import { duration, field, fill, h } from './dom';
import type { LiveEvents } from './live';
import type { Call, Participant } from './model';
import { counterpart, TERMINAL } from './model';
import type { Notices } from './notices';
import { normalise, problem } from './phone-number';

export interface ActiveCall {
  callId: string;
  leg: Leg | undefined;
  muted: boolean;
  /** The agent chose "Done" after the call: the panel closes. */
  wrappedUp: boolean;
  /** A supervisor's leg in someone else's call (listen, whisper, barge). */
  supervising: boolean;
}

export type MonitorMode = 'listen' | 'whisper' | 'barge';
export const MONITOR_MODES: { mode: MonitorMode; label: string; hint: string }[] = [
  { mode: 'listen', label: 'Listen', hint: 'Hear the call; nobody hears you' },
  { mode: 'whisper', label: 'Whisper', hint: 'Only the agent hears you' },
  { mode: 'barge', label: 'Barge', hint: 'Join the conversation' },
];

const DISPOSITIONS = ['resolved', 'callback', 'voicemail', 'wrong-number', 'sale', 'no-sale'];
const OVER = new Set(['left', 'no-answer', 'busy', 'failed', 'canceled', 'refused']);

function isOver(participant: Participant): boolean {
  return OVER.has(participant.state);
}

/**
 * How a call looks to `me` right now (its agent, a transfer target, or a
 * supervisor); `held`: whether the customer is on hold, if known better than
 * the call says.
 */
export function describe(call: Call, me: string, held = call.participants?.customer?.held ?? false): { text: string; tone: 'live' | 'wait' | 'done' } {
  const participants = Object.values(call.participants ?? {});
  const mine = participants.filter((p) => p.agent === me);
  const agentLeg = call.agentLabel ? call.participants?.[call.agentLabel] : undefined;
  if (TERMINAL.has(call.state)) {
    return { text: `Ended: ${call.state.replace('-', ' ')}`, tone: 'done' };
  }
  if (mine.length > 0 && mine.every((p) => p.role === 'supervisor')) {
    const leg = mine.at(-1)!;
    const whose = agentLeg?.agent ? `${agentLeg.agent}’s call` : 'the call';
    if (isOver(leg)) {
      return { text: `You left ${whose}`, tone: 'done' };
    }
    if (leg.state !== 'joined') {
      return { text: `Joining ${whose}…`, tone: 'wait' };
    }
    const doing =
      leg.monitor === 'whisper' ? `Whispering to ${agentLeg?.agent ?? 'the agent'}` : leg.monitor === 'barge' ? `Barged into ${whose}` : `Listening to ${whose}`;
    return { text: doing, tone: 'live' };
  }
  if (agentLeg && agentLeg.agent !== me && mine.length > 0 && mine.every((p) => isOver(p))) {
    return { text: `Transferred to ${agentLeg.agent ?? agentLeg.number ?? 'a colleague'}`, tone: 'done' };
  }
  const transfer = call.transfer;
  if (transfer && (transfer.state === 'ringing' || transfer.state === 'talking')) {
    if (transfer.to.agent === me) {
      return { text: `${transfer.by} is handing this call to you`, tone: 'wait' };
    }
    const to = transfer.to.agent ?? transfer.to.number ?? '';
    const mode = transfer.mode === 'warm' ? 'Warm' : 'Cold';
    return { text: `${mode} transfer to ${to}: ${transfer.state === 'talking' ? 'talking' : 'ringing'}`, tone: 'wait' };
  }
  switch (call.state) {
    case 'created':
    case 'dialing':
      return { text: 'Calling…', tone: 'wait' };
    case 'ringing':
      return { text: 'Ringing', tone: 'wait' };
    default:
      return held ? { text: 'On hold', tone: 'wait' } : { text: 'Connected', tone: 'live' };
  }
}

/** What a transfer form's "To" means: a number (E.164 once normalised), or an agent id. */
export function transferTarget(value: string): { number: string } | { agent: string } | { problem: string } {
  const text = value.trim();
  if (!text) {
    return { problem: 'Enter a colleague’s agent id or a number.' };
  }
  if (text.startsWith('+') || /^[\d\s().-]+$/.test(text)) {
    const why = problem(text);
    return why ? { problem: why } : { number: normalise(text) };
  }
  return { agent: text };
}

export class CallPanel {
  readonly element = h('section', { id: 'call-panel', 'aria-labelledby': 'call-title', hidden: true });
  private active: ActiveCall | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;

  private readonly title = h('span', {});
  private readonly clock = h('span', { class: 'clock', 'aria-label': 'Call time' });
  private readonly state = h('p', { class: 'call-state', role: 'status', 'aria-live': 'polite' });
  private readonly muteButton = h('button', { type: 'button' }, 'Mute');
  private readonly holdButton = h('button', { type: 'button' }, 'Hold');
  private readonly recordingButton = h('button', { type: 'button' }, 'Pause recording');
  private readonly hangUpButton = h('button', { type: 'button', class: 'danger' }, 'Hang up');
  private readonly controls = h(
    'div',
    { class: 'actions', role: 'group', 'aria-label': 'Call controls' },
    this.muteButton,
    this.holdButton,
    this.recordingButton,
    this.hangUpButton,
  );
  private readonly monitorButtons = MONITOR_MODES.map(({ mode, label, hint }) =>
    h('button', { type: 'button', 'data-mode': mode, title: hint, onclick: () => void this.monitor(mode) }, label),
  );
  private readonly monitorControls = h(
    'div',
    { class: 'actions', role: 'group', 'aria-label': 'Supervise' },
    ...this.monitorButtons,
    h('button', { type: 'button', class: 'danger', onclick: () => void this.leave() }, 'Leave'),
  );
  private readonly participants = h('ul', { class: 'participants', 'aria-label': 'On the call' });
  private readonly transferStatus = h('div', { class: 'actions', role: 'group', 'aria-label': 'Transfer under way' });
  private readonly transferTo = h('input', { id: 'transfer-to', autocomplete: 'off', placeholder: 'bob or +14155550100' });
  private readonly transferMode = h(
    'select',
    { id: 'transfer-mode' },
    h('option', { value: 'warm' }, 'Warm (talk first)'),
    h('option', { value: 'cold' }, 'Cold (hand over)'),
  );
  private readonly transferError = h('p', { class: 'error', role: 'alert' });
  private readonly transferForm = h(
    'form',
    { class: 'transfer', 'aria-labelledby': 'transfer-title' },
    h('h3', { id: 'transfer-title' }, 'Transfer'),
    field('To', this.transferTo, 'A colleague’s agent id, or a number in international format'),
    field('Mode', this.transferMode),
    this.transferError,
    h('button', { type: 'submit' }, 'Transfer'),
  );
  private readonly notes = h('textarea', { id: 'call-notes', rows: 3, maxlength: 4000 });
  private readonly disposition = h('input', { id: 'call-disposition', list: 'dispositions', autocomplete: 'off' });
  private readonly saved = h('p', { class: 'saved', role: 'status' });
  private readonly notesForm = h(
    'form',
    { class: 'notes', 'aria-label': 'Notes and disposition' },
    field('Notes', this.notes),
    field('Disposition', this.disposition),
    h('datalist', { id: 'dispositions' }, ...DISPOSITIONS.map((d) => h('option', { value: d }))),
    h('button', { type: 'submit' }, 'Save notes'),
    this.saved,
  );
  private readonly doneButton = h('button', { type: 'button' }, 'Done');
  /** Whether the notes were typed into since the call opened (then live events leave them alone). */
  private notesTouched = false;
  /**
   * What Twilio answered to the last hold or resume, and what the call said
   * then: it stands until a conference event changes the call's own `held`
   * (Twilio reports holds only to a conference that asked for them).
   */
  private holdAnswer: { held: boolean; callSaid: boolean } | undefined;

  constructor(
    private readonly api: Api,
    private readonly me: string,
    private readonly live: LiveEvents,
    private readonly notices: Notices,
    private readonly onDone: () => void,
  ) {
    fill(
      this.element,
      h('h2', { id: 'call-title' }, this.title, ' ', this.clock),
      this.state,
      this.controls,
      this.monitorControls,
      this.participants,
      this.transferStatus,
      this.transferForm,
      this.notesForm,
      this.doneButton,
    );
    this.muteButton.addEventListener('click', () => this.active?.leg?.mute(!this.active.muted));
    this.holdButton.addEventListener('click', () => void this.hold(!this.held()));
    this.recordingButton.addEventListener('click', () => void this.control('recording', { action: this.call()?.recordingPaused ? 'resume' : 'pause' }));
    this.hangUpButton.addEventListener('click', () => this.hangUp());
    this.doneButton.addEventListener('click', () => this.wrapUp());
    this.transferForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.transfer();
    });
    for (const input of [this.notes, this.disposition]) {
      input.addEventListener('input', () => (this.notesTouched = true));
    }
    this.notesForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.saveNotes();
    });
  }

  /** The call on the panel, unless wrapped up. */
  get current(): ActiveCall | undefined {
    return this.active && !this.active.wrappedUp ? this.active : undefined;
  }

  /** Shows `active` on the panel, fresh. */
  open(active: ActiveCall): void {
    this.active = active;
    const call = this.call();
    this.notes.value = call?.notes ?? '';
    this.disposition.value = call?.disposition ?? '';
    this.notesTouched = false;
    this.holdAnswer = undefined;
    this.saved.textContent = '';
    this.transferTo.value = '';
    this.transferError.textContent = '';
    this.render();
  }

  close(): void {
    this.active = undefined;
    this.render();
  }

  private call(): Call | undefined {
    return this.active ? this.live.calls.get(this.active.callId) : undefined;
  }

  /** Whether the customer is on hold: the call's word, or Twilio's answer to the last hold since. */
  private held(): boolean {
    const callSays = this.call()?.participants?.customer?.held ?? false;
    if (this.holdAnswer && this.holdAnswer.callSaid === callSays) {
      return this.holdAnswer.held;
    }
    this.holdAnswer = undefined;
    return callSays;
  }

  private async hold(hold: boolean): Promise<void> {
    const callSaid = this.call()?.participants?.customer?.held ?? false;
    try {
      const answer = (await this.request('POST', 'hold', { hold })) as { hold?: boolean };
      this.holdAnswer = { held: answer?.hold ?? hold, callSaid };
      this.render();
    } catch (error) {
      this.failed(error);
    }
  }

  render(): void {
    clearInterval(this.ticker);
    const active = this.active;
    if (!active || active.wrappedUp) {
      this.element.hidden = true;
      return;
    }
    const call = this.call();
    const held = this.held();
    const state = call ? describe(call, this.me, held) : { text: active.leg ? 'Connecting…' : 'Calling…', tone: 'wait' as const };
    const ended = state.tone === 'done' && !active.leg;
    const connected = call?.state === 'in-progress' && !ended;
    this.title.textContent = call ? `${active.supervising ? 'Supervising a call with' : 'Call with'} ${counterpart(call)}` : 'Call';
    this.state.textContent = state.text;
    this.state.className = `call-state ${state.tone}`;
    this.state.dataset.state = call?.state ?? 'connecting';
    this.element.dataset.callId = active.callId;

    const mine = call ? Object.values(call.participants ?? {}).find((p) => p.agent === this.me && !isOver(p)) : undefined;
    this.clock.textContent = '';
    if (mine?.state === 'joined' && !ended) {
      const since = mine.reached?.joined ?? call?.reached?.['in-progress'];
      const origin = since ? Date.parse(since) : Date.now();
      const tick = () => (this.clock.textContent = duration(Math.max(0, Date.now() - origin) / 1000));
      tick();
      this.ticker = setInterval(tick, 1000);
    }

    // The agent's controls.
    this.controls.hidden = ended;
    this.muteButton.textContent = active.muted ? 'Unmute' : 'Mute';
    this.muteButton.setAttribute('aria-pressed', String(active.muted));
    this.muteButton.disabled = !active.leg;
    this.holdButton.hidden = active.supervising;
    this.holdButton.textContent = held ? 'Resume' : 'Hold';
    this.holdButton.setAttribute('aria-pressed', String(held));
    this.holdButton.disabled = !connected;
    this.recordingButton.hidden = active.supervising || !call?.recorded;
    this.recordingButton.textContent = call?.recordingPaused ? 'Resume recording' : 'Pause recording';
    this.recordingButton.setAttribute('aria-pressed', String(call?.recordingPaused ?? false));
    this.recordingButton.disabled = !connected;
    this.hangUpButton.hidden = active.supervising;

    // A supervisor's.
    this.monitorControls.hidden = !active.supervising || ended;
    for (const button of this.monitorButtons) {
      button.setAttribute('aria-pressed', String(mine?.monitor === button.dataset.mode));
      button.disabled = !connected;
    }

    fill(this.participants, ...(call && !ended ? this.participantRows(call, active) : []));
    this.participants.hidden = !call || ended;

    // Transfers: the one under way, else the form (a connected call's agent).
    const transfer = call?.transfer;
    const underWay = !!transfer && (transfer.state === 'ringing' || transfer.state === 'talking');
    const handing = underWay && transfer.to.agent !== this.me && !active.supervising;
    fill(this.transferStatus, ...(handing && !ended ? this.transferButtons(transfer) : []));
    this.transferStatus.hidden = !handing || ended;
    const isAgent = call?.agentLabel ? call.participants?.[call.agentLabel]?.agent === this.me : !active.supervising;
    this.transferForm.hidden = !connected || underWay || active.supervising || !isAgent;

    if (call && !this.notesTouched) {
      this.notes.value = call.notes ?? '';
      this.disposition.value = call.disposition ?? '';
    }
    this.notesForm.hidden = active.supervising;
    this.doneButton.hidden = !ended;
    this.element.hidden = false;
  }

  private participantRows(call: Call, active: ActiveCall): HTMLElement[] {
    return Object.values(call.participants ?? {}).map((p) => {
      const mayMute = active.supervising ? p.agent !== this.me && p.role !== 'supervisor' : p.role === 'customer' || p.role === 'transfer';
      return h(
        'li',
        { 'data-label': p.label, 'data-state': p.state },
        h('span', {}, `${p.label}: ${p.agent ?? p.number ?? ''}`),
        h('span', { class: 'tag' }, p.state),
        p.held ? h('span', { class: 'tag' }, 'on hold') : null,
        p.muted ? h('span', { class: 'tag' }, 'muted') : null,
        p.monitor ? h('span', { class: 'tag' }, p.monitor) : null,
        mayMute && p.state === 'joined'
          ? h(
              'button',
              { type: 'button', class: 'quiet', onclick: () => void this.control(`participants/${encodeURIComponent(p.label)}/mute`, { muted: !p.muted }) },
              p.muted ? `Unmute ${p.label}` : `Mute ${p.label}`,
            )
          : null,
      );
    });
  }

  private transferButtons(transfer: NonNullable<Call['transfer']>): HTMLElement[] {
    const complete = h('button', { type: 'button', class: 'primary', onclick: () => void this.control('transfer/complete') }, 'Complete transfer');
    // A warm transfer is handed over once the target has answered.
    complete.disabled = transfer.state !== 'talking';
    return [transfer.mode === 'warm' ? complete : null, h('button', { type: 'button', onclick: () => void this.control('transfer/cancel') }, 'Cancel transfer')].filter(
      (b): b is HTMLButtonElement => b !== null,
    );
  }

  private async transfer(): Promise<void> {
    const target = transferTarget(this.transferTo.value);
    if ('problem' in target) {
      this.transferError.textContent = target.problem;
      this.transferTo.setAttribute('aria-invalid', 'true');
      this.transferTo.focus();
      return;
    }
    this.transferTo.removeAttribute('aria-invalid');
    this.transferError.textContent = '';
    try {
      await this.request('POST', 'transfer', { to: target, mode: this.transferMode.value });
      this.transferTo.value = '';
    } catch (error) {
      if (error instanceof ApiError && error.status !== 401) {
        this.transferError.textContent = error.message;
      }
    }
  }

  private async saveNotes(): Promise<void> {
    if (!this.active) {
      return;
    }
    this.saved.textContent = 'Saving…';
    try {
      await this.api.request('PATCH', `calls/${encodeURIComponent(this.active.callId)}`, {
        body: { notes: this.notes.value, disposition: this.disposition.value },
      });
      this.saved.textContent = 'Saved';
      this.notesTouched = false;
    } catch (error) {
      this.saved.textContent = `Not saved: ${(error as Error).message}`;
    }
  }

  private async monitor(mode: MonitorMode): Promise<void> {
    await this.control('monitor', { mode });
  }

  private async leave(): Promise<void> {
    const active = this.active;
    if (!active) {
      return;
    }
    try {
      await this.request('DELETE', 'monitor');
    } catch (error) {
      this.failed(error);
    }
    active.leg?.hangUp();
  }

  private hangUp(): void {
    const active = this.active;
    if (!active) {
      return;
    }
    if (active.leg) {
      // The agent's leg leaving ends the call for everyone, unless a transfer
      // is under way (then the customer stays with the target).
      active.leg.hangUp();
    } else {
      // No browser leg yet: call it off before the customer is dialed.
      void this.control('hangup');
    }
  }

  private wrapUp(): void {
    if (this.active) {
      this.active.wrappedUp = true;
    }
    this.render();
    this.onDone();
  }

  private request(method: string, action: string, body: unknown = undefined): Promise<unknown> {
    const callId = this.active?.callId ?? '';
    return this.api.request(method, `calls/${encodeURIComponent(callId)}/${action}`, body === undefined ? {} : { body });
  }

  private async control(action: string, body: unknown = {}): Promise<void> {
    try {
      await this.request('POST', action, body);
    } catch (error) {
      this.failed(error);
    }
  }

  private failed(error: unknown): void {
    if (error instanceof ApiError && error.status !== 401) {
      this.notices.show('error', { tone: 'error', title: 'That did not work', body: error.message });
    }
  }
}
