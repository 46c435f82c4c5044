import { setFlagsFromString } from 'node:v8';
import { InvalidArgumentError, type Command } from 'commander';
import type { Agent } from '../agent.js';
import { DEFAULT_CONFIG, DEFAULT_LIMITS, type AgentConfig, type AgentLimits } from '../config.js';
import { collectTokens } from '../api/auth.js';
import { isAgentError } from '../errors.js';
import { DEFAULT_CONTAINER_IMAGE, DOCKER_SOCKET, PODMAN_SOCKET } from '../executors/container/defaults.js';
import { DEFAULT_FLY_API_URL, DEFAULT_FLY_LOGS_URL } from '../executors/fly/defaults.js';
import { parseDuration, parseList, parsePort, parsePortRange, parseSize } from './options.js';

/** Configuration mistakes (bad token, exposed without a token, bad pattern) exit 2 with one clear line. */
const CONFIG_ERRORS = new Set(['insecure_bind', 'invalid_token_config', 'invalid_config']);

function parseCount(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value.trim());
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`'${value}' is not a whole number in ${min}-${max === Number.MAX_SAFE_INTEGER ? '∞' : max}`);
    }
    return n;
  };
}

function appendList(value: string, previous: string[] = []): string[] {
  return [...previous, ...parseList(value)];
}

interface LimitFlags {
  maxBody: number;
  maxProcesses: number;
  maxEnvVars: number;
  maxEnvBytes: number;
  maxDownload: number;
  maxUnpacked: number;
  maxEntries: number;
  maxPathLength: number;
  downloadTimeout: number;
  maxRedirects: number;
  maxConcurrentDownloads: number;
}

function limitsOf(flags: LimitFlags): AgentLimits {
  return {
    maxBodyBytes: flags.maxBody,
    maxProcesses: flags.maxProcesses,
    maxEnvVars: flags.maxEnvVars,
    maxEnvBytes: flags.maxEnvBytes,
    maxDownloadBytes: flags.maxDownload,
    maxUnpackedBytes: flags.maxUnpacked,
    maxEntries: flags.maxEntries,
    maxPathLength: flags.maxPathLength,
    downloadTimeoutMs: flags.downloadTimeout,
    maxRedirects: flags.maxRedirects,
    maxConcurrentDownloads: flags.maxConcurrentDownloads,
  };
}

