// The dialer's entry point: sign-in, the screens, and the one choice of
// device (Twilio's SDK, or the sandbox's simulated device when the server
// runs with --sandbox and says so in the page's <meta name="switchboard-device">).

import { Admin } from './admin';
import { Api } from './api';
import type { ApiError } from './api';
import { CallLog } from './calllog';
import { SandboxDevice } from './device/sandbox';
import { createTwilioDevice } from './device/twilio';
import type { PhoneDevice } from './device/types';
import { byId } from './dom';
import { LiveEvents } from './live';
import type { LiveStatus } from './live';
import { Notices } from './notices';
import { Phone } from './phone';
import type { SignIn } from './session';
import { hasRole, listenForPostedTokens, readToken, remember, remembered, tellHost, tokenFromFragment } from './session';
import { Texts } from './texts';

type Screen = 'phone' | 'calls' | 'texts' | 'admin';
const SCREENS: Screen[] = ['phone', 'calls', 'texts', 'admin'];

function meta(name: string): string | undefined {
  return document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content || undefined;
}

const deviceKind = meta('switchboard-device') === 'sandbox' ? 'sandbox' : 'twilio';
// The claim that names the agent's role (the server's SWITCHBOARD_AUTH_ROLE_CLAIM):
// it only decides which controls show; the server checks every request.
const roleClaim = meta('switchboard-role-claim') ?? 'role';
const apiBase = new URL(meta('switchboard-api') ?? '.', location.href);

interface Signed {
  signIn: SignIn;
  api: Api;
  live: LiveEvents;
  phone: Phone;
  calls: CallLog;
  texts: Texts;
  admin: Admin;
  expiry: ReturnType<typeof setTimeout>;
}

class Dialer {
  private signed: Signed | undefined;
  private readonly notices = new Notices();

