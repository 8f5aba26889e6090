// Admin screens: connect the Twilio account (PUT /workspace/twilio, with the
// per-resource report), the drift check (GET /workspace/twilio), who answers
// each number (PUT /workspace/numbers/{number}), and clear (DELETE).

import type { Api } from './api';
import { ApiError, reportOf } from './api';
import { byId, field, fill, h } from './dom';
import type { PhoneNumber } from './model';

interface ResourceReport {
  kind: string;
  sid?: string;
  number?: string;
  result: string;
  reason?: string;
}

interface Drift {
  checked: boolean;
  error?: string;
  inSync?: boolean;
  twimlApp?: { sid?: string; inSync: boolean; missing?: boolean };
  numbers?: { number: string; inSync: boolean; missing?: boolean }[];
  unmanagedNumbers?: string[];
}

export class Admin {
  private readonly root = byId('admin');
  private readonly connectResult = h('div', { id: 'connect-result', 'aria-live': 'polite' });
  private readonly checkResult = h('div', { id: 'check-result', 'aria-live': 'polite' });
  private readonly numbersList = h('div', { id: 'numbers-admin' });
  private readonly clearResult = h('div', { id: 'clear-result', 'aria-live': 'polite' });
  private loaded = false;

  constructor(
    private readonly api: Api,
    private readonly onConnected: () => void,
  ) {
    fill(
      this.root,
      h('h2', {}, 'Admin'),
      this.connectForm(),
      this.connectResult,
      h('section', { 'aria-labelledby': 'check-title' }, h('h3', { id: 'check-title' }, 'Wiring check'), h('p', {}, 'Compares the TwiML App and every number at Twilio with what Switchboard set.'), h('button', { type: 'button', id: 'check-button', onclick: () => void this.check() }, 'Check now'), this.checkResult),
      h('section', { 'aria-labelledby': 'numbers-title' }, h('h3', { id: 'numbers-title' }, 'Numbers and agents'), h('p', {}, 'Agents ring for inbound calls to a number and may call or text from it. A number with no agents is a shared line.'), this.numbersList),
      this.clearSection(),
    );
  }

  show(): void {
    if (!this.loaded) {
      this.loaded = true;
      void this.loadNumbers();
    }
  }

  private connectForm(): HTMLElement {
    const accountSid = h('input', { id: 'account-sid', required: true, autocomplete: 'off', pattern: 'AC[0-9a-fA-F]{32}', placeholder: 'AC…' });
    const authToken = h('input', { id: 'auth-token', type: 'password', required: true, autocomplete: 'off' });
    const callerId = h('input', { id: 'workspace-caller-id', type: 'tel', autocomplete: 'off', placeholder: '+14155550100' });
    const record = h('input', { id: 'record-calls', type: 'checkbox' });
    const ringSeconds = h('input', { id: 'ring-seconds', type: 'number', min: 5, max: 120, placeholder: '20' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Connect');
    const form = h(
      'form',
      { id: 'connect-form', 'aria-labelledby': 'connect-title' },
      h('h3', { id: 'connect-title' }, 'Twilio account'),
      h('p', {}, 'Switchboard creates an API key and a TwiML App, and points every number of the account at itself. Running it again changes nothing that is already right.'),
      field('Account SID', accountSid),
      field('Auth Token', authToken, 'Kept sealed; never shown again'),
      field('Default caller ID (optional)', callerId),
      field('Ring agents for (seconds, optional)', ringSeconds),
      h('label', { class: 'check' }, record, ' Record calls'),
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const body: Record<string, unknown> = { accountSid: accountSid.value.trim(), authToken: authToken.value.trim(), record: record.checked };
      if (callerId.value.trim()) {
        body.callerId = callerId.value.trim();
      }
      if (ringSeconds.value) {
        body.ringSeconds = Number(ringSeconds.value);
      }
      submit.disabled = true;
      fill(this.connectResult, h('p', { role: 'status' }, 'Connecting to Twilio…'));
      this.api
        .request<{ complete: boolean; resources: ResourceReport[] }>('PUT', 'workspace/twilio', { body })
        .then((answer) => {
          authToken.value = '';
          fill(this.connectResult, h('p', { class: 'ok', role: 'status' }, 'Connected: every resource is in place.'), report(answer.resources));
          void this.loadNumbers();
          this.onConnected();
        })
        .catch((error: ApiError) => fill(this.connectResult, ...failure(error)))
        .finally(() => (submit.disabled = false));
    });
    return form;
  }

  private async check(): Promise<void> {
    fill(this.checkResult, h('p', { role: 'status' }, 'Checking…'));
    try {
      const state = await this.api.request<{ configured: boolean; accountSid?: string; twimlAppSid?: string; drift?: Drift }>('GET', 'workspace/twilio');
      if (!state.configured) {
        fill(this.checkResult, h('p', { role: 'status' }, 'No Twilio account is connected.'));
        return;
      }
      const drift = state.drift;
      if (!drift?.checked) {
        fill(this.checkResult, h('p', { class: 'error', role: 'alert' }, `Twilio could not be reached for the check: ${drift?.error ?? 'no answer'}`));
        return;
      }
      fill(
        this.checkResult,
        h('p', { class: drift.inSync ? 'ok' : 'error', role: 'status' }, drift.inSync ? `In sync (account ${state.accountSid}).` : 'Out of sync: connect again to repair.'),
        h(
          'ul',
          {},
          h('li', {}, `TwiML App ${drift.twimlApp?.sid ?? ''}: ${drift.twimlApp?.missing ? 'missing' : drift.twimlApp?.inSync ? 'in sync' : 'changed'}`),
          ...(drift.numbers ?? []).map((n) => h('li', {}, `${n.number}: ${n.missing ? 'missing' : n.inSync ? 'in sync' : 'changed'}`)),
          ...(drift.unmanagedNumbers ?? []).map((n) => h('li', {}, `${n}: new at Twilio, not wired yet`)),
        ),
      );
    } catch (error) {
      fill(this.checkResult, ...failure(error as ApiError));
    }
  }

  private async loadNumbers(): Promise<void> {
    try {
      const { numbers } = await this.api.request<{ numbers: PhoneNumber[] }>('GET', 'workspace/numbers');
      if (!numbers.length) {
        fill(this.numbersList, h('p', {}, 'No numbers yet: they come from the Twilio account once it is connected.'));
        return;
      }
      fill(this.numbersList, ...numbers.map((n) => this.numberForm(n)));
    } catch (error) {
      fill(this.numbersList, ...failure(error as ApiError));
    }
  }

  private numberForm(number: PhoneNumber): HTMLElement {
    const id = number.number.replace(/\W/g, '');
    const label = h('input', { id: `label-${id}`, maxlength: 64, autocomplete: 'off' });
    label.value = number.label ?? '';
    const agents = h('input', { id: `agents-${id}`, autocomplete: 'off', placeholder: 'alice, bob' });
    agents.value = number.agents.join(', ');
    const saved = h('span', { role: 'status' });
    const form = h(
      'form',
      { class: 'number-row', 'aria-label': `Number ${number.number}`, 'data-number': number.number },
      h('strong', {}, number.number),
      field('Label', label),
      field('Agents (comma-separated ids)', agents),
      h('button', { type: 'submit' }, 'Save'),
      saved,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const list = agents.value
        .split(/[,\s]+/)
        .map((a) => a.trim())
        .filter(Boolean);
      saved.textContent = 'Saving…';
      this.api
        .request('PUT', `workspace/numbers/${encodeURIComponent(number.number)}`, { body: { agents: list, label: label.value } })
        .then(() => (saved.textContent = 'Saved'))
        .catch((error: ApiError) => (saved.textContent = `Not saved: ${error.message}`));
    });
    return form;
  }

