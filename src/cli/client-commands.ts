import type { Command } from 'commander';
import { isFailureState, type StatusDocument } from '../client/index.js';
import type { RESTART_POLICIES } from '../supervisor/create-request.js';
import { action, CliExit, makeClient, withClientOptions, type ClientFlags } from './client-options.js';
import { registerConsoleCommands } from './console-commands.js';
import { colourState, formatBytes, formatDuration, styleFor, table, type Style } from './format.js';
import { parseDuration } from './options.js';
import { collectEnv, describeExit, describeFailure, restartOption } from './process-text.js';
import { registerProfileCommand } from './profile-command.js';

/** `ps`, `create`, `status`, `delete`, `attach`, `logs`, `run` and `profile`: the hypermedia client side (docs/cli.md). */
export function registerClientCommands(program: Command): void {
  registerPs(program);
  registerCreate(program);
  registerStatus(program);
  registerDelete(program);
  registerConsoleCommands(program);
  registerProfileCommand(program);
}

// --- shared helpers --------------------------------------------------------------------------------------------

function describeProgress(doc: StatusDocument): string {
  const progress = doc.progress;
  if (!progress) return '';
  const total = progress.total ?? null;
  if (total === null || total <= 0) return ` ${formatBytes(progress.bytes)}`;
  return ` ${formatBytes(progress.bytes)} / ${formatBytes(total)} (${Math.floor((progress.bytes * 100) / total)}%)`;
}

function uptime(doc: StatusDocument, now = Date.now()): string {
  if (doc.state !== 'running' || !doc.started_at) return '-';
  return formatDuration(now - Date.parse(doc.started_at));
}

function stateCell(doc: StatusDocument, style: Style): string {
  const word = colourState(doc.state, style);
  return doc.state === 'exited' && (doc.exit_code !== null || doc.exit_signal) ? `${word} (${doc.exit_signal ?? doc.exit_code})` : word;
}

function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

const dash = (value: unknown): string => (value === null || value === undefined || value === '' ? '-' : String(value));

// --- ps ------------------------------------------------------------------------------------------------------------

function registerPs(program: Command): void {
  withClientOptions(
    program
      .command('ps')
      .description('list processes: slug, type, state, pid, port, restarts, uptime')
      .option('--json', 'print the list as JSON (status documents)'),
  ).action(
    action(async (flags: ClientFlags & { json?: boolean }) => {
      const client = await makeClient(flags);
      const processes = await client.list();
      if (flags.json) return printJson(processes);
      const style = styleFor(process.stdout);
      const rows = processes.map((doc) => [
        doc.slug,
        dash(doc.process_type),
        stateCell(doc, style),
        dash(doc.pid),
        dash(doc.port),
        dash(doc.restarts),
        uptime(doc),
      ]);
      process.stdout.write(table(['SLUG', 'TYPE', 'STATE', 'PID', 'PORT', 'RESTARTS', 'UPTIME'], rows, style));
    }),
  );
}

// --- status --------------------------------------------------------------------------------------------------------

const LINK_FIELDS = new Set(['attach', 'details', 'status', 'delete', 'output']);

export function readableStatus(doc: StatusDocument, style: Style): string {
  const rows: Array<[string, string]> = [
    ['slug', style.bold(doc.slug)],
    ['state', colourState(doc.state, style)],
    ['app', doc.app],
    ['node', doc.node],
    ['type', dash(doc.process_type)],
    ['source', dash(doc.source_url)],
    ['executor', dash(doc.executor)],
    ['restart', dash(doc.restart)],
    ['pid', dash(doc.pid)],
    ['port', dash(doc.port)],
    ['restarts', dash(doc.restarts)],
    ['uptime', uptime(doc)],
    ['started', dash(doc.started_at)],
    ['created', dash(doc.created_at)],
  ];
  if (doc.exit_code !== null && doc.exit_code !== undefined) rows.push(['exit code', String(doc.exit_code)]);
  if (doc.exit_signal) rows.push(['exit signal', doc.exit_signal]);
  if (doc.error) rows.push(['error', style.red(`${doc.error}${doc.error_code ? ` (${doc.error_code})` : ''}`)]);
  if (doc.progress) rows.push(['progress', describeProgress(doc).trim()]);
  const known = new Set([
    ...LINK_FIELDS,
    ...['slug', 'state', 'app', 'node', 'process_type', 'source_url', 'executor', 'restart', 'pid', 'port', 'restarts'],
    ...['started_at', 'created_at', 'exit_code', 'exit_signal', 'error', 'error_code', 'progress'],
  ]);
  for (const [key, value] of Object.entries(doc)) {
    if (!known.has(key) && value !== null && value !== undefined) rows.push([key, typeof value === 'object' ? JSON.stringify(value) : String(value)]);
  }
  const width = Math.max(...rows.map(([key]) => key.length)) + 1;
  return rows.map(([key, value]) => `${`${key}:`.padEnd(width)} ${value}`).join('\n') + '\n';
}

