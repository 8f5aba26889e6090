// The agent's sign-in: the company's JWT, handed over by a person (pasted),
// by the page that embeds the dialer (postMessage), or in the URL fragment
// (#token=…). The page reads the claims only to show who is signed in and
// to know when the token expires; the server checks everything.

export interface SignIn {
  token: string;
  /** `sub`: the agent id. */
  agent: string;
  /** Expiry, in milliseconds since the epoch (from `exp`). */
  expiresAt: number;
  claims: Record<string, unknown>;
}

export type SignInProblem = 'malformed' | 'expired';

const STORAGE_KEY = 'switchboard.signIn';

/** The claims of a JWT, or undefined if it is not one. */
export function claimsOf(token: string): Record<string, unknown> | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 3) {
    return undefined;
  }
  try {
    const json = atob(parts[1]!.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === 'object' && claims !== null ? claims : undefined;
  } catch {
    return undefined;
  }
}

/** Reads a token: the sign-in, or why it cannot be one. */
export function readToken(raw: string, now = Date.now()): SignIn | SignInProblem {
  const token = raw.trim().replace(/^Bearer\s+/i, '');
  const claims = claimsOf(token);
  if (!claims || typeof claims.sub !== 'string' || typeof claims.exp !== 'number') {
    return 'malformed';
  }
  const expiresAt = claims.exp * 1000;
  if (expiresAt <= now) {
    return 'expired';
  }
  return { token, agent: claims.sub, expiresAt, claims };
}

/** A claim by exact name, else by a dotted path (as the server reads them). */
export function claim(claims: Record<string, unknown>, name: string): unknown {
  if (name in claims) {
    return claims[name];
  }
  return name.split('.').reduce<unknown>((value, part) => (value as Record<string, unknown> | undefined)?.[part], claims);
}

/** Whether the token's role claim names `role` (a string, or a list with it). */
export function hasRole(claims: Record<string, unknown>, role: string, claimName = 'role'): boolean {
  const value = claim(claims, claimName);
  return value === role || (Array.isArray(value) && value.includes(role));
}

/** `#token=…` (also `#access_token=…`), removed from the address bar once read. */
export function tokenFromFragment(): string | undefined {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = fragment.get('token') ?? fragment.get('access_token');
  if (token) {
    fragment.delete('token');
    fragment.delete('access_token');
    const rest = fragment.toString();
    history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
  }
  return token ?? undefined;
}

/**
 * Tokens the embedding page posts: `{type: "switchboard:token", token}`, only
 * from the window that opened or frames this one. The dialer answers with
 * `{type: "switchboard:ready"}` at start and `{type: "switchboard:signed-out",
 * reason}` when it needs a new token.
 */
export function listenForPostedTokens(onToken: (token: string) => void): void {
  window.addEventListener('message', (event: MessageEvent) => {
    const fromHost = event.source !== null && (event.source === window.parent || event.source === window.opener);
    if (!fromHost || event.source === window) {
      return;
    }
    const data = event.data as { type?: unknown; token?: unknown } | null;
    if (data?.type === 'switchboard:token' && typeof data.token === 'string') {
      onToken(data.token);
    }
  });
}

export function tellHost(message: Record<string, unknown>): void {
  const host = window.parent !== window ? window.parent : (window.opener as Window | null);
  host?.postMessage(message, '*');
}

/** This tab keeps its sign-in across a reload (sessionStorage: this tab only). */
export function remember(token: string | undefined): void {
  try {
    if (token) {
      sessionStorage.setItem(STORAGE_KEY, token);
    } else {
      sessionStorage.removeItem(STORAGE_KEY);
    }
  } catch {
    // storage refused (private mode): sign in again after a reload
  }
}

export function remembered(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}
