import { randomInt } from 'node:crypto';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { isFailureState, isSettled, type ConsoleFrame, type ConsoleHandle, type StatusDocument } from '../client/index.js';
import { collectEnv, describeFailure, exitCodeOf } from './process-text.js';
import { action, CliExit, exit, makeClient, report, warn, withClientOptions, type ClientFlags } from './client-options.js';
import { colourState, styleFor } from './format.js';

/** How long `logs` (without -f) waits for another scrollback frame before it decides the scrollback is over. */
export const LOGS_QUIET_MS = 300;
/** `run` attaches with the whole ring as scrollback so that nothing printed before the console opened is missed. */
const RUN_TAIL = 1500;

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`'${value}' is not a line count`);
  return n;
}

/**
 * Console frames (JSON mode) to the terminal: the child's stdout to stdout, its stderr to stderr, agent events to
 * stderr as `[agent] …` (when `events`); with `json` every frame is printed as one JSON line on stdout.
 */
function frameWriter(options: { json?: boolean; events: boolean }): (frame: ConsoleFrame) => void {
  const style = styleFor(process.stderr);
  return (frame) => {
    if (options.json) {
      process.stdout.write(JSON.stringify(frame) + '\n');
    } else if (frame.stream === 'agent') {
      if (options.events) process.stderr.write(style.dim(`[agent] ${frame.line}`) + '\n');
    } else if (frame.stream === 'stderr') {
      process.stderr.write(frame.line + '\n');
    } else {
      process.stdout.write(frame.line + '\n');
    }
  };
}

/** Each line read from stdin is sent to the child (the agent appends the newline). Returns a stopper. */
function forwardStdin(handle: ConsoleHandle): () => void {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  lines.on('line', (line) => handle.send(line));
  return () => lines.close();
}

/** Resolves on the first SIGINT / SIGTERM / SIGHUP: a console command detaches, it never kills the process. */
function interrupted(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(signal));
  });
}

async function followUntilDetached(handle: ConsoleHandle, slug: string): Promise<number> {
  const outcome = await Promise.race([handle.closed, interrupted()]);
  if (typeof outcome === 'string') {
    handle.close();
    return 0;
  }
  if (outcome.code === 1000) {
    process.stderr.write(styleFor(process.stderr).dim(`[agent] console closed${outcome.reason ? `: ${outcome.reason}` : ''}`) + '\n');
    return 0;
  }
  throw new CliExit(2, `lost the console of ${slug} (WebSocket close ${outcome.code})`);
}

interface AttachFlags extends ClientFlags {
  tail?: number;
  stdin?: boolean;
  json?: boolean;
}

interface LogsFlags extends ClientFlags {
  tail: number;
  follow?: boolean;
  json?: boolean;
}

interface RunFlags extends ClientFlags {
  app: string;
  type: string;
  source: string;
  node?: string;
  env?: Record<string, string>;
  executor?: string;
  image?: string;
  stdin?: boolean;
}

