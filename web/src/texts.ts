// Texts by conversation: GET /messages grouped by the other party's number,
// kept current by the live events, and sending with POST /messages (one
// Idempotency-Key per text, so a retry never sends it twice).

import type { Api } from './api';
import { ApiError } from './api';
import { byId, field, fill, h, when } from './dom';
import type { LiveEvents } from './live';
import type { Message, PhoneNumber } from './model';
import { counterpart, ourNumber } from './model';
import { normalise, problem } from './phone-number';

export class Texts {
  private readonly root = byId('texts');
  private readonly list = h('ul', { id: 'conversations', class: 'conversations', 'aria-label': 'Conversations' });
  private readonly thread = h('section', { id: 'thread', 'aria-live': 'polite', 'aria-labelledby': 'thread-title' });
  private readonly status = h('p', { role: 'status' });
  private readonly bubbles = h('ol', { class: 'bubbles' });
  private selected: string | undefined;
  private compose: { counterpart: string; form: HTMLFormElement } | undefined;
  private loaded = false;

  constructor(
    private readonly api: Api,
    private readonly live: LiveEvents,
    private readonly usableNumbers: () => PhoneNumber[],
  ) {
    const start = h('input', { id: 'new-conversation', type: 'tel', placeholder: '+14155550100', autocomplete: 'off' });
    const startError = h('p', { class: 'error', role: 'alert' });
    const startForm = h('form', { class: 'inline', 'aria-label': 'New conversation' }, field('New conversation with', start), h('button', { type: 'submit' }, 'Open'), startError);
    startForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const why = problem(start.value);
      startError.textContent = why ?? '';
      if (!why) {
        this.select(normalise(start.value));
        start.value = '';
      }
    });
    fill(this.root, h('h2', {}, 'Texts'), startForm, this.status, h('div', { class: 'split' }, this.list, this.thread));
    live.messageChanged.add(() => {
      if (this.loaded) {
        this.render();
      }
    });
  }

  show(): void {
    if (!this.loaded) {
      void this.load();
    }
  }

  private async load(): Promise<void> {
    this.loaded = true;
    this.status.textContent = 'Loading…';
    try {
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: { messages: Message[]; next: string | null } = await this.api.request('GET', 'messages', { query: { limit: 100, cursor } });
        page.messages.forEach((m) => this.live.applyMessage(m));
        cursor = page.next;
        pages += 1;
      } while (cursor && pages < 5);
      this.status.textContent = '';
    } catch (error) {
      this.status.textContent = error instanceof ApiError && error.status === 401 ? '' : `The texts could not be loaded: ${(error as Error).message}`;
    }
    this.render();
  }

  private conversations(): Map<string, Message[]> {
    const byCounterpart = new Map<string, Message[]>();
    const all = [...this.live.messages.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const message of all) {
      const other = counterpart(message);
      byCounterpart.set(other, [...(byCounterpart.get(other) ?? []), message]);
    }
    return byCounterpart;
  }

  private select(other: string): void {
    this.selected = other;
    this.render();
    byId('text-body').focus();
  }

  private render(): void {
    const conversations = this.conversations();
    const ordered = [...conversations.entries()].sort(([, a], [, b]) => b.at(-1)!.createdAt.localeCompare(a.at(-1)!.createdAt));
    fill(
      this.list,
      ...ordered.map(([other, messages]) => {
        const last = messages.at(-1)!;
        return h(
          'li',
          {},
          h(
            'button',
            { type: 'button', class: 'conversation', 'aria-current': other === this.selected ? 'true' : undefined, 'data-counterpart': other, onclick: () => this.select(other) },
            h('strong', {}, other),
            h('span', {}, last.body.slice(0, 60)),
            h('small', {}, when(last.createdAt)),
          ),
        );
      }),
    );
    if (!ordered.length) {
      this.list.append(h('li', { class: 'empty' }, 'No texts yet.'));
    }
    this.renderThread(this.selected ? (conversations.get(this.selected) ?? []) : undefined);
  }

  private renderThread(messages: Message[] | undefined): void {
    if (!this.selected || !messages) {
      this.compose = undefined;
      fill(this.thread, h('p', { id: 'thread-title', class: 'empty' }, 'Choose a conversation.'));
      return;
    }
    // The form stays while the conversation does, so what is being typed is
    // kept when a text arrives; only the bubbles are drawn again.
    if (this.compose?.counterpart !== this.selected) {
      this.compose = this.composeForm(this.selected, messages.at(-1));
      fill(this.thread, h('h3', { id: 'thread-title' }, this.selected), this.bubbles, this.compose.form);
    }
    fill(
      this.bubbles,
      ...messages.map((m) =>
        h(
          'li',
          { class: m.direction, 'data-sid': m.sid, 'data-status': m.status },
          h('p', {}, m.body),
          h('small', {}, `${when(m.createdAt)} · ${m.direction === 'outbound' ? m.status : `to ${m.to}`}`),
        ),
      ),
    );
  }

  private composeForm(other: string, last: Message | undefined): { counterpart: string; form: HTMLFormElement } {
    const ours = this.usableNumbers();
    const from = h('select', { id: 'text-from' }, ...ours.map((n) => h('option', { value: n.number }, n.label ? `${n.label} (${n.number})` : n.number)));
    if (last && ours.some((n) => n.number === ourNumber(last))) {
      from.value = ourNumber(last);
    }
    const body = h('textarea', { id: 'text-body', rows: 2, maxlength: 1600, required: true });
    const error = h('p', { class: 'error', role: 'alert' });
    const send = h('button', { type: 'submit', class: 'primary' }, 'Send');
    const form = h('form', { class: 'compose', 'aria-label': `Text ${other}` }, field('From', from), field('Message', body), error, send);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!body.value.trim()) {
        error.textContent = 'Write a message first.';
        return;
      }
      if (!from.value) {
        error.textContent = 'You have no number to text from: an admin assigns numbers under Admin.';
        return;
      }
      send.disabled = true;
      this.api
        .request<Message>('POST', 'messages', { body: { to: other, from: from.value, body: body.value }, idempotencyKey: crypto.randomUUID() })
        .then((message) => {
          body.value = '';
          error.textContent = '';
          this.live.applyMessage(message);
        })
        .catch((e: ApiError) => (error.textContent = e.message))
        .finally(() => (send.disabled = false));
    });
    return { counterpart: other, form };
  }
}
