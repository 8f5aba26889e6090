// The failure states a person meets, each shown once, in words that say what
// to do: microphone refused, token rejected, workspace not configured,
// Twilio unreachable (the socket's state is in the header).

import { byId, fill, h } from './dom';

export type NoticeKey = 'microphone' | 'not-configured' | 'twilio-unreachable' | 'device' | 'error';

export interface Notice {
  tone: 'error' | 'warning' | 'info';
  title: string;
  body: string;
  action?: { label: string; run: () => void };
}

export class Notices {
  private readonly shown = new Map<NoticeKey, Notice>();
  private readonly root = byId('notices');

  show(key: NoticeKey, notice: Notice): void {
    this.shown.set(key, notice);
    this.render();
  }

  clear(key: NoticeKey): void {
    if (this.shown.delete(key)) {
      this.render();
    }
  }

  clearAll(): void {
    this.shown.clear();
    this.render();
  }

  has(key: NoticeKey): boolean {
    return this.shown.has(key);
  }

  private render(): void {
    fill(
      this.root,
      ...[...this.shown.entries()].map(([key, notice]) =>
        h(
          'div',
          { class: `notice ${notice.tone}`, role: notice.tone === 'info' ? 'status' : 'alert', 'data-notice': key },
          h('strong', {}, notice.title),
          h('p', {}, notice.body),
          notice.action ? h('button', { type: 'button', onclick: notice.action.run }, notice.action.label) : null,
          h('button', { type: 'button', class: 'quiet', 'aria-label': `Dismiss: ${notice.title}`, onclick: () => this.clear(key) }, '×'),
        ),
      ),
    );
  }
}
