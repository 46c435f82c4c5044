import type { AgentConfig } from '../config.js';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { AgentError } from '../errors.js';
import { LocalExecutor } from './local/index.js';
import type { Executor } from './types.js';

/** Executors this build knows. */
export const KNOWN_EXECUTORS = ['local', 'container', 'fly'] as const;

/** How long start-up waits for the container engine (version, leftover sweep) before going on without it. */
const ENGINE_INIT_TIMEOUT_MS = 10_000;

/** What building executors needs from the agent's configuration (src/config.ts documents each field). */
export type ExecutorConfig = Pick<
  AgentConfig,
  'executors' | 'host' | 'stopTimeoutMs' | 'dockerSocket' | 'containerImage' | 'publishHost' | 'flyApiUrl' | 'flyLogsUrl' | 'flyToken' | 'flyApp' | 'flyImage'
> & {
  /** For requests without `executor`; must be enabled. */
  defaultExecutor: string;
  /** Absolute data dir: containers and machines are labelled with it. */
  dataDir: string;
};

/** The enabled executor names, default first; throws a clear error for unknown names or a default not enabled. */
export function enabledExecutorNames(config: Pick<ExecutorConfig, 'executors' | 'defaultExecutor'>): string[] {
  const names = [...new Set(config.executors?.length ? config.executors : [config.defaultExecutor])];
  for (const name of names) {
    if (!(KNOWN_EXECUTORS as readonly string[]).includes(name)) {
      throw new AgentError('invalid_config', `unknown executor '${name}' (known: ${KNOWN_EXECUTORS.join(', ')})`, 400);
    }
  }
  if (!names.includes(config.defaultExecutor)) {
    throw new AgentError(
      'invalid_config',
      `the default executor '${config.defaultExecutor}' is not among the enabled ones (${names.join(', ')})`,
      400,
    );
  }
  return [config.defaultExecutor, ...names.filter((name) => name !== config.defaultExecutor)];
}

/** Where a container's PORT is published when `--publish-host` is not given. */
export function defaultPublishHost(agentHost: string): string {
  return isIP(agentHost) !== 0 ? agentHost : '127.0.0.1';
}

/**
 * Builds (and, for containers, initialises: engine version, leftover sweep) every enabled executor. The container
 * and Fly executors are imported only when enabled: dockerode and its SSH/gRPC dependencies cost an agent that
 * never uses them ~20 MiB of RSS, and every byte of RSS makes each local fork(2) slower.
 */
export async function buildExecutors(config: ExecutorConfig, logger: Logger): Promise<Map<string, Executor>> {
  const executors = new Map<string, Executor>();
  for (const name of enabledExecutorNames(config)) {
    executors.set(name, await buildExecutor(name, config, logger));
  }
  return executors;
}

async function buildExecutor(name: string, config: ExecutorConfig, logger: Logger): Promise<Executor> {
  if (name === 'container') return buildContainerExecutor(config, logger);
  if (name === 'fly') return buildFlyExecutor(config, logger);
  return new LocalExecutor();
}

async function buildContainerExecutor(config: ExecutorConfig, logger: Logger): Promise<Executor> {
  const { ContainerExecutor, resolveEngineAddress } = await import('./container/index.js');
  const container = new ContainerExecutor({
    address: resolveEngineAddress(config.dockerSocket),
    image: config.containerImage,
    instance: config.dataDir,
    publishHost: config.publishHost ?? defaultPublishHost(config.host),
    stopTimeoutMs: config.stopTimeoutMs,
    logger,
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      logger.warn({ executor: 'container', timeout_ms: ENGINE_INIT_TIMEOUT_MS }, 'container engine did not answer at start-up: going on without the leftover sweep');
      resolve();
    }, ENGINE_INIT_TIMEOUT_MS);
  });
  await Promise.race([container.init(), timedOut]);
  clearTimeout(timer);
  return container;
}

async function buildFlyExecutor(config: ExecutorConfig, logger: Logger): Promise<Executor> {
  const { FlyExecutor } = await import('./fly/index.js');
  // Throws invalid_config (exit 2) without FLY_API_TOKEN or --fly-app.
  const fly = new FlyExecutor({
    apiUrl: config.flyApiUrl,
    logsUrl: config.flyLogsUrl,
    token: config.flyToken,
    app: config.flyApp,
    image: config.flyImage,
    instance: config.dataDir,
    logger,
  });
  await fly.removeLeftovers();
  return fly;
}
