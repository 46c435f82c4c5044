import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ConsoleHub } from '../console/index.js';
import { AgentError, messageOf } from '../errors.js';
import type { Child, ChildSpec, ExitStatus, Executor } from '../executors/types.js';
import { mergeEnv, type AppCache } from '../procfile/index.js';
import type { Progress, SourceCache } from '../source/index.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import type { CreateRequest, RestartPolicy } from './create-request.js';
import { FAILURE_STATES, failureStateFor, type ProcessState } from './states.js';

/** What every process shares: the supervisor hands these down unchanged. */
export interface ProcessSettings {
  sources: SourceCache;
  logger: Logger;
  stopTimeoutMs: number;
  inheritedEnv: Record<string, string>;
  consoleBufferBytes?: number;
  backoff?: BackoffOptions;
  /** Told about state changes, exits, restarts and downloaded bytes (metrics); must not throw. */
  observer?: ProcessObserver;
}

export interface ProcessContext extends ProcessSettings {
  executor: Executor;
  /** Parsed Procfiles, shared by every process of the supervisor. */
  apps: AppCache;
  /** Told the archive's sha256 once it is known (persistence keeps it to skip the download after a restart). */
  onSourceKnown?(proc: ManagedProcess, sha256: string): void;
}

/** Where a process was declared: the REST API or a file of the --watch-dir control plane. */
export type ProcessOrigin = 'api' | 'watch-dir';

/** Facts a process is created with besides its request: a restored process keeps its creation time and archive. */
export interface ProcessFacts {
  createdAt?: Date;
  sourceSha256?: string | null;
  origin?: ProcessOrigin;
  /** Only for an invalid declaration, whose slug comes from a file name rather than app and node. */
  slug?: string;
}

/** Hooks for whoever counts what processes do (src/metrics); the supervisor knows nothing about how. */
export interface ProcessObserver {
  onState?(slug: string, from: ProcessState, to: ProcessState): void;
  onExit?(slug: string, status: ExitStatus): void;
  onRestart?(slug: string): void;
  onBytesDownloaded?(bytes: number): void;
  /** The process was deleted and forgotten (its console's final counters can be read one last time). */
  onRemoved?(proc: ManagedProcess): void;
}

/** Everything the status document shows about a process, links aside (DESIGN §1). */
export interface ProcessSnapshot {
  app: string;
  node: string;
  slug: string;
  state: ProcessState;
  process_type: string;
  source_url: string;
  executor: string;
  restart: RestartPolicy;
  pid: string | null;
  port: number | null;
  restarts: number;
  exit_code: number | null;
  exit_signal: string | null;
  started_at: string | null;
  created_at: string;
  error: string | null;
  error_code: string | null;
  progress: Progress | null;
  /** Consoles attached right now. */
  attachers: number;
}

function describeExit(status: ExitStatus): string {
  return status.signal ? `exited on signal ${status.signal}` : `exited with code ${status.code}`;
}

/** One declared process: fetches its source, then starts, watches and restarts its child until deleted. */
export class ManagedProcess {
  readonly slug: string;
  readonly console: ConsoleHub;
  readonly createdAt: Date;
  readonly origin: ProcessOrigin;
  private sourceSha256: string | null;
  private state: ProcessState = 'pending';
  private child: Child | undefined;
  private startedAt: Date | null = null;
  private restarts = 0;
  private lastExit: ExitStatus = { code: null, signal: null };
  private error: AgentError | null = null;
  private progress: Progress | null = null;
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private running: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(
    readonly request: CreateRequest,
    readonly port: number | null,
    private readonly ctx: ProcessContext,
    facts: ProcessFacts = {},
  ) {
    this.slug = facts.slug ?? `${request.app}.${request.node}`;
    this.createdAt = facts.createdAt ?? new Date();
    this.origin = facts.origin ?? 'api';
    this.sourceSha256 = facts.sourceSha256 ?? null;
    this.console = new ConsoleHub({ attacherBufferBytes: ctx.consoleBufferBytes });
    this.backoff = new Backoff(ctx.backoff);
    this.log = ctx.logger.child({ slug: this.slug });
    this.console.onInput = (data) => this.child?.write(data);
  }

  /** The archive's sha256, once known. */
  get sourceSha256Known(): string | null {
    return this.sourceSha256;
  }

  get restartPolicy(): RestartPolicy {
    return this.request.restart ?? 'always';
  }

