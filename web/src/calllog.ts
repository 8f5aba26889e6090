// The call log: GET /calls with filters and paging, kept current by the live
// events, and one call's details (timeline, notes, recordings) with playback.
// An <audio> element cannot send the bearer token, so a recording is fetched
// (following the redirect to a presigned URL in AWS) and played from a blob.

import type { Api } from './api';
import { ApiError } from './api';
import { byId, duration, field, fill, h, when } from './dom';
import type { LiveEvents } from './live';
import type { Call } from './model';
import { CALL_STATES, counterpart, ourNumber } from './model';

const PAGE_SIZE = 20;

export class CallLog {
  private readonly root = byId('calls');
  private readonly rows = h('tbody');
  private readonly more = h('button', { type: 'button', id: 'calls-more', hidden: true }, 'Older calls');
  private readonly summary = h('p', { id: 'calls-summary', role: 'status' });
  private readonly detail = h('section', { id: 'call-detail', 'aria-labelledby': 'call-detail-title', hidden: true });
  private readonly direction = h(
    'select',
    { id: 'filter-direction' },
    h('option', { value: '' }, 'Any'),
    h('option', { value: 'inbound' }, 'Inbound'),
    h('option', { value: 'outbound' }, 'Outbound'),
  );
  private readonly status = h('select', { id: 'filter-status' }, h('option', { value: '' }, 'Any'), ...CALL_STATES.map((s) => h('option', { value: s }, s)));
  private readonly mine = h('input', { id: 'filter-mine', type: 'checkbox' });
  private shown: Call[] = [];
  private next: string | null = null;
  private loaded = false;
  private audioUrl: string | undefined;
  /** The open call's player, kept while its details re-render (a live
   * change of the call, its notes saved), so playback goes on. */
  private player: { callId: string; audio: HTMLAudioElement; status: HTMLElement } | undefined;