  constructor() {
    const form = byId<HTMLFormElement>('signin-form');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.signIn(byId<HTMLTextAreaElement>('signin-token').value, 'pasted');
    });
    byId('sign-out').addEventListener('click', () => this.signOut('You signed out.'));
    for (const screen of SCREENS) {
      byId(`tab-${screen}`).addEventListener('click', () => this.show(screen));
    }
    listenForPostedTokens((token) => this.signIn(token, 'posted'));
    window.addEventListener('hashchange', () => {
      const token = tokenFromFragment();
      if (token) {
        this.signIn(token, 'fragment');
      }
    });
    document.body.dataset.device = deviceKind;
    document.body.dataset.ready = 'true';
    tellHost({ type: 'switchboard:ready' });
    const token = tokenFromFragment() ?? remembered();
    if (token) {
      this.signIn(token, 'fragment');
    }
  }

  private signIn(raw: string, how: 'pasted' | 'posted' | 'fragment'): void {
    const read = readToken(raw);
    const error = byId('signin-error');
    if (read === 'malformed') {
      error.textContent = 'That is not a sign-in token: paste the whole JWT (three parts separated by dots, with sub and exp claims).';
      if (how !== 'pasted') {
        this.showSignIn('The token handed to the dialer is not a sign-in token.');
      }
      return;
    }
    if (read === 'expired') {
      this.signOut('That sign-in token has already expired. Get a new one and sign in again.');
      return;
    }
    error.textContent = '';
    if (this.signed) {
      // A fresh token for the same session (the host refreshes it): keep the screens.
      if (this.signed.signIn.agent === read.agent) {
        this.refresh(read);
        return;
      }
      this.teardown();
    }
    this.start(read);
  }

  private start(signIn: SignIn): void {
    remember(signIn.token);
    const api = new Api(apiBase, signIn.token);
    api.onUnauthorized = (e: ApiError) => this.signOut(`Switchboard refused the sign-in token: ${e.message}`);
    // Until POST /token names the events URL: this server's own socket.
    const live = new LiveEvents(api, 'events');
    live.onStatus = (status) => this.liveStatus(status);
    live.onTokenExpired = () => this.signOut('Your sign-in expired. Sign in again to continue.');
    const makeDevice = (token: string): PhoneDevice =>
      deviceKind === 'sandbox' ? new SandboxDevice(token, (method, path, body) => api.request(method, path, { body })) : createTwilioDevice(token);
    const supervises = hasRole(signIn.claims, 'admin', roleClaim) || hasRole(signIn.claims, 'supervisor', roleClaim);
    const phone = new Phone(api, signIn.agent, makeDevice, live, this.notices, () => this.show('admin'), supervises);
    const calls = new CallLog(api, signIn.agent, live);
    const texts = new Texts(api, live, () => phone.usableNumbers());
    const admin = new Admin(api, () => {
      this.notices.clear('not-configured');
      phone.stop();
      phone.start().then((url) => url && live.setEventsUrl(url)).catch(() => undefined);
    });
    this.signed = { signIn, api, live, phone, calls, texts, admin, expiry: this.expiryTimer(signIn) };
    byId('who').textContent = signIn.agent;
    byId('signin').hidden = true;
    byId('tabs').hidden = false;
    byId('sign-out').hidden = false;
    this.show('phone');
    phone
      .start()
      .then((eventsUrl) => {
        if (eventsUrl) {
          live.setEventsUrl(eventsUrl);
        }
        if (this.signed?.live === live) {
          live.start();
        }
      })
      .catch(() => live.start());
  }

  private refresh(signIn: SignIn): void {
    const signed = this.signed!;
    clearTimeout(signed.expiry);
    signed.signIn = signIn;
    signed.api.setToken(signIn.token);
    signed.expiry = this.expiryTimer(signIn);
    remember(signIn.token);
  }

  private expiryTimer(signIn: SignIn): ReturnType<typeof setTimeout> {
    const left = Math.min(signIn.expiresAt - Date.now(), 2 ** 31 - 1);
    return setTimeout(() => this.signOut('Your sign-in expired. Sign in again to continue.'), Math.max(0, left));
  }

  private teardown(): void {
    const signed = this.signed;
    if (!signed) {
      return;
    }
    this.signed = undefined;
    clearTimeout(signed.expiry);
    signed.live.stop();
    signed.phone.stop();
    this.notices.clearAll();
    byId('live-status').textContent = '';
  }

  private signOut(reason: string): void {
    this.teardown();
    remember(undefined);
    this.showSignIn(reason);
    tellHost({ type: 'switchboard:signed-out', reason });
  }

  private showSignIn(reason: string): void {
    for (const screen of SCREENS) {
      byId(screen).hidden = true;
    }
    byId('tabs').hidden = true;
    byId('sign-out').hidden = true;
    byId('who').textContent = '';
    const why = byId('signin-reason');
    why.textContent = reason;
    why.hidden = false;
    byId('signin-title').textContent = 'Signed out';
    byId('signin').hidden = false;
    const input = byId<HTMLTextAreaElement>('signin-token');
    input.value = '';
    input.focus();
  }

  private show(screen: Screen): void {
    const signed = this.signed;
    if (!signed) {
      return;
    }
    for (const name of SCREENS) {
      byId(name).hidden = name !== screen;
      const tab = byId(`tab-${name}`);
      if (name === screen) {
        tab.setAttribute('aria-current', 'page');
      } else {
        tab.removeAttribute('aria-current');
      }
    }
    if (screen === 'calls') {
      signed.calls.show();
    } else if (screen === 'texts') {
      signed.texts.show();
    } else if (screen === 'admin') {
      signed.admin.show();
    }
  }

  private liveStatus(status: LiveStatus): void {
    const element = byId('live-status');
    element.dataset.state = status.state;
    switch (status.state) {
      case 'connecting':
        element.textContent = 'Connecting…';
        break;
      case 'open':
        element.textContent = 'Live';
        break;
      case 'reconnecting':
        element.textContent = `Reconnecting in ${status.inSeconds} s (attempt ${status.attempt})`;
        element.title = status.reason;
        break;
      case 'closed':
        element.textContent = 'Offline';
        break;
    }
  }
}

// The module runs after the document is parsed (type="module" defers it).
new Dialer();