function registerStatus(program: Command): void {
  withClientOptions(
    program
      .command('status')
      .description("show one process's status document")
      .argument('<slug>', 'app.node')
      .option('--json', 'print the status document as JSON'),
  ).action(
    action(async (slug: string, flags: ClientFlags & { json?: boolean }) => {
      const client = await makeClient(flags);
      const doc = await client.status(slug);
      if (flags.json) return printJson(doc);
      process.stdout.write(readableStatus(doc, styleFor(process.stdout)));
    }),
  );
}

// --- delete --------------------------------------------------------------------------------------------------------

function registerDelete(program: Command): void {
  withClientOptions(
    program
      .command('delete')
      .alias('rm')
      .description('stop processes (SIGTERM, grace period, SIGKILL) and forget them')
      .argument('<slug...>', 'app.node of each process'),
  ).action(
    action(async (slugs: string[], flags: ClientFlags) => {
      const client = await makeClient(flags);
      for (const slug of slugs) {
        await client.delete(slug);
        process.stdout.write(`deleted ${slug}\n`);
      }
    }),
  );
}

// --- create --------------------------------------------------------------------------------------------------------

interface CreateFlags extends ClientFlags {
  app: string;
  node: string;
  type: string;
  source: string;
  env?: Record<string, string>;
  restart?: (typeof RESTART_POLICIES)[number];
  executor?: string;
  image?: string;
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

/**
 * Shows state changes (and download progress) of a process on stderr. On a terminal the progress line is
 * rewritten in place; otherwise a progress line is printed at most once a second.
 */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): { update(doc: StatusDocument): void; done(): void } {
  const style = styleFor(stream);
  const tty = Boolean(stream.isTTY);
  let lastState = '';
  let lastText = '';
  let lastPrinted = 0;
  let open = false;
  return {
    update(doc) {
      const text = `${doc.slug}: ${colourState(doc.state, style)}${describeProgress(doc)}`;
      if (text === lastText) return;
      const changed = doc.state !== lastState;
      lastState = doc.state;
      lastText = text;
      if (tty) {
        stream.write(`${changed && open ? '\n' : '\r\u001b[K'}${text}`);
        open = true;
        return;
      }
      if (!changed && Date.now() - lastPrinted < 1000) return;
      lastPrinted = Date.now();
      stream.write(`${text}\n`);
    },
    done() {
      if (open) stream.write('\n');
      open = false;
    },
  };
}

/** --wait succeeds on `running` (or `exited` with code 0); a failure state, `backoff` or a failed exit is an error. */
function waitOutcome(doc: StatusDocument): { ok: boolean; message: string } {
  if (doc.state === 'running') return { ok: true, message: `${doc.slug} running (pid ${dash(doc.pid)}, port ${dash(doc.port)})` };
  if (doc.state === 'exited') {
    const ok = doc.exit_code === 0;
    return { ok, message: `${doc.slug} ${describeExit(doc)}` };
  }
  if (doc.state === 'backoff') {
    const why = doc.error ? `could not start: ${doc.error}` : describeExit(doc);
    return { ok: false, message: `${doc.slug} ${why}; the agent keeps restarting it (state backoff)` };
  }
  return { ok: false, message: describeFailure(doc) };
}

function registerCreate(program: Command): void {
  withClientOptions(
    program
      .command('create')
      .description('create a process: the agent downloads the app and runs one process type')
      .requiredOption('--app <name>', 'application name')
      .requiredOption('--node <name>', 'instance name (slug = app.node)')
      .requiredOption('--type <process-type>', 'process type of the Procfile')
      .requiredOption('--source <url>', 'http(s) URL of the tar, tar.gz or zip archive')
      .option('-e, --env <KEY=VALUE...>', 'environment for the child (repeatable)', collectEnv)
      .addOption(restartOption())
      .option('--executor <name>', 'executor (one the agent enabled)')
      .option('--image <image>', 'image for the container/fly executors')
      .option('--wait', 'show progress on stderr until the process runs or fails; exit 1 if it fails')
      .option('--timeout <duration>', 'with --wait: give up after this long (e.g. 30s, 5m)', parseDuration)
      .option('--json', 'print the status document as JSON'),
  ).action(
    action(async (flags: CreateFlags) => {
      const client = await makeClient(flags);
      let doc = await client.create({
        app: flags.app,
        node: flags.node,
        process_type: flags.type,
        source_url: flags.source,
        ...(flags.env ? { env: flags.env } : {}),
        ...(flags.restart ? { restart: flags.restart } : {}),
        ...(flags.executor ? { executor: flags.executor } : {}),
        ...(flags.image ? { image: flags.image } : {}),
      });
      if (!flags.wait) {
        if (flags.json) printJson(doc);
        else process.stdout.write(`created ${doc.slug} (${doc.state})\n`);
        return;
      }
      const reporter = progressReporter();
      try {
        doc = await client.waitFor(doc, (current) => current.state === 'running' || current.state === 'backoff' || current.state === 'exited' || isFailureState(current.state), {
          onUpdate: (current) => reporter.update(current),
          timeoutMs: flags.timeout,
        });
      } finally {
        reporter.done();
      }
      const outcome = waitOutcome(doc);
      if (flags.json) printJson(doc);
      if (!outcome.ok) throw new CliExit(1, outcome.message);
      if (!flags.json) process.stdout.write(`${outcome.message}\n`);
    }),
  );
}
