import type { Logger } from 'pino';
import { AgentError } from '../errors.js';
import type { Executor } from '../executors/types.js';
import type { SourceCache } from '../source/index.js';
import type { BackoffOptions } from './backoff.js';
import { slugOf, type CreateRequest } from './create-request.js';
import { ManagedProcess, type ProcessObserver } from './managed-process.js';
import type { PortAllocator } from './ports.js';

export interface SupervisorOptions {
  executors: ReadonlyMap<string, Executor>;
  defaultExecutor: string;
  sources: SourceCache;
  ports: PortAllocator;
  logger: Logger;
  stopTimeoutMs: number;
  inheritedEnv: Record<string, string>;
  consoleBufferBytes?: number;
  backoff?: BackoffOptions;
  /** Metrics hooks, handed to every process. */
  observer?: ProcessObserver;
}

/** The registry of declared processes: create, look up, delete, and stop everything on shutdown. */
export class Supervisor {
  /** Map keeps insertion order, which is the listing's creation order (DESIGN §1). */
  private readonly processes = new Map<string, ManagedProcess>();
  private readonly reserved = new Set<string>();
  private shuttingDown = false;

  constructor(private readonly options: SupervisorOptions) {}

  get executorNames(): string[] {
    return [...this.options.executors.keys()];
  }

  list(): ManagedProcess[] {
    return [...this.processes.values()];
  }

  get(slug: string): ManagedProcess | undefined {
    return this.processes.get(slug);
  }

  async create(request: CreateRequest): Promise<ManagedProcess> {
    if (this.shuttingDown) throw new AgentError('shutting_down', 'the agent is shutting down', 503);
    const slug = slugOf(request);
    const executor = this.executorFor(request.executor);
    if (this.processes.has(slug) || this.reserved.has(slug)) {
      throw new AgentError('slug_exists', `process ${slug} already exists`, 409);
    }
    // Reserve before the await so two concurrent creates of one slug cannot both pass the check.
    this.reserved.add(slug);
    try {
      const port = await this.options.ports.allocate();
      const proc = new ManagedProcess(request, port, { ...this.options, executor });
      this.processes.set(slug, proc);
      proc.start();
      return proc;
    } finally {
      this.reserved.delete(slug);
    }
  }

  /** Stops the process gracefully and forgets it; resolves once its child has ended. */
  async delete(slug: string): Promise<void> {
    const proc = this.processes.get(slug);
    if (!proc) throw new AgentError('not_found', `no process ${slug}`, 404);
    await proc.stop();
    if (this.processes.get(slug) === proc) {
      this.processes.delete(slug);
      this.options.ports.release(proc.port);
      this.options.observer?.onRemoved?.(proc);
    }
  }

  /** Stops every child in parallel and waits for all of them (agent SIGINT/SIGTERM). */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    await Promise.all(this.list().map((proc) => proc.stop()));
  }

  /** Second SIGINT: no more grace. */
  killAll(): void {
    for (const executor of this.options.executors.values()) executor.killAll?.();
  }

  private executorFor(name: string | undefined): Executor {
    const wanted = name ?? this.options.defaultExecutor;
    const executor = this.options.executors.get(wanted);
    if (!executor) {
      throw new AgentError(
        'unknown_executor',
        `executor '${wanted}' is not enabled (enabled: ${this.executorNames.join(', ')})`,
        400,
      );
    }
    return executor;
  }
}
