import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { AgentError, messageOf } from '../errors.js';
import { CreateRequestSchema, slugOf, type CreateRequest, type Supervisor } from '../supervisor/index.js';

/** Editors and copy tools write through files like these; they are never declarations. */
const IGNORED = /^[.#]|~$|\.(swp|swx|tmp|part)$/;
const MAX_FILE_BYTES = 1024 * 1024;

interface Known {
  hash: string;
  /** Valid declaration currently applied, or undefined when the file was invalid. */
  request?: CreateRequest;
}

/**
 * The directory control plane (`serve --watch-dir DIR`): every `<slug>.json` there is a create request. A new file
 * creates, a changed file stops and recreates, a removed file deletes; invalid files are listed in the
 * `invalid spec` state and retried when edited. Changes are applied after a quiet period (partial writes) by one
 * scan at a time, so rapid successive edits end in the last version.
 */
export class WatchDir {
  private readonly known = new Map<string, Known>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> = Promise.resolve();
  private again = false;
  private stopped = false;

  constructor(
    readonly dir: string,
    private readonly supervisor: Supervisor,
    private readonly log: Logger,
    private readonly debounceMs = 200,
  ) {}

  async start(): Promise<void> {
    this.watcher = watch(this.dir, () => this.schedule());
    this.watcher.on('error', (err) => this.log.error({ err: messageOf(err), dir: this.dir }, 'watch-dir watcher failed'));
    await this.scan();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }

  /** Waits for the scan in progress (tests and shutdown). */
  settled(): Promise<void> {
    return this.scanning;
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.scan(), this.debounceMs);
  }

  private scan(): Promise<void> {
    this.again = true;
    this.scanning = this.scanning.then(async () => {
      while (this.again && !this.stopped) {
        this.again = false;
        await this.scanOnce().catch((err) => this.log.error({ err: messageOf(err), dir: this.dir }, 'watch-dir scan failed'));
      }
    });
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const names = (await readdir(this.dir)).filter((name) => name.endsWith('.json') && !IGNORED.test(name));
    for (const name of this.known.keys()) if (!names.includes(name)) await this.removed(name);
    for (const name of names) await this.seen(name);
  }

  private async seen(name: string): Promise<void> {
    let text: string;
    try {
      const bytes = await readFile(path.join(this.dir, name));
      if (bytes.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
      text = bytes.toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      text = `\0unreadable: ${messageOf(err)}`;
    }
    const hash = createHash('sha256').update(text).digest('hex');
    const before = this.known.get(name);
    if (before?.hash === hash) return;
    const slug = name.slice(0, -'.json'.length);
    const parsed = this.parse(slug, text);
    if (parsed instanceof AgentError) {
      this.known.set(name, { hash });
      this.log.error({ file: path.join(this.dir, name), code: parsed.code, err: parsed.message }, 'watch-dir file is invalid');
      await this.supervisor.declareInvalid(slug, parsed).catch((err) => this.log.error({ slug, err: messageOf(err) }, 'could not list invalid file'));
      return;
    }
    try {
      if (this.supervisor.get(slug)?.origin === 'watch-dir') await this.supervisor.delete(slug, 'watch-dir');
      await this.supervisor.create(parsed, { origin: 'watch-dir' });
      this.known.set(name, { hash, request: parsed });
      this.log.info({ slug, file: name }, before ? 'watch-dir file changed: process recreated' : 'watch-dir file: process created');
    } catch (err) {
      // E.g. the slug belongs to a process created through the API: retried when the file is edited.
      this.known.set(name, { hash });
      this.log.error({ slug, file: name, err: messageOf(err) }, 'watch-dir file could not be applied');
    }
  }

  private async removed(name: string): Promise<void> {
    const slug = name.slice(0, -'.json'.length);
    this.known.delete(name);
    if (this.supervisor.get(slug)?.origin !== 'watch-dir') return;
    await this.supervisor.delete(slug, 'watch-dir').catch((err) => this.log.error({ slug, err: messageOf(err) }, 'watch-dir delete failed'));
    this.log.info({ slug, file: name }, 'watch-dir file removed: process deleted');
  }

  private parse(slug: string, text: string): CreateRequest | AgentError {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return new AgentError('invalid_spec', `${slug}.json is not valid JSON: ${messageOf(err)}`, 400);
    }
    const result = CreateRequestSchema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const field = issue.path.join('.');
      return new AgentError('invalid_spec', `${slug}.json: ${field ? `${field}: ` : ''}${issue.message}`, 400);
    }
    if (slugOf(result.data) !== slug) {
      return new AgentError('invalid_spec', `${slug}.json declares ${slugOf(result.data)}: the file name must be the slug`, 400);
    }
    return result.data;
  }
}
