import type { Command } from 'commander';
import { DEFAULT_CONFIG, startAgent, type AgentConfig } from '../agent.js';
import { parseDuration, parseList, parsePort, parsePortRange, parseSize } from './options.js';

interface ServeFlags {
  host: string;
  port: number;
  dataDir: string;
  stopTimeout: number;
  portRange: AgentConfig['portRange'];
  executor: string;
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
    .option('--executor <name>', 'default executor for new processes', DEFAULT_CONFIG.executor)
    .option('--inherit-env <names>', 'comma-separated agent variables children inherit (globs like LC_*)', parseList, DEFAULT_CONFIG.inheritEnv)
    .option('--trust-proxy', 'build URLs from X-Forwarded-Proto / X-Forwarded-Host', false)
    .option('--console-buffer <size>', 'bytes queued per console before its lines are dropped', parseSize, DEFAULT_CONFIG.consoleBufferBytes)
    .option('--log-level <level>', 'pino level: fatal, error, warn, info, debug, trace', DEFAULT_CONFIG.logLevel)
    .action(async (flags: ServeFlags) => {
      await serve({
        host: flags.host,
        port: flags.port,
        dataDir: flags.dataDir,
        stopTimeoutMs: flags.stopTimeout,
        portRange: flags.portRange,
        executor: flags.executor,
        inheritEnv: flags.inheritEnv,
        trustProxy: flags.trustProxy,
        logLevel: flags.logLevel,
        consoleBufferBytes: flags.consoleBuffer,
      });
    });
}

/** Runs until SIGINT/SIGTERM: then stops every child gracefully and exits 0; a second SIGINT kills them. */
async function serve(config: AgentConfig): Promise<void> {
  const agent = await startAgent(config);
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
