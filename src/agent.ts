import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { createApiServer, type ApiServer } from './api/server.js';
import { detectKillGuarantee, type LocalExecutor } from './executors/local/index.js';
import { buildExecutors } from './executors/registry.js';
import { filterInheritedEnv } from './procfile/index.js';
import { SourceCache } from './source/index.js';
import { WatchDir } from './watch/watch-dir.js';
import { PortAllocator, StateStore, Supervisor } from './supervisor/index.js';
import { DEFAULT_LIMITS, type AgentConfig, type AgentLimits } from './config.js';
import { checkBindSafety, TokenAuth, WEAK_TOKEN_LENGTH } from './api/auth.js';
import { VERSION } from './cli/version.js';
import { AgentMetrics } from './metrics/index.js';
import { compileAllowList } from './source/allow.js';

export { DEFAULT_CONFIG, DEFAULT_LIMITS, type AgentConfig, type AgentLimits } from './config.js';

export interface Agent {
  readonly url: string;
  readonly supervisor: Supervisor;
  readonly logger: Logger;
  /** Graceful: stop accepting, stop every child in parallel, wait. */
  shutdown(): Promise<void>;
  /** Escalation: SIGKILL every child now. */
  killAll(): void;
}

/** The composition root: wires api → supervisor → executors, source cache and console. */
export async function startAgent(config: AgentConfig, logger = pino({ level: config.logLevel }, pino.destination(2))): Promise<Agent> {
  const auth = new TokenAuth(config.tokens ?? []);
  // Before anything touches the disk: an exposed agent without a token must not start at all.
  checkBindSafety(config.host, auth, config.insecure ?? false);
  const limits: AgentLimits = { ...DEFAULT_LIMITS, ...config.limits };
  const allowSource = compileAllowList(config.allowSource);
  const dataDir = path.resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true });
  const executors = await buildExecutors({ ...config, defaultExecutor: config.executor, dataDir }, logger);
  const local = executors.get('local') as LocalExecutor | undefined;
  const killGuarantee = local?.killGuarantee ?? detectKillGuarantee();
  if (local && killGuarantee !== 'pidns') {
    logger.warn({ kill_guarantee: killGuarantee }, 'PID namespaces unavailable: children may outlive an agent killed with SIGKILL');
  }
  if (!auth.enabled && config.insecure) logger.warn({ host: config.host }, 'no token and --insecure: anyone who can reach this address can run commands');
  if ((config.tokens ?? []).some((t) => t.length < WEAK_TOKEN_LENGTH)) logger.warn(`a token is shorter than ${WEAK_TOKEN_LENGTH} characters`);
  const sources = new SourceCache({
    dataDir,
    limits: {
      maxDownloadBytes: limits.maxDownloadBytes,
      maxUnpackedBytes: limits.maxUnpackedBytes,
      maxEntries: limits.maxEntries,
      maxPathLength: limits.maxPathLength,
      downloadTimeoutMs: limits.downloadTimeoutMs,
      maxRedirects: limits.maxRedirects,
    },
    allowSource,
    maxConcurrentDownloads: limits.maxConcurrentDownloads,
  });
  const startedAt = Date.now();
  let stopping = false;
  // The supervisor is created below; the metrics read it only at scrape time.
  let supervisorRef: Supervisor | undefined;
  const metrics = new AgentMetrics({ processes: () => supervisorRef?.list() ?? [], version: VERSION });
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
    observer: metrics.observer,
    store: config.persist === false ? undefined : new StateStore(dataDir),
  });
  await supervisor.restore();
  let watcher: WatchDir | undefined;
  if (config.watchDir) {
    await mkdir(config.watchDir, { recursive: true });
    watcher = new WatchDir(path.resolve(config.watchDir), supervisor, logger);
    await watcher.start();
  }
  supervisorRef = supervisor;
  const api: ApiServer = createApiServer(supervisor, {
    logger,
    trustProxy: config.trustProxy,
    auth,
    limits,
    allowSource,
    metrics,
    health: {
      version: VERSION,
      startedAt,
      executors,
      killGuarantee,
      processCount: () => supervisor.list().length,
      stopping: () => stopping,
    },
  });
  await new Promise<void>((resolve, reject) => {
    api.server.once('error', reject);
    api.server.listen(config.port, config.host, () => resolve());
  });
  const address = api.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, dataDir, executor: config.executor, executors: [...executors.keys()], kill_guarantee: killGuarantee, auth: auth.enabled }, 'listening');
  return {
    url,
    supervisor,
    logger,
    async shutdown() {
      stopping = true;
      watcher?.stop();
      api.stopAccepting();
      await supervisor.shutdown();
    },
    killAll() {
      supervisor.killAll();
    },
  };
}
