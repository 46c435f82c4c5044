import type { Command } from 'commander';
import {
  AgentApiError,
  AgentClient,
  AgentClientError,
  AgentUnreachableError,
  AgentWaitTimeoutError,
  type RequestLogEntry,
} from '../client/index.js';
import { ConfigError, resolveTarget } from './config.js';
import { styleFor } from './format.js';
import { VERSION } from './version.js';

/** Options every client command has. They live on each command, not on the program, so `serve` keeps its own. */
export interface ClientFlags {
  agent?: string;
  profile?: string;
  token?: string;
  verbose: number;
}

const PROGRAM = 'procfile-agent';

export function withClientOptions(command: Command): Command {
  return command
    .option('--agent <url>', 'agent root URL (beats --profile, PROCFILE_AGENT_URL and the current profile)')
    .option('--profile <name>', 'use this profile instead of the current one')
    .option('--token <token>', "bearer token (default: PROCFILE_AGENT_TOKEN, then the profile's)")
    .option('-v, --verbose', 'log HTTP requests to stderr (-vv: with bodies)', (_value: string, previous: number) => previous + 1, 0);
}

/** Thrown by a command to end with `exitCode`, after printing `message` (if any) as `procfile-agent: message`. */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
  }
}

export function warn(message: string): void {
  process.stderr.write(`${PROGRAM}: ${message}\n`);
}

function logRequest(entry: RequestLogEntry, verbose: number): void {
  const style = styleFor(process.stderr);
  const outcome = entry.status !== undefined ? String(entry.status) : style.red(entry.error ?? 'no answer');
  process.stderr.write(style.dim(`${PROGRAM}: ${entry.method} ${entry.url} → ${outcome} (${entry.ms} ms)`) + '\n');
  if (verbose < 2) return;
  if (entry.requestBody !== undefined) process.stderr.write(style.dim(`  > ${entry.requestBody}`) + '\n');
  if (entry.responseBody !== undefined && entry.responseBody !== '') process.stderr.write(style.dim(`  < ${entry.responseBody.trimEnd()}`) + '\n');
}

export async function makeClient(flags: ClientFlags): Promise<AgentClient> {
  const target = await resolveTarget(flags);
  if (flags.verbose > 0) process.stderr.write(styleFor(process.stderr).dim(`${PROGRAM}: agent ${target.url} (${target.source})`) + '\n');
  return new AgentClient({
    url: target.url,
    token: target.token,
    userAgent: `${PROGRAM}/${VERSION}`,
    onRequest: flags.verbose > 0 ? (entry) => logRequest(entry, flags.verbose) : undefined,
  });
}

/** The exit code for an error, after one clear line on stderr. */
export function report(err: unknown): number {
  if (err instanceof CliExit) {
    if (err.message) warn(err.message);
    return err.exitCode;
  }
  if (err instanceof AgentUnreachableError) {
    warn(err.message);
    return 2;
  }
  if (err instanceof AgentApiError) {
    warn(`${err.message} (${err.code})`);
    return 1;
  }
  if (err instanceof AgentWaitTimeoutError || err instanceof AgentClientError || err instanceof ConfigError) {
    warn(err.message);
    return 1;
  }
  warn(err instanceof Error ? err.message : String(err));
  return 1;
}

async function flush(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0) return;
  await new Promise<void>((resolve) => stream.write('', () => resolve()));
}

/** Ends the CLI with `code` once stdout and stderr are flushed (consoles and stdin readers would keep it alive). */
export async function exit(code: number): Promise<never> {
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
}

/** Wraps a command body: its return value (default 0) or its error decides the exit code. */
export function action<A extends unknown[]>(body: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    let code: number;
    try {
      code = (await body(...args)) ?? 0;
    } catch (err) {
      code = report(err);
    }
    await exit(code);
  };
}
