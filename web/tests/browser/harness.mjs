// What the browser tests share: the local server binary in sandbox mode on a
// free port (a temporary data dir, an HS256 secret), its simulated Twilio
// (the `/sandbox/…` routes: accounts, people, faults, timers), agent tokens
// from its own `agent-token` subcommand, and Debian's Chromium driven by
// playwright-core. Only the page's Device is the sandbox's twin; Twilio's side
// (REST API, webhooks, the people at the other end) is the sandbox's.
//
// tests/integration/dialer.rs runs these files (`node --test`) with:
//   SWITCHBOARD_BIN     the switchboard binary (the test profile's build)
//   CHROMIUM            the browser (scripts/test.sh installs Debian's chromium)
//   DIALER_SCREENSHOTS  where screenshots go (docs/screenshots), optional
//   DIALER_TIMINGS      a JSON file the figures are written to, optional

import { spawn, execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

export const SECRET = 'dialer-browser-test-secret-0123456789abcdef';
/** Real seconds per simulated second unless a scenario says otherwise: a customer rings 0.3 s. */
export const SCALE = 0.2;

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: these tests run from tests/integration/dialer.rs (cargo test), set up by scripts/test.sh`);
  }
  return value;
}

/** A port nothing listens on (bound, then released). */
export async function closedPort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * The local server binary with `--sandbox`, listening on `listen` (a free
 * port by default), simulated time at `scale`. Resolves once it says it listens.
 */
export async function startServer({ listen = '127.0.0.1:0', dataDir, scale = SCALE, env = {} } = {}) {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'switchboard-dialer-')));
  // The simulated Twilio's own port, so a test can ask it (as Twilio's REST API) what it did.
  const twilioUrl = `http://127.0.0.1:${await closedPort()}`;
  const child = spawn(required('SWITCHBOARD_BIN'), ['--listen', listen, '--sandbox'], {
    env: {
      PATH: process.env.PATH,
      SWITCHBOARD_AUTH_HS256_SECRET: SECRET,
      SWITCHBOARD_DATA_DIR: dir,
      SWITCHBOARD_SANDBOX_TWILIO_LISTEN: twilioUrl.slice('http://'.length),
      RUST_LOG: 'warn,switchboard=info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const address = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error('the server did not say it listens within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.message === 'switchboard listening' && entry.address) {
          clearTimeout(timer);
          resolve(entry.address);
        }
      } catch {
        // not a log line
      }
    });
  });
  const server = {
    url: `http://${address}/`,
    address,
    dir,
    twilioUrl,
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      if (!keepData) {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  await sandbox(server, 'POST', 'sandbox/timers', { scale });
  return server;
}

/** A `/sandbox/…` route (no sign-in: the simulated people, faults, timers, accounts). */
export async function sandbox(server, method, path, body) {
  const response = await fetch(new URL(path, server.url), {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`${method} /${path}: ${response.status} ${text}`);
  }
  return text ? JSON.parse(text) : null;
}

/** The sandbox's Twilio accounts: `[{accountSid, authToken, numbers}]`, three of them. */
export async function sandboxAccounts(server) {
  return (await sandbox(server, 'GET', 'sandbox/accounts')).accounts;
}

/** Twilio's REST API as the sandbox plays it (`path` under `/2010-04-01/Accounts/{sid}/`), with the account's credentials. */
export async function twilioRest(server, account, path) {
  const response = await fetch(`${server.twilioUrl}/2010-04-01/Accounts/${account.accountSid}/${path}`, {
    headers: { authorization: `Basic ${Buffer.from(`${account.accountSid}:${account.authToken}`).toString('base64')}` },
  });
  if (!response.ok) {
    throw new Error(`GET ${path} at the simulated Twilio: ${response.status} ${await response.text()}`);
  }
  return response.json();
}

/** Flips the simulated Twilio's fault switches (`{credentials: "refused" | "ok", reachable, failCalls}`). */
export async function faults(server, switches) {
  return sandbox(server, 'POST', 'sandbox/faults', switches);
}

/** An agent's sign-in token, printed by `switchboard agent-token`. */
export async function agentToken({ workspace, agent, role, ttlSeconds }) {
  const args = ['agent-token', '--workspace', workspace, '--agent', agent];
  if (role) {
    args.push('--role', role);
  }
  if (ttlSeconds) {
    args.push('--ttl-seconds', String(ttlSeconds));
  }
  const { stdout } = await promisify(execFile)(required('SWITCHBOARD_BIN'), args, {
    env: { PATH: process.env.PATH, SWITCHBOARD_AUTH_HS256_SECRET: SECRET, RUST_LOG: 'off' },
  });
  return stdout.trim();
}

/** A token signed by hand, for the cases the subcommand will not make (expired, wrong key). */
export function handMadeToken(claims, secret = SECRET) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

/** Calls the API as a browser would, answering `{status, body}`. */
export async function api(server, token, method, path, body, headers = {}) {
  const response = await fetch(new URL(path, server.url), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/**
 * Connects a workspace to sandbox account `account` (0–2) as its admin
 * would; answers the account (`{accountSid, authToken, numbers}`).
 */
export async function connectTwilio(server, adminToken, { account = 0, ...settings } = {}) {
  const chosen = (await sandboxAccounts(server))[account];
  const answer = await api(server, adminToken, 'PUT', 'workspace/twilio', {
    accountSid: chosen.accountSid,
    authToken: chosen.authToken,
    ...settings,
  });
  if (answer.status !== 200) {
    throw new Error(`PUT /workspace/twilio: ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  return chosen;
}

/** Waits until `check()` answers something truthy (polling; `what` names it in the timeout). */
export async function eventually(what, check, { timeoutMs = 20_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Debian's Chromium, headless. No name resolves but localhost, so nothing
 * the page (or Twilio's SDK) asks for leaves this machine.
 */
export async function browser() {
  return chromium.launch({
    executablePath: required('CHROMIUM'),
    headless: true,
    args: [
      '--no-sandbox',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
      '--use-fake-device-for-media-stream',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-domain-reliability',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** A browser context (a person's profile): `microphone: true` grants it. */
export async function person(launched, server, { microphone = true, width = 1100, height = 800 } = {}) {
  const context = await launched.newContext({ viewport: { width, height }, locale: 'en-US', timezoneId: 'UTC' });
  if (microphone) {
    await context.grantPermissions(['microphone'], { origin: new URL(server.url).origin });
  }
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  return { context, page };
}

/** Signs in by pasting the token, as a person would; `ready`: until the phone is ready for calls. */
export async function signIn(page, server, token, { ready = false } = {}) {
  await page.goto(server.url);
  await page.getByLabel(/Your sign-in token/).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#phone').waitFor({ state: 'visible' });
  if (ready) {
    await page.locator('#device-status', { hasText: 'Ready for calls' }).waitFor();
  }
}

/** The call panel's state line (`Ringing`, `Connected`, `On hold`, …). */
export function callState(page) {
  return page.locator('#call-panel .call-state');
}

/** The path of a request or response URL. */
export function pathOf(requestOrResponse) {
  return new URL(requestOrResponse.url()).pathname;
}

/** A screenshot of the page, or of one part of it (`selector`), into DIALER_SCREENSHOTS. */
export async function screenshot(page, name, selector) {
  const dir = process.env.DIALER_SCREENSHOTS;
  if (dir) {
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${name}.png`);
    await (selector ? page.locator(selector).screenshot({ path }) : page.screenshot({ path, fullPage: true }));
  }
}

/** Adds figures to the timings file (for the report and the README). */
export async function recordTimings(figures) {
  const file = process.env.DIALER_TIMINGS;
  if (!file) {
    return;
  }
  const before = JSON.parse(await readFile(file, 'utf8').catch(() => '{}'));
  await writeFile(file, JSON.stringify({ ...before, ...figures }, null, 2));
}
