/** Base class of every error the client throws: `instanceof AgentClientError` catches them all. */
export class AgentClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The agent answered with an error status: `{"error": "<human text>", "code": "<machine_code>"}` (docs/api.md). */
export class AgentApiError extends AgentClientError {
  /** HTTP status (404 for a slug that is not in the list document). */
  readonly status: number;
  /** The agent's machine code, e.g. `slug_exists`, `not_found`; `http_<status>` when the body had none. */
  readonly code: string;
  readonly method: string;
  readonly url: string;

  constructor(init: { status: number; code: string; message: string; method: string; url: string }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.method = init.method;
    this.url = init.url;
  }
}

/** No HTTP answer at all: refused connection, DNS failure, reset, timeout. `code` is the system code (ECONNREFUSED…). */
export class AgentUnreachableError extends AgentClientError {
  readonly url: string;
  readonly code: string;

  constructor(url: string, code: string, options?: { cause?: unknown }) {
    super(`cannot reach agent at ${url}: ${code}`, options);
    this.url = url;
    this.code = code;
  }
}

/** The agent answered, but not with what the API promises (not JSON, a missing field or link). */
export class AgentProtocolError extends AgentClientError {
  readonly url: string | undefined;

  constructor(message: string, url?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.url = url;
  }
}

/** `waitFor` ran out of time; `last` is the last status document seen. */
export class AgentWaitTimeoutError extends AgentClientError {
  readonly last: unknown;

  constructor(message: string, last: unknown) {
    super(message);
    this.last = last;
  }
}

/** The system error code behind a failed fetch / socket (undici wraps it in `cause`, sometimes twice). */
export function systemCodeOf(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
    if (current instanceof AggregateError && current.errors.length > 0) {
      current = current.errors[0];
      continue;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
