import { AgentError } from '../errors.js';
import type { SourceAllowList } from '../source/allow.js';
import type { CreateRequest } from '../supervisor/index.js';

/** What one API request may cost (docs/security.md#limits). Each has a `serve` flag. */
export interface ApiLimits {
  /** `--max-body`: bytes of a JSON request body. */
  maxBodyBytes: number;
  /** `--max-processes`: declared processes, failure states included (they stay listed until deleted). */
  maxProcesses: number;
  /** `--max-env-vars`: variables in a create request's `env`. */
  maxEnvVars: number;
  /** `--max-env-bytes`: UTF-8 bytes of `env`, counted as `NAME=value\0` per variable, the way the kernel does. */
  maxEnvBytes: number;
}

export const DEFAULT_API_LIMITS: Readonly<ApiLimits> = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  maxProcesses: 500,
  maxEnvVars: 1000,
  maxEnvBytes: 256 * 1024,
});

/** Linux refuses to exec with any single argument or `NAME=value` string over 32 pages (MAX_ARG_STRLEN). */
export const MAX_ENV_ENTRY_BYTES = 128 * 1024 - 1;
/** No string field of a create request has a use for more (a URL over 8 KiB is refused by most servers anyway). */
export const MAX_FIELD_BYTES = 8 * 1024;

const STRING_FIELDS = ['process_type', 'source_url', 'executor', 'image', 'region'] as const;

/**
 * Checks a schema-valid create request against the limits and what the OS can pass to a child, so a request
 * that could only fail later (at exec, with E2BIG or EINVAL) is refused now with a 400 naming the field.
 */
export function checkCreateRequest(request: CreateRequest, limits: ApiLimits, allowSource?: SourceAllowList): void {
  for (const field of STRING_FIELDS) {
    const value = request[field];
    if (value !== undefined && Buffer.byteLength(value) > MAX_FIELD_BYTES) {
      throw new AgentError('invalid_field', `${field} is longer than ${MAX_FIELD_BYTES} bytes`, 400);
    }
  }
  if (request.env) checkEnv(request.env, limits);
  if (allowSource) checkAllowed(request.source_url, allowSource);
}

function checkEnv(env: Record<string, string>, limits: ApiLimits): void {
  const names = Object.keys(env);
  if (names.length > limits.maxEnvVars) {
    throw new AgentError('env_too_large', `env has ${names.length} variables; the limit is ${limits.maxEnvVars}`, 400);
  }
  let total = 0;
  for (const name of names) {
    const value = env[name]!;
    if (name === '') throw new AgentError('invalid_field', 'env: a variable name is empty', 400);
    if (name.includes('=')) throw new AgentError('invalid_field', `env: variable name ${JSON.stringify(name)} contains '='`, 400);
    if (name.includes('\0') || value.includes('\0')) {
      throw new AgentError('invalid_field', `env: ${JSON.stringify(name)} contains a NUL character`, 400);
    }
    const bytes = Buffer.byteLength(name) + 1 + Buffer.byteLength(value) + 1;
    if (bytes > MAX_ENV_ENTRY_BYTES + 1) {
      throw new AgentError('env_too_large', `env: ${JSON.stringify(name.slice(0, 64))} is longer than ${MAX_ENV_ENTRY_BYTES} bytes, which exec refuses`, 400);
    }
    total += bytes;
  }
  if (total > limits.maxEnvBytes) {
    throw new AgentError('env_too_large', `env is ${total} bytes; the limit is ${limits.maxEnvBytes}`, 400);
  }
}

/** `--allow-source` at create: a refused host answers 400 and nothing is fetched. Unparsable URLs fail later, as always. */
function checkAllowed(sourceUrl: string, allow: SourceAllowList): void {
  let url: URL;
  try {
    url = new URL(sourceUrl);
  } catch {
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return;
  if (!allow(url)) {
    throw new AgentError('source_not_allowed', `source_url host ${url.host} is not allowed by --allow-source`, 400);
  }
}

/**
 * Counts creates in flight as well as declared processes, so concurrent creates cannot overshoot
 * `--max-processes` while one of them waits for a port.
 */
export class ProcessCap {
  private inflight = 0;

  constructor(
    private readonly max: number,
    private readonly count: () => number,
  ) {}

  async run<T>(create: () => Promise<T>): Promise<T> {
    if (this.count() + this.inflight >= this.max) {
      throw new AgentError(
        'too_many_processes',
        `the agent already has ${this.max} processes (--max-processes); delete some first`,
        409,
      );
    }
    this.inflight += 1;
    try {
      return await create();
    } finally {
      this.inflight -= 1;
    }
  }
}