  private clearSection(): HTMLElement {
    const force = h('input', { id: 'clear-force', type: 'checkbox' });
    const confirm = h(
      'div',
      { class: 'confirm', hidden: true, role: 'group', 'aria-label': 'Confirm disconnecting Twilio' },
      h('p', {}, 'The numbers stop ringing here, the TwiML App and the API key are deleted at Twilio, and the credentials are forgotten. Call history and recordings stay.'),
      h('label', { class: 'check' }, force, ' Forget the account even if Twilio refuses'),
      h('button', { type: 'button', class: 'danger', id: 'clear-confirm', onclick: () => void this.clear(force.checked, confirm) }, 'Disconnect'),
      h('button', { type: 'button', onclick: () => (confirm.hidden = true) }, 'Keep it'),
    );
    return h(
      'section',
      { 'aria-labelledby': 'clear-title' },
      h('h3', { id: 'clear-title' }, 'Disconnect Twilio'),
      h('button', { type: 'button', id: 'clear-button', onclick: () => ((confirm.hidden = false), byId('clear-confirm').focus()) }, 'Disconnect…'),
      confirm,
      this.clearResult,
    );
  }

  private async clear(force: boolean, confirm: HTMLElement): Promise<void> {
    confirm.hidden = true;
    fill(this.clearResult, h('p', { role: 'status' }, 'Disconnecting…'));
    try {
      const answer = await this.api.request<{ cleared: boolean; resources: ResourceReport[] }>('DELETE', 'workspace/twilio', { query: { force: force ? 'true' : undefined } });
      fill(this.clearResult, h('p', { class: 'ok', role: 'status' }, 'Disconnected.'), report(answer.resources));
      void this.loadNumbers();
    } catch (error) {
      fill(this.clearResult, ...failure(error as ApiError));
    }
  }
}

/** The per-resource report of a connect or a clear. */
function report(resources: ResourceReport[] | undefined): HTMLElement | null {
  if (!resources?.length) {
    return null;
  }
  return h(
    'table',
    { class: 'report' },
    h('caption', {}, 'What was done at Twilio'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Resource'), h('th', { scope: 'col' }, 'Result'), h('th', { scope: 'col' }, 'Why'))),
    h(
      'tbody',
      {},
      ...resources.map((r) =>
        h('tr', { 'data-result': r.result }, h('td', {}, `${r.kind} ${r.number ?? r.sid ?? ''}`), h('td', {}, r.result), h('td', {}, r.reason ?? '')),
      ),
    ),
  );
}

/** A failed admin request in words: Twilio refused, unreachable, partly done, or other. */
function failure(error: ApiError): (HTMLElement | null)[] {
  if (!(error instanceof ApiError)) {
    return [h('p', { class: 'error', role: 'alert' }, String(error))];
  }
  const body = reportOf(error) as { resources?: ResourceReport[] } | null;
  let title: string;
  switch (error.code) {
    case 'twilio_credentials_rejected':
      title = 'Twilio refused these credentials.';
      break;
    case 'twilio_incomplete':
      title = 'Some Twilio resources could not be set: see below, then connect again.';
      break;
    case 'upstream_error':
      title = 'Twilio could not be reached.';
      break;
    case 'forbidden':
      title = 'Admin screens need the admin role.';
      break;
    case 'account_in_use':
      title = 'This Twilio account is connected to another workspace.';
      break;
    default:
      title = error.unreachable ? 'Switchboard could not be reached.' : 'That did not work.';
  }
  return [h('div', { class: 'error', role: 'alert', 'data-code': error.code }, h('strong', {}, title), h('p', {}, error.message)), report(body?.resources)];
}
