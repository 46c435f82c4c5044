import { setTimeout as sleep } from 'node:timers/promises';
import { AgentError, messageOf } from '../../errors.js';

import { DEFAULT_FLY_API_URL, DEFAULT_FLY_LOGS_URL } from './defaults.js';

export { DEFAULT_FLY_API_URL, DEFAULT_FLY_LOGS_URL };

/** The subset of a machine config this agent sends (docs/executors.md#fly-machines). */
export interface FlyGuest {
  cpu_kind: 'shared' | 'performance';
  cpus: number;
  memory_mb: number;
}

export interface FlyService {
  protocol: 'tcp';
  internal_port: number;
  ports: Array<{ port: number; handlers: string[] }>;
}

export interface FlyMachineConfig {
  image: string;
  init: { entrypoint?: string[]; cmd?: string[] };
  env: Record<string, string>;
  guest: FlyGuest;
  restart: { policy: 'no' | 'always' | 'on-failure' };
  services?: FlyService[];
  metadata?: Record<string, string>;
  mounts?: Array<{ volume: string; path: string }>;
  auto_destroy?: boolean;
}

export interface FlyMachineEvent {
  type: string;
  status?: string;
  source?: string;
  timestamp: number;
  request?: { exit_event?: { exit_code?: number; signal?: number; oom_killed?: boolean; requested_stop?: boolean } };
}

export interface FlyMachine {
  id: string;
  name?: string;
  state: string;
  region?: string;
  instance_id?: string;
  config?: FlyMachineConfig;
  events?: FlyMachineEvent[];
}

export interface FlyLogEntry {
  attributes: { message: string; timestamp: string; instance: string; level?: string; region?: string };
}

export interface FlyLogsPage {
  data: FlyLogEntry[];
  meta: { next_token: string };
}

export interface FlyClientOptions {
  apiUrl?: string;
  logsUrl?: string;
  token: string;
  app: string;
  /** First delay after a 429 (doubled each time, capped at 8 s); a Retry-After header wins. */
  retryBaseMs?: number;
  /** Attempts per request before a 429 becomes an error. */
  maxAttempts?: number;
  /** Per-request budget (a wait adds its own timeout on top). */
  requestTimeoutMs?: number;
}

type Method = 'GET' | 'POST' | 'DELETE';

/**
 * A small typed client for the Fly Machines API (and the logs API). Every answer other than 2xx becomes an
 * AgentError carrying Fly's own `{error}` message; 429 is retried with backoff (1 req/s per action per machine,
 * burst 3).
 */
export class FlyClient {
  readonly apiUrl: string;
  readonly logsUrl: string;
  readonly app: string;
  private readonly token: string;
  private readonly retryBaseMs: number;
  private readonly maxAttempts: number;
  private readonly requestTimeoutMs: number;

  constructor(options: FlyClientOptions) {
    this.apiUrl = (options.apiUrl ?? DEFAULT_FLY_API_URL).replace(/\/+$/, '');
    this.logsUrl = (options.logsUrl ?? DEFAULT_FLY_LOGS_URL).replace(/\/+$/, '');
    this.token = options.token;
    this.app = options.app;
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  private machinePath(id?: string, more = ''): string {
    return `${this.apiUrl}/apps/${encodeURIComponent(this.app)}/machines${id ? `/${encodeURIComponent(id)}` : ''}${more}`;
  }

  createMachine(body: { name?: string; region?: string; config: FlyMachineConfig; skip_launch?: boolean }): Promise<FlyMachine> {
    return this.call<FlyMachine>('POST', this.machinePath(), 'create machine', { body });
  }

  async startMachine(id: string): Promise<void> {
    await this.call('POST', this.machinePath(id, '/start'), `start machine ${id}`);
  }

  getMachine(id: string): Promise<FlyMachine> {
    return this.call<FlyMachine>('GET', this.machinePath(id), `get machine ${id}`);
  }

  /** True once the machine is in `state`; false when the wait timed out (408): call again. */
  async waitMachine(id: string, state: 'started' | 'stopped' | 'destroyed', timeoutS: number, instanceId?: string): Promise<boolean> {
    const query = new URLSearchParams({ state, timeout: String(timeoutS) });
    if (instanceId) query.set('instance_id', instanceId);
    try {
      await this.call('GET', this.machinePath(id, `/wait?${query}`), `wait for machine ${id}`, { extraTimeoutMs: timeoutS * 1000 });
      return true;
    } catch (err) {
      if (err instanceof AgentError && (err.cause as { status?: number } | undefined)?.status === 408) return false;
      throw err;
    }
  }

  async stopMachine(id: string, signal: string, timeout: string): Promise<void> {
    await this.call('POST', this.machinePath(id, '/stop'), `stop machine ${id}`, { body: { signal, timeout } });
  }

  async destroyMachine(id: string): Promise<void> {
    await this.call('DELETE', this.machinePath(id, '?force=true'), `destroy machine ${id}`);
  }

  listMachines(): Promise<FlyMachine[]> {
    return this.call<FlyMachine[]>('GET', this.machinePath(), 'list machines');
  }

  getLogs(instance: string, nextToken?: string): Promise<FlyLogsPage> {
    const query = new URLSearchParams({ instance });
    if (nextToken) query.set('next_token', nextToken);
    return this.call<FlyLogsPage>('GET', `${this.logsUrl}/apps/${encodeURIComponent(this.app)}/logs?${query}`, `read logs of ${instance}`);
  }

  private async call<T = unknown>(method: Method, url: string, action: string, options: { body?: unknown; extraTimeoutMs?: number } = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: {
            Authorization: `Bearer ${this.token}`,
            Accept: 'application/json',
            ...(options.body === undefined ? {} : { 'Content-Type': 'application/json' }),
          },
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
          signal: AbortSignal.timeout(this.requestTimeoutMs + (options.extraTimeoutMs ?? 0)),
        });
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause;
        throw new AgentError('fly_api_unreachable', `${action}: Fly API not reachable at ${new URL(url).origin} (${cause?.code ?? messageOf(err)})`, 503, { cause: err });
      }
      const text = await response.text();
      if (response.ok) return (text ? JSON.parse(text) : undefined) as T;
      if (response.status === 429 && attempt < this.maxAttempts) {
        const retryAfter = Number(response.headers.get('retry-after'));
        const delay = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : Math.min(this.retryBaseMs * 2 ** (attempt - 1), 8000);
        await sleep(delay);
        continue;
      }
      throw flyError(response.status, text, action);
    }
  }
}

/** Fly answers `{"error": "…"}`; anything else is shown as text. */
export function flyError(status: number, text: string, action: string): AgentError {
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === 'string') message = parsed.error;
  } catch {
    // plain text
  }
  const cause = { status, body: text };
  if (status === 401 || status === 403) {
    return new AgentError('fly_unauthorized', `${action}: the Fly API refused the token (HTTP ${status}): ${message || 'unauthorized'}; check FLY_API_TOKEN and --fly-app`, 500, { cause });
  }
  if (status === 429) return new AgentError('fly_rate_limited', `${action}: still rate limited by the Fly API after retrying: ${message}`, 503, { cause });
  return new AgentError('fly_api_error', `${action} failed (HTTP ${status})${message ? `: ${message}` : ''}`, status === 400 || status === 422 ? 400 : 500, { cause });
}