  start(): void {
    // Deferred one turn: the create answer shows `pending` (DESIGN §1), never a state the run reached already.
    this.running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.run());
  }

  snapshot(): ProcessSnapshot {
    const { request } = this;
    return {
      app: request.app,
      node: request.node,
      slug: this.slug,
      state: this.state,
      process_type: request.process_type,
      source_url: request.source_url,
      executor: this.ctx.executor.name,
      restart: this.restartPolicy,
      pid: this.child?.id ?? null,
      port: this.port,
      restarts: this.restarts,
      exit_code: this.lastExit.code,
      exit_signal: this.lastExit.signal,
      started_at: this.startedAt?.toISOString() ?? null,
      created_at: this.createdAt.toISOString(),
      error: this.error?.message ?? null,
      error_code: this.error?.code ?? null,
      progress: this.progress,
      attachers: this.console.attacherCount,
    };
  }

  /** Stops the child gracefully (idempotent) and resolves once everything it ran has ended. */
  stop(graceMs = this.ctx.stopTimeoutMs): Promise<void> {
    this.stopping ??= this.stopNow(graceMs);
    return this.stopping;
  }

  private async stopNow(graceMs: number): Promise<void> {
    if (this.state !== 'exited' && !FAILURE_STATES.includes(this.state)) this.setState('stopping');
    this.abort.abort();
    await this.child?.stop(graceMs);
    await this.running;
    this.console.close();
  }

  private async run(): Promise<void> {
    let spec: ChildSpec;
    try {
      spec = await this.prepare();
    } catch (err) {
      if (!this.abort.signal.aborted) this.fail(err);
      return;
    }
    await this.supervise(spec);
  }

  private async prepare(): Promise<ChildSpec> {
    const { request, ctx } = this;
    const fetched = await this.fetchSource();
    const app = await ctx.apps.load(fetched.tree);
    const entry = app.procfile.get(request.process_type);
    if (!entry) {
      const known = [...app.procfile.keys()].join(', ') || 'none';
      throw new AgentError(
        'unknown_process_type',
        `the Procfile has no process type '${request.process_type}' (it has: ${known})`,
        422,
      );
    }
    await ctx.executor.prepare?.({ slug: this.slug, tree: app.appDir, sha256: fetched.sha256 });
    const port = this.port === null ? undefined : { PORT: String(this.port) };
    return {
      slug: this.slug,
      app: request.app,
      processType: request.process_type,
      command: entry.command,
      env: mergeEnv(ctx.inheritedEnv, app.dotenv, entry.env, request.env, port),
      cwd: app.appDir,
      port: this.port,
      sourceUrl: request.source_url,
      image: request.image,
      resources: request.resources,
      region: request.region,
      volume: request.volume,
    };
  }

  /** The unpacked tree: the one a previous agent left for this archive when it is still there, else downloaded. */
  private async fetchSource(): Promise<{ tree: string; sha256: string }> {
    const { ctx } = this;
    if (this.sourceSha256) {
      const tree = await ctx.sources.lookup(this.sourceSha256);
      if (tree) return { tree, sha256: this.sourceSha256 };
    }
    this.setState('downloading');
    const fetched = await ctx.sources.fetch(this.request.source_url, {
      signal: this.abort.signal,
      onProgress: (progress) => {
        const delta = progress.bytes - (this.progress?.bytes ?? 0);
        if (delta > 0) ctx.observer?.onBytesDownloaded?.(delta);
        this.progress = progress;
      },
      onPhase: (phase) => this.setState(phase),
    });
    if (fetched.sha256 !== this.sourceSha256) {
      this.sourceSha256 = fetched.sha256;
      ctx.onSourceKnown?.(this, fetched.sha256);
    }
    return fetched;
  }

  private async supervise(spec: ChildSpec): Promise<void> {
    while (!this.abort.signal.aborted) {
      const uptime = await this.runOnce(spec);
      if (this.abort.signal.aborted) return;
      if (!this.shouldRestart()) {
        this.setState('exited');
        return;
      }
      const delay = this.backoff.next(uptime);
      this.setState('backoff');
      this.console.event(`restarting in ${delay} ms`);
      try {
        await sleep(delay, undefined, { signal: this.abort.signal });
      } catch {
        return;
      }
      this.restarts += 1;
      this.ctx.observer?.onRestart?.(this.slug);
    }
  }

  /** Starts the child and waits for it (and its output) to end; returns how long it was up. */
  private async runOnce(spec: ChildSpec): Promise<number> {
    this.setState('starting');
    const began = Date.now();
    try {
      this.child = await this.ctx.executor.start(spec);
    } catch (err) {
      this.error = err instanceof AgentError ? err : new AgentError('start_failed', messageOf(err));
      this.log.error({ err: this.error.message, code: this.error.code }, 'child could not start');
      this.console.event(`could not start: ${this.error.message}`);
      return 0;
    }
    const child = this.child;
    this.error = null;
    this.startedAt = new Date();
    // A stop that came while the executor was still starting this child found nothing to stop: stop it now.
    if (this.abort.signal.aborted) void child.stop(this.ctx.stopTimeoutMs);
    else this.setState('running');
    this.console.event(`started ${this.ctx.executor.name === 'local' ? 'pid' : 'id'} ${child.id}`);
    this.log.info({ id: child.id }, 'child started');
    const [, status] = await Promise.all([this.pump(child), child.exited]);
    this.console.endOfOutput();
    this.lastExit = status;
    this.ctx.observer?.onExit?.(this.slug, status);
    this.child = undefined;
    this.console.event(describeExit(status));
    this.log.info({ code: status.code, signal: status.signal }, 'child ended');
    return Date.now() - began;
  }

  private async pump(child: Child): Promise<void> {
    for await (const chunk of child.output) this.console.write(chunk.stream, chunk.data);
  }

  private shouldRestart(): boolean {
    switch (this.restartPolicy) {
      case 'always':
        return true;
      case 'never':
        return false;
      case 'on-failure':
        return this.lastExit.code !== 0;
    }
  }

  /** A declaration that could not be used (an invalid --watch-dir file): listed with its error, never started. */
  markInvalid(error: AgentError): void {
    this.fail(error);
  }

  private fail(err: unknown): void {
    this.error = err instanceof AgentError ? err : new AgentError('internal_error', messageOf(err));
    this.setState(failureStateFor(this.error.code));
    this.console.event(`${this.state}: ${this.error.message}`);
    this.log.warn({ code: this.error.code, err: this.error.message }, this.state);
  }

  private setState(state: ProcessState): void {
    if (this.state === state) return;
    const from = this.state;
    this.state = state;
    this.log.debug({ state }, 'state');
    this.ctx.observer?.onState?.(this.slug, from, state);
  }
}
