import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { ATTACHER_BUFFER_LIMIT } from './console/index.js';
import { createApiServer, type ApiServer } from './api/server.js';
import { LocalExecutor } from './executors/local/index.js';
import type { Executor } from './executors/types.js';
import { DEFAULT_INHERIT_ENV, filterInheritedEnv } from './procfile/index.js';
import { SourceCache } from './source/index.js';
import { PortAllocator, Supervisor, type PortRange } from './supervisor/index.js';

export interface AgentConfig {
  host: string;
  port: number;
  dataDir: string;
  stopTimeoutMs: number;
  portRange: PortRange;
  executor: string;
  inheritEnv: string[];
  trustProxy: boolean;
  logLevel: string;
  consoleBufferBytes: number;
}

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

export interface Agent {
  readonly url: string;
  readonly supervisor: Supervisor;
  readonly logger: Logger;
  /** Graceful: stop accepting, stop every child in parallel, wait. */
  shutdown(): Promise<void>;
  /** Escalation: SIGKILL every child now. */
  killAll(): void;
}

function buildExecutors(): Map<string, Executor> {
  const local = new LocalExecutor();
  return new Map<string, Executor>([[local.name, local]]);
}

/** The composition root: wires api → supervisor → executors, source cache and console. */
export async function startAgent(config: AgentConfig, logger = pino({ level: config.logLevel }, pino.destination(2))): Promise<Agent> {
  const dataDir = path.resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true });
  const executors = buildExecutors();
  const local = executors.get('local') as LocalExecutor;
  if (local.killGuarantee !== 'pidns') {
    logger.warn({ kill_guarantee: local.killGuarantee }, 'PID namespaces unavailable: children may outlive an agent killed with SIGKILL');
  }
  const sources = new SourceCache({ dataDir });
  // Downloads and extractions cut short by a previous agent's death are garbage now.
  await sources.sweepTemp();
  const supervisor = new Supervisor({
    executors,
    defaultExecutor: config.executor,
    sources,
    ports: new PortAllocator(config.portRange),
    logger,
    stopTimeoutMs: config.stopTimeoutMs,
    inheritedEnv: filterInheritedEnv(process.env, config.inheritEnv),
    consoleBufferBytes: config.consoleBufferBytes,
  });
  const api: ApiServer = createApiServer(supervisor, { logger, trustProxy: config.trustProxy });
  await new Promise<void>((resolve, reject) => {
    api.server.once('error', reject);
    api.server.listen(config.port, config.host, () => resolve());
  });
  const address = api.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, dataDir, executor: config.executor, kill_guarantee: local.killGuarantee }, 'listening');
  return {
    url,
    supervisor,
    logger,
    async shutdown() {
      api.stopAccepting();
      await supervisor.shutdown();
    },
    killAll() {
      supervisor.killAll();
    },
  };
}