interface ServeFlags extends LimitFlags {
  persist: boolean;
  watchDir?: string;
  token?: string;
  tokenFile?: string;
  insecure: boolean;
  allowSource?: string[];
  host: string;
  port: number;
  dataDir: string;
  stopTimeout: number;
  portRange: AgentConfig['portRange'];
  executor?: string;
  executors?: string[];
  dockerSocket?: string;
  containerImage?: string;
  publishHost?: string;
  flyApiUrl: string;
  flyLogsUrl: string;
  flyApp?: string;
  flyImage?: string;
  inheritEnv: string[];
  trustProxy: boolean;
  logLevel: string;
  consoleBuffer: number;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the agent: the REST API, the consoles and the supervised children')
    .option('--host <address>', 'address to listen on', DEFAULT_CONFIG.host)
    .option('--port <port>', 'TCP port to listen on (0 picks a free one)', parsePort, DEFAULT_CONFIG.port)
    .option('--data-dir <dir>', 'where archives, unpacked trees and state live', DEFAULT_CONFIG.dataDir)
    .option('--stop-timeout <duration>', 'grace period between SIGTERM and SIGKILL', parseDuration, DEFAULT_CONFIG.stopTimeoutMs)
    .option('--port-range <first-last>', 'where each child\'s PORT comes from', parsePortRange, DEFAULT_CONFIG.portRange)
    .option('--executor <name>', `default executor for new processes (default: the first of --executors, else ${DEFAULT_CONFIG.executor})`)
    .option('--executors <names>', 'executors to enable, comma-separated: local, container, fly (default: only --executor)', parseList)
    .option('--docker-socket <path>', `container executor: Docker Engine API socket (path, unix:///path or tcp://host:port; default: $DOCKER_HOST, else ${DOCKER_SOCKET} if it exists, else ${PODMAN_SOCKET})`)
    .option('--container-image <image>', `container executor: image for requests without "image"`, DEFAULT_CONTAINER_IMAGE)
    .option('--publish-host <ip>', 'container executor: host address each container\'s PORT is published on (default: --host when it is an IP, else 127.0.0.1)')
    .option('--fly-api-url <url>', 'fly executor: Fly Machines API base URL', DEFAULT_FLY_API_URL)
    .option('--fly-logs-url <url>', 'fly executor: Fly logs API base URL', DEFAULT_FLY_LOGS_URL)
    .option('--fly-app <name>', 'fly executor: the Fly app machines are created in (token from $FLY_API_TOKEN)')
    .option('--fly-image <image>', 'fly executor: image for requests without "image"')
    .option('--inherit-env <names>', 'comma-separated agent variables children inherit (globs like LC_*)', parseList, DEFAULT_CONFIG.inheritEnv)
    .option('--trust-proxy', 'build URLs from X-Forwarded-Proto / X-Forwarded-Host', false)
    .option('--console-buffer <size>', 'bytes queued per console before its lines are dropped', parseSize, DEFAULT_CONFIG.consoleBufferBytes)
    .option('--watch-dir <dir>', 'keep every <slug>.json create request in this directory running (edit = restart, remove = delete)')
    .option('--no-persist', 'forget declared processes when the agent stops (throw-away agents)')
    .option('--log-level <level>', 'pino level: fatal, error, warn, info, debug, trace', DEFAULT_CONFIG.logLevel)
    .option('--token <token>', 'require "Authorization: Bearer <token>" on every route and console (visible in ps: prefer --token-file or PROCFILE_AGENT_TOKEN)')
    .option('--token-file <file>', 'read the token(s) from a file, one per line (several: rotation)')
    .option('--insecure', 'allow a non-loopback --host without a token', false)
    .option('--allow-source <patterns>', 'only fetch sources from these hosts: [scheme://]host[:port] globs, comma-separated, repeatable', appendList)
    .option('--max-body <size>', 'largest JSON request body', parseSize, DEFAULT_LIMITS.maxBodyBytes)
    .option('--max-processes <n>', 'most declared processes (create answers 409 too_many_processes beyond)', parseCount(1), DEFAULT_LIMITS.maxProcesses)
    .option('--max-env-vars <n>', 'most variables in a create request env', parseCount(0), DEFAULT_LIMITS.maxEnvVars)
    .option('--max-env-bytes <size>', 'largest create request env (NAME=value bytes)', parseSize, DEFAULT_LIMITS.maxEnvBytes)
    .option('--max-download <size>', 'largest source archive (bytes transferred)', parseSize, DEFAULT_LIMITS.maxDownloadBytes)
    .option('--max-unpacked <size>', 'most bytes an archive may unpack to', parseSize, DEFAULT_LIMITS.maxUnpackedBytes)
    .option('--max-entries <n>', 'most entries in an archive', parseCount(1), DEFAULT_LIMITS.maxEntries)
    .option('--max-path-length <n>', 'longest archive entry name or link target, in bytes', parseCount(1, 4096), DEFAULT_LIMITS.maxPathLength)
    .option('--download-timeout <duration>', 'whole-download budget (idle timeout: the smaller of this and 30s)', parseDuration, DEFAULT_LIMITS.downloadTimeoutMs)
    .option('--max-redirects <n>', 'redirects followed when downloading a source', parseCount(0, 20), DEFAULT_LIMITS.maxRedirects)
    .option('--max-concurrent-downloads <n>', 'downloads at once; more wait their turn', parseCount(1, 1000), DEFAULT_LIMITS.maxConcurrentDownloads)
    .action(async (flags: ServeFlags) => {
      let tokens: string[];
      let flyToken: string | undefined;
      try {
        tokens = collectTokens({ token: flags.token, tokenFile: flags.tokenFile, env: process.env });
        // Children never see the agent's token, even with --inherit-env '*'.
        delete process.env.PROCFILE_AGENT_TOKEN;
        flyToken = process.env.FLY_API_TOKEN || undefined;
        delete process.env.FLY_API_TOKEN;
      } catch (err) {
        exitOnConfigError(err);
      }
      await serve({
        tokens,
        insecure: flags.insecure,
        allowSource: flags.allowSource ?? [],
        limits: limitsOf(flags),
        host: flags.host,
        port: flags.port,
        dataDir: flags.dataDir,
        stopTimeoutMs: flags.stopTimeout,
        portRange: flags.portRange,
        executor: flags.executor ?? flags.executors?.[0] ?? DEFAULT_CONFIG.executor,
        executors: flags.executors,
        dockerSocket: flags.dockerSocket,
        containerImage: flags.containerImage,
        publishHost: flags.publishHost,
        flyApiUrl: flags.flyApiUrl,
        flyLogsUrl: flags.flyLogsUrl,
        flyToken,
        flyApp: flags.flyApp,
        flyImage: flags.flyImage,
        inheritEnv: flags.inheritEnv,
        trustProxy: flags.trustProxy,
        logLevel: flags.logLevel,
        persist: flags.persist,
        watchDir: flags.watchDir,
        consoleBufferBytes: flags.consoleBuffer,
      });
    });
}

/** Runs until SIGINT/SIGTERM: then stops every child gracefully and exits 0; a second SIGINT kills them. */
async function serve(config: AgentConfig): Promise<void> {
  // The agent's heap traffic is child output: lines that die young by the million. V8's allocation-site
  // pretenuring, having seen a few long-lived objects at a site (the lines of quiet processes), starts allocating
  // everything from it in the old generation, and a burst then costs a full GC every ~40 ms (docs/performance.md).
  // Set before any agent code runs; the daemon's process is ours to tune (embedders of startAgent keep theirs).
  setFlagsFromString('--no-allocation-site-pretenuring');
  // Loaded here, not at the top: client commands (ps, logs…) should not pay for koa, dockerode and the rest.
  const { startAgent } = await import('../agent.js');
  let agent: Agent;
  try {
    agent = await startAgent(config);
  } catch (err) {
    exitOnConfigError(err);
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      agent.logger.warn({ signal }, 'second signal: killing all children');
      agent.killAll();
      return;
    }
    stopping = true;
    agent.logger.info({ signal }, 'stopping all children');
    agent.shutdown().then(
      () => {
        agent.logger.info('all children stopped');
        agent.logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        agent.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function exitOnConfigError(err: unknown): never {
  if (isAgentError(err) && CONFIG_ERRORS.has(err.code)) {
    process.stderr.write(`procfile-agent serve: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