export function registerConsoleCommands(program: Command): void {
  withClientOptions(
    program
      .command('attach')
      .description("print a process's output and send it input; Ctrl-C detaches (the process keeps running)")
      .argument('<slug>', 'app.node')
      .option('--tail <n>', 'scrollback lines first (agent default 100)', parseCount)
      .option('--stdin', 'send stdin lines to the child (default when stdin is a terminal)')
      .option('--no-stdin', 'never read stdin')
      .option('--json', 'print console frames as JSON lines {ts, stream, line}'),
  ).action(
    action(async (slug: string, flags: AttachFlags) => {
      const client = await makeClient(flags);
      const handle = await client.attach(slug, { tail: flags.tail, format: 'json', onLine: frameWriter({ json: flags.json, events: true }) });
      const sendStdin = flags.stdin ?? Boolean(process.stdin.isTTY);
      if (sendStdin) forwardStdin(handle);
      if (process.stderr.isTTY) {
        process.stderr.write(styleFor(process.stderr).dim(`attached to ${slug}${sendStdin ? ' (your lines go to its stdin)' : ''}; Ctrl-C detaches`) + '\n');
      }
      return followUntilDetached(handle, slug);
    }),
  );

  withClientOptions(
    program
      .command('logs')
      .description("print a process's recent output (-f: then follow it)")
      .argument('<slug>', 'app.node')
      .option('-n, --tail <n>', 'how many recent lines (with -f or --json agent events count as lines)', parseCount, 100)
      .option('-f, --follow', 'keep printing new lines until Ctrl-C')
      .option('--json', 'print console frames as JSON lines {ts, stream, line}'),
  ).action(
    action(async (slug: string, flags: LogsFlags) => {
      const client = await makeClient(flags);
      const doc = await client.find(slug);
      // Plain `logs`: the `output` link answers the scrollback as text, exactly the last N lines of the child.
      if (!flags.follow && !flags.json && doc.output) {
        process.stdout.write(await client.output(doc, { tail: flags.tail }));
        return;
      }
      let received = 0;
      let bump: () => void = () => undefined;
      const write = frameWriter({ json: flags.json, events: true });
      const handle = await client.attach(doc, {
        tail: flags.tail,
        format: 'json',
        onLine: (frame) => {
          received += 1;
          write(frame);
          bump();
        },
      });
      if (flags.follow) return followUntilDetached(handle, slug);
      // No `output` link (older agent) or --json: the scrollback comes as one burst right after the upgrade; it
      // is over once `tail` frames arrived or the console stayed quiet for LOGS_QUIET_MS.
      await new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined;
        const check = (): void => {
          if (timer) clearTimeout(timer);
          if (received >= flags.tail) return resolve();
          timer = setTimeout(resolve, LOGS_QUIET_MS);
        };
        bump = check;
        void handle.closed.then(() => resolve());
        check();
      });
      handle.close();
    }),
  );

  withClientOptions(
    program
      .command('run')
      .description("one-off: run a process type once, stream its output, delete it, exit with the child's code")
      .requiredOption('--app <name>', 'application name')
      .requiredOption('--type <process-type>', 'process type of the Procfile')
      .requiredOption('--source <url>', 'http(s) URL of the tar, tar.gz or zip archive')
      .option('--node <name>', 'instance name (default run.NNNNN)')
      .option('-e, --env <KEY=VALUE...>', 'environment for the child (repeatable)', collectEnv)
      .option('--executor <name>', 'executor (one the agent enabled)')
      .option('--image <image>', 'image for the container/fly executors')
      .option('--stdin', 'send stdin lines to the child (default when stdin is a terminal)')
      .option('--no-stdin', 'never read stdin'),
  ).action(
    action(async (flags: RunFlags) => {
      const client = await makeClient(flags);
      const created = await client.create({
        app: flags.app,
        node: flags.node ?? `run.${randomInt(10_000, 100_000)}`,
        process_type: flags.type,
        source_url: flags.source,
        restart: 'never',
        ...(flags.env ? { env: flags.env } : {}),
        ...(flags.executor ? { executor: flags.executor } : {}),
        ...(flags.image ? { image: flags.image } : {}),
      });
      // Ctrl-C stops the one-off (it is ours); a second Ctrl-C leaves at once.
      let stopping = false;
      const onSignal = (): void => {
        if (stopping) {
          void exit(130);
          return;
        }
        stopping = true;
        warn(`stopping ${created.slug}…`);
        client.delete(created).then(
          () => exit(130),
          (err: unknown) => exit(report(err)),
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let final: StatusDocument;
      let handle: ConsoleHandle | undefined;
      try {
        handle = await client.attach(created, { tail: RUN_TAIL, format: 'json', onLine: frameWriter({ events: flags.verbose > 0 }) });
        if (flags.stdin ?? Boolean(process.stdin.isTTY)) forwardStdin(handle);
        const style = styleFor(process.stderr);
        let lastState = '';
        final = await client.waitFor(created, isSettled, {
          intervalMs: 100,
          onUpdate: (doc) => {
            if (flags.verbose > 0 && doc.state !== lastState) process.stderr.write(style.dim(`${doc.slug}: `) + colourState(doc.state, style) + '\n');
            lastState = doc.state;
          },
        });
        // Deleting closes the console after its last line (docs/console.md): then every line has been printed.
        await client.delete(final);
      } catch (err) {
        if (stopping) await new Promise(() => undefined); // the signal handler ends the CLI
        await client.delete(created).catch(() => undefined);
        throw err;
      }
      await Promise.race([handle.closed, sleep(5000)]);
      if (stopping) await new Promise(() => undefined);
      if (isFailureState(final.state)) throw new CliExit(1, describeFailure(final));
      return exitCodeOf(final);
    }),
  );
}