  constructor(
    private readonly api: Api,
    private readonly me: string,
    private readonly live: LiveEvents,
  ) {
    const filters = h(
      'form',
      { class: 'filters', 'aria-label': 'Filter calls' },
      field('Direction', this.direction),
      field('Status', this.status),
      h('label', { class: 'check' }, this.mine, ' Only my calls'),
    );
    filters.addEventListener('change', () => void this.reload());
    filters.addEventListener('submit', (event) => event.preventDefault());
    this.more.addEventListener('click', () => void this.page());
    fill(
      this.root,
      h('h2', {}, 'Calls'),
      filters,
      this.summary,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'call-log' },
          h('caption', { class: 'visually-hidden' }, 'Call log, newest first'),
          h('thead', {}, h('tr', {}, ...['When', 'Number', 'Direction', 'Status', 'Agent', 'Length', ''].map((t) => h('th', { scope: 'col' }, t)))),
          this.rows,
        ),
      ),
      this.more,
      this.detail,
    );
    live.callChanged.add((call) => this.changed(call));
  }

  /** Loads the first page the first time the screen is shown. */
  show(): void {
    if (!this.loaded) {
      void this.reload();
    }
  }

  private query(): Record<string, string | number | undefined> {
    return {
      direction: this.direction.value || undefined,
      status: this.status.value || undefined,
      agent: this.mine.checked ? this.me : undefined,
      limit: PAGE_SIZE,
    };
  }

  private matches(call: Call): boolean {
    const q = this.query();
    return (!q.direction || call.direction === q.direction) && (!q.status || call.state === q.status) && (!q.agent || call.agent === q.agent);
  }

  async reload(): Promise<void> {
    this.loaded = true;
    this.shown = [];
    this.next = null;
    fill(this.rows);
    await this.page();
  }

  private async page(): Promise<void> {
    this.summary.textContent = 'Loading…';
    try {
      const page = await this.api.request<{ calls: Call[]; next: string | null }>('GET', 'calls', {
        query: { ...this.query(), cursor: this.next ?? undefined },
      });
      for (const call of page.calls) {
        if (this.shown.some((c) => c.callId === call.callId)) {
          continue;
        }
        // A newer copy from the live events wins over the listing's.
        const current = this.live.calls.get(call.callId);
        const shown = current && current.updatedAt > call.updatedAt ? current : call;
        this.shown.push(shown);
        this.rows.append(this.row(shown));
        this.live.applyCall(call);
      }
      this.next = page.next;
      this.more.hidden = !page.next;
      this.count();
    } catch (error) {
      this.summary.textContent = error instanceof ApiError && error.status === 401 ? '' : `The calls could not be loaded: ${(error as Error).message}`;
    }
  }

  private count(): void {
    this.summary.textContent = this.shown.length ? `${this.shown.length} call${this.shown.length === 1 ? '' : 's'} shown` : 'No calls yet.';
  }

  private row(call: Call): HTMLTableRowElement {
    const open = h('button', { type: 'button', class: 'quiet', onclick: () => void this.open(call.callId) }, 'Details');
    return h(
      'tr',
      { 'data-call-id': call.callId, 'data-state': call.state },
      h('td', {}, when(call.createdAt)),
      h('td', {}, counterpart(call)),
      h('td', {}, call.direction),
      h('td', {}, h('span', { class: `tag state-${call.state}` }, call.state), Object.keys(call.recordings ?? {}).length ? h('span', { class: 'tag', title: 'Recorded' }, 'rec') : null),
      h('td', {}, call.agent ?? ''),
      h('td', {}, duration(call.durationSeconds)),
      h('td', {}, open),
    );
  }

  private changed(call: Call): void {
    if (!this.loaded) {
      return;
    }
    const at = this.shown.findIndex((c) => c.callId === call.callId);
    if (at >= 0 && this.shown[at] === call) {
      return;
    }
    const existing = this.rows.querySelector(`tr[data-call-id="${CSS.escape(call.callId)}"]`);
    if (at >= 0) {
      this.shown[at] = call;
      existing?.replaceWith(this.row(call));
    } else if (this.matches(call)) {
      this.shown.unshift(call);
      this.rows.prepend(this.row(call));
      this.count();
    }
    if (!this.detail.hidden && this.detail.dataset.callId === call.callId) {
      void this.open(call.callId);
    }
  }

  private async open(callId: string): Promise<void> {
    let call: Call;
    try {
      call = await this.api.request<Call>('GET', `calls/${encodeURIComponent(callId)}`);
    } catch (error) {
      fill(this.detail, h('p', { class: 'error', role: 'alert' }, (error as Error).message));
      this.detail.hidden = false;
      return;
    }
    this.detail.dataset.callId = callId;
    const recordings = Object.values(call.recordings ?? {});
    if (this.player?.callId !== callId) {
      this.player = { callId, audio: h('audio', { id: 'recording-player', controls: true, hidden: true }), status: h('p', { role: 'status' }) };
    }
    const { audio: player, status: playStatus } = this.player;
    fill(
      this.detail,
      h('h3', { id: 'call-detail-title' }, `${call.direction === 'inbound' ? 'From' : 'To'} ${counterpart(call)}`),
      h(
        'dl',
        {},
        h('dt', {}, 'Our number'),
        h('dd', {}, ourNumber(call)),
        h('dt', {}, 'Status'),
        h('dd', {}, call.state, call.endReason ? ` (${call.endReason})` : ''),
        h('dt', {}, 'Agent'),
        h('dd', {}, call.agent ?? '—'),
        h('dt', {}, 'Notes'),
        h('dd', {}, call.notes || '—'),
        h('dt', {}, 'Disposition'),
        h('dd', {}, call.disposition || '—'),
      ),
      recordings.length
        ? h(
            'div',
            { class: 'recordings' },
            h('h4', {}, 'Recordings'),
            h(
              'ul',
              {},
              ...recordings.map((r) =>
                h(
                  'li',
                  {},
                  `${r.source ?? 'Recording'} ${duration(r.durationSeconds)} (${r.status})`,
                  ' ',
                  h('button', { type: 'button', 'data-recording': r.sid, disabled: !r.objectKey, onclick: () => void this.play(callId, r.sid, player, playStatus) }, 'Play'),
                ),
              ),
            ),
            player,
            playStatus,
          )
        : null,
      h('h4', {}, 'Timeline'),
      call.timeline?.length ? null : h('p', { class: 'empty' }, 'Nothing from Twilio yet.'),
      h(
        'ol',
        { class: 'timeline' },
        ...(call.timeline ?? []).map((entry) =>
          h('li', {}, h('time', { datetime: entry.at ?? '' }, when(entry.at)), ' ', entry.kind ?? '', entry.detail ? ` ${Object.values(entry.detail).join(' ')}` : ''),
        ),
      ),
      h('button', { type: 'button', class: 'quiet', onclick: () => (this.detail.hidden = true) }, 'Close'),
    );
    this.detail.hidden = false;
  }

  private async play(callId: string, recording: string, player: HTMLAudioElement, status: HTMLElement): Promise<void> {
    status.textContent = 'Fetching the recording…';
    try {
      const blob = await this.api.blob(`calls/${encodeURIComponent(callId)}/recording`, { recording });
      if (this.audioUrl) {
        URL.revokeObjectURL(this.audioUrl);
      }
      this.audioUrl = URL.createObjectURL(blob);
      player.src = this.audioUrl;
      player.hidden = false;
      status.textContent = `Playing (${Math.round(blob.size / 1024)} KB)`;
      await player.play().catch(() => undefined);
    } catch (error) {
      status.textContent = `The recording could not be played: ${(error as Error).message}`;
    }
  }
}
