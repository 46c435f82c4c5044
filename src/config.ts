import { ATTACHER_BUFFER_LIMIT } from './console/attacher.js';
import { DEFAULT_API_LIMITS, type ApiLimits } from './api/request-limits.js';
import { DEFAULT_INHERIT_ENV } from './procfile/env.js';
import { DEFAULT_CONCURRENT_DOWNLOADS, DEFAULT_SOURCE_LIMITS, type SourceLimits } from './source/limits.js';
import type { PortRange } from './supervisor/ports.js';

/* The agent's configuration and its defaults, apart from the agent itself so the CLI can show defaults without
   loading koa, dockerode and the rest. */

export interface AgentConfig {
  host: string;
  port: number;
  dataDir: string;
  stopTimeoutMs: number;
  portRange: PortRange;
  executor: string;
  /** Executors to enable (`--executors`); default: only `executor`. */
  executors?: string[];
  /** Container executor: engine address (`--docker-socket`), default image, where PORT is published. */
  dockerSocket?: string;
  containerImage?: string;
  publishHost?: string;
  /** Fly executor: Machines API and logs API URLs, token (FLY_API_TOKEN), app and default image. */
  flyApiUrl?: string;
  flyLogsUrl?: string;
  flyToken?: string;
  flyApp?: string;
  flyImage?: string;
  inheritEnv: string[];
  trustProxy: boolean;
  logLevel: string;
  consoleBufferBytes: number;
  /** Bearer tokens (docs/security.md); none means every route is open. */
  tokens?: string[];
  /** Listen beyond loopback without a token anyway. */
  insecure?: boolean;
  /** `--allow-source` host patterns; none allows every http/https source. */
  allowSource?: string[];
  /** Caps on requests and sources (docs/security.md#limits); omitted ones keep their defaults. */
  limits?: Partial<AgentLimits>;
  /** Keep declared processes in the data dir and bring them back at start (default true). */
  persist?: boolean;
  /** A directory of create-request JSON files to keep running (the directory control plane). */
  watchDir?: string;
}

/** Every cap the agent enforces, each with a `serve` flag. */
export type AgentLimits = ApiLimits & SourceLimits & { maxConcurrentDownloads: number };

export const DEFAULT_LIMITS: Readonly<AgentLimits> = Object.freeze({
  ...DEFAULT_API_LIMITS,
  ...DEFAULT_SOURCE_LIMITS,
  maxConcurrentDownloads: DEFAULT_CONCURRENT_DOWNLOADS,
});

export const DEFAULT_CONFIG: AgentConfig = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: '.procfile-agent',
  stopTimeoutMs: 10_000,
  portRange: { first: 5000, last: 5999 },
  executor: 'local',
  inheritEnv: DEFAULT_INHERIT_ENV,
  trustProxy: false,
  logLevel: 'info',
  consoleBufferBytes: ATTACHER_BUFFER_LIMIT,
};

