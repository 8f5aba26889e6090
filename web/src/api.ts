// The REST client: every route of Switchboard the page calls, with the
// agent's sign-in token as bearer, and the API's errors as `ApiError`.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The server could not reach Twilio (502) or was unreachable itself (status 0). */
  get unreachable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export class Api {
  /** Called once per 401: the sign-in token was refused. */
  onUnauthorized: (error: ApiError) => void = () => undefined;

  constructor(
    readonly base: URL,
    private token: string,
  ) {}

  setToken(token: string): void {
    this.token = token;
  }

  get signInToken(): string {
    return this.token;
  }

  url(path: string, query: Record<string, string | number | undefined | null> = {}): URL {
    const url = new URL(path.replace(/^\//, ''), this.base);
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') {
        url.searchParams.set(name, String(value));
      }
    }
    return url;
  }

  async request<T = unknown>(
    method: string,
    path: string,
    options: { query?: Record<string, string | number | undefined | null>; body?: unknown; idempotencyKey?: string } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
    }
    if (options.idempotencyKey) {
      headers['idempotency-key'] = options.idempotencyKey;
    }
    let response: Response;
    try {
      response = await fetch(this.url(path, options.query), {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
      });
    } catch (error) {
      throw new ApiError(0, 'unreachable', `Switchboard could not be reached (${(error as Error).message}).`);
    }
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const detail = (body as { error?: { code?: string; message?: string } } | null)?.error;
      const error = new ApiError(
        response.status,
        detail?.code ?? `http_${response.status}`,
        detail?.message ?? (text.slice(0, 200) || response.statusText),
      );
      // A report (onboarding, clear) comes with its error: keep it.
      Object.assign(error, { body });
      // 401 invalid_access_token is the sandbox's Twilio refusing the phone's
      // Voice token (the device reports it), not Switchboard refusing the sign-in.
      if (response.status === 401 && error.code !== 'invalid_access_token') {
        this.onUnauthorized(error);
      }
      throw error;
    }
    return body as T;
  }

  /** A binary resource (a recording) fetched with the bearer token, as a blob. */
  async blob(path: string, query: Record<string, string | undefined> = {}): Promise<Blob> {
    let response: Response;
    try {
      // A 302 to a presigned S3 URL is followed; the browser drops the
      // Authorization header on the way to another origin.
      response = await fetch(this.url(path, query), { headers: { authorization: `Bearer ${this.token}` } });
    } catch (error) {
      throw new ApiError(0, 'unreachable', `The recording could not be fetched (${(error as Error).message}).`);
    }
    if (!response.ok) {
      const text = await response.text();
      let message = text.slice(0, 200);
      try {
        message = JSON.parse(text).error.message ?? message;
      } catch {
        // not JSON: keep the text
      }
      const error = new ApiError(response.status, `http_${response.status}`, message || response.statusText);
      if (response.status === 401) {
        this.onUnauthorized(error);
      }
      throw error;
    }
    return response.blob();
  }
}

/** The report that came with a failed onboarding or clear, if any. */
export function reportOf(error: unknown): unknown {
  return (error as { body?: unknown }).body;
}
