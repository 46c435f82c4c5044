import { AgentError } from '../errors.js';
import { AppCache } from '../procfile/index.js';
import type { Executor } from '../executors/types.js';
import { slugOf, type CreateRequest } from './create-request.js';
import { ManagedProcess, type ProcessFacts, type ProcessSettings } from './managed-process.js';
import { declare, type StateStore } from './state-store.js';
import type { PortAllocator } from './ports.js';

export interface SupervisorOptions extends ProcessSettings {
  executors: ReadonlyMap<string, Executor>;
  defaultExecutor: string;
  ports: PortAllocator;
  /** Where declared processes are kept across restarts; absent with `serve --no-persist`. */
  store?: StateStore;
}

/** The registry of declared processes: create, look up, delete, and stop everything on shutdown. */
export class Supervisor {
  /** Map keeps insertion order, which is the listing's creation order (DESIGN §1). */
  private readonly processes = new Map<string, ManagedProcess>();
  private readonly reserved = new Set<string>();
  private readonly apps = new AppCache();
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

  async create(request: CreateRequest, facts: ProcessFacts = {}): Promise<ManagedProcess> {
    if (this.shuttingDown) throw new AgentError('shutting_down', 'the agent is shutting down', 503);
    const slug = slugOf(request);
    const executor = this.executorFor(request.executor);
    executor.validate?.(request);
    if (this.processes.has(slug) || this.reserved.has(slug)) {
      throw new AgentError('slug_exists', `process ${slug} already exists`, 409);
    }
    // Reserve before the await so two concurrent creates of one slug cannot both pass the check.
    this.reserved.add(slug);
    try {
      const port = await this.options.ports.allocate();
      const proc = new ManagedProcess(request, port, { ...this.options, executor, apps: this.apps, onSourceKnown: (p) => void this.persist(p).catch(() => undefined) }, facts);
      try {
        // Declared on disk before it runs: a create that answered 201 survives an agent restart.
        await this.persist(proc);
      } catch (err) {
        this.options.ports.release(port);
        throw err;
      }
      this.processes.set(slug, proc);
      proc.start();
      return proc;
    } finally {
      this.reserved.delete(slug);
    }
  }

  /**
   * Stops the process gracefully and forgets it; resolves once its child has ended. The API may not delete what
   * a --watch-dir file declares: the file would bring it back.
   */
  async delete(slug: string, by: 'api' | 'watch-dir' = 'api'): Promise<void> {
    const proc = this.processes.get(slug);
    if (!proc) throw new AgentError('not_found', `no process ${slug}`, 404);
    if (proc.origin === 'watch-dir' && by === 'api') {
      throw new AgentError('managed_by_watch_dir', `process ${slug} is declared by a file in the watch directory: remove the file to delete it`, 409);
    }
    await proc.stop();
    if (this.processes.get(slug) === proc) {
      this.processes.delete(slug);
      this.options.ports.release(proc.port);
      this.options.observer?.onRemoved?.(proc);
      if (proc.origin === 'api') await this.options.store?.remove(slug);
    }
  }

  /**
   * Lists a --watch-dir file that could not be used, under the slug its name gives, in the `invalid spec` state
   * (replacing an earlier entry for the same file).
   */
  async declareInvalid(slug: string, error: AgentError): Promise<void> {
    const existing = this.processes.get(slug);
    if (existing && existing.origin !== 'watch-dir') throw new AgentError('slug_exists', `process ${slug} already exists`, 409);
    if (existing) await this.delete(slug, 'watch-dir');
    const dot = slug.indexOf('.');
    const placeholder: CreateRequest = {
      app: dot > 0 ? slug.slice(0, dot) : slug,
      node: dot > 0 ? slug.slice(dot + 1) : '',
      process_type: '',
      source_url: '',
    };
    const proc = new ManagedProcess(placeholder, null, { ...this.options, executor: this.executorFor(undefined), apps: this.apps }, { origin: 'watch-dir', slug });
    this.processes.set(slug, proc);
    proc.markInvalid(error);
  }

  /** Brings back every process a previous agent declared (after SIGINT, SIGKILL or a crash alike). */
  async restore(): Promise<void> {
    const { store, logger } = this.options;
    if (!store) return;
    const { declared, broken } = await store.load();
    for (const { file, error } of broken) {
      logger.error({ file, err: error }, 'state file unreadable: that process is not restored (file kept)');
    }
    for (const entry of declared) {
      try {
        await this.create(entry.request, { createdAt: new Date(entry.created_at), sourceSha256: entry.source_sha256 });
      } catch (err) {
        logger.error({ slug: slugOf(entry.request), err: (err as Error).message }, 'could not restore process');
      }
    }
    if (declared.length > 0) logger.info({ restored: declared.length }, 'processes restored');
  }

  private async persist(proc: ManagedProcess): Promise<void> {
    if (!this.options.store || proc.origin !== 'api') return;
    try {
      await this.options.store.save(declare(proc.request, proc.createdAt, proc.sourceSha256Known));
    } catch (err) {
      this.options.logger.error({ slug: proc.slug, err: (err as Error).message }, 'could not save process state');
      throw new AgentError('persist_failed', `could not save the state of ${proc.slug}: ${(err as Error).message}`, 500);
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
