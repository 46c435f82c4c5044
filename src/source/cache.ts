import { chmod, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isAgentError } from '../errors.js';
import { download, type Downloaded, type Progress } from './download.js';
import { abortedError, sourceError, throwIfAborted } from './errors.js';
import { detectFormat } from './format.js';
import { resolveLimits, type SourceLimits } from './limits.js';
import { notAllowedError, type SourceAllowList } from './allow.js';
import { Slots } from './queue.js';
import { StreamingUnpack } from './streaming-unpack.js';
import { unpackArchive } from './unpack.js';
import { parseSourceUrl } from './url.js';

export type SourcePhase = 'downloading' | 'unpacking';

export interface FetchedSource {
  sha256: string;
  /** Absolute path of the unpacked tree, `<dataDir>/trees/<sha256>`. Shared: treat it as read-only. */
  tree: string;
  /** True when this call did not unpack: the tree existed, or another concurrent fetch unpacked it. */
  cached: boolean;
}

export interface FetchOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: Progress) => void) | undefined;
  onPhase?: ((phase: SourcePhase) => void) | undefined;
}

export interface SourceCacheOptions {
  dataDir: string;
  limits?: Partial<SourceLimits> | undefined;
  /** `--allow-source`: hosts a source_url (and every redirect) may name; undefined allows every http/https URL. */
  allowSource?: SourceAllowList | undefined;
  /** Downloads running at once; more wait in a FIFO queue (default 4). */
  maxConcurrentDownloads?: number | undefined;
}

export { DEFAULT_CONCURRENT_DOWNLOADS } from './limits.js';
import { DEFAULT_CONCURRENT_DOWNLOADS } from './limits.js';

/** Work several callers wait for; it is cancelled only when every waiter has given up (see `wait`). */
interface SharedJob<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiters: number;
}

type Extraction = SharedJob<void>;

/** A download (and unpack) of one URL that concurrent fetches of the same URL join instead of repeating. */
interface SharedFetch extends SharedJob<FetchedSource> {
  phase: SourcePhase;
  progress: Progress | undefined;
  listeners: Set<FetchOptions>;
}

const SHA256 = /^[0-9a-f]{64}$/;
/** URLs whose last archive is remembered (see `worthStreaming`). */
const REMEMBERED_URLS = 1024;

/**
 * Downloads source archives and unpacks each distinct archive (by sha256 of its bytes) once, into
 * `<dataDir>/trees/<sha256>`. All scratch files live in `<dataDir>/tmp`, so nothing is ever written outside the
 * data dir, and a tree only appears under `trees/` by an atomic rename once it is complete.
 */
export class SourceCache {
  readonly dataDir: string;
  readonly limits: Readonly<SourceLimits>;
  private readonly tmpDir: string;
  private readonly treesDir: string;
  // One extraction per sha256 in this process; the rename makes a second process harmless too.
  private readonly inflight = new Map<string, Extraction>();
  /** Downloads in flight by URL, for fetches of the same URL to join. */
  private readonly fetching = new Map<string, SharedFetch>();
  /** The sha256 each URL last downloaded to, most recent last. */
  private readonly lastSha256 = new Map<string, string>();
  private running = 0;
  private readonly allowSource: SourceAllowList | undefined;
  /** Download slots; waiting for one is cancelled by the fetch's signal. */
  readonly downloadSlots: Slots;

  constructor(opts: SourceCacheOptions) {
    this.allowSource = opts.allowSource;
    this.downloadSlots = new Slots(opts.maxConcurrentDownloads ?? DEFAULT_CONCURRENT_DOWNLOADS);
    this.dataDir = path.resolve(opts.dataDir);
    this.limits = Object.freeze(resolveLimits(opts.limits));
    this.tmpDir = path.join(this.dataDir, 'tmp');
    this.treesDir = path.join(this.dataDir, 'trees');
  }

  treePath(sha256: string): string {
    if (!SHA256.test(sha256)) throw new TypeError(`not a sha256 hex digest: ${JSON.stringify(sha256)}`);
    return path.join(this.treesDir, sha256);
  }

  /** The tree of an archive already unpacked, or null; lets a restarted agent reuse a tree without downloading. */
  async lookup(sha256: string): Promise<string | null> {
    const tree = this.treePath(sha256);
    return (await isDirectory(tree)) ? tree : null;
  }

  /**
   * The tree of the archive at `url`. Fetches of one URL that overlap share one download: a burst of creates from
   * one archive costs one request, not one each. A fetch that starts after the shared one ended downloads again,
   * so a changed archive behind the same URL is always seen.
   */
  async fetch(url: string, opts: FetchOptions = {}): Promise<FetchedSource> {
    const parsed = parseSourceUrl(url);
    if (this.allowSource && !this.allowSource(parsed)) throw notAllowedError(parsed);
    throwIfAborted(opts.signal);
    let job = this.fetching.get(parsed.href);
    const joined = job !== undefined && !job.controller.signal.aborted;
    if (!joined) job = this.startFetch(parsed);
    const shared = job!;
    shared.listeners.add(opts);
    // Join before announcing the phase: a listener reacting to it (even by aborting) must find us counted.
    const waiting = wait(shared, opts.signal);
    waiting.catch(() => undefined);
    opts.onPhase?.(shared.phase);
    if (shared.progress) opts.onProgress?.(shared.progress);
    try {
      const fetched = await waiting;
      return joined ? { ...fetched, cached: true } : fetched;
    } finally {
      shared.listeners.delete(opts);
    }
  }

  private startFetch(url: URL): SharedFetch {
    // `promise` is set right below: it needs the job for its listeners.
    const job = { controller: new AbortController(), waiters: 0, phase: 'downloading', progress: undefined, listeners: new Set() } as Omit<
      SharedFetch,
      'promise'
    > as SharedFetch;
    const signal = job.controller.signal;
    const shared: FetchOptions = {
      signal,
      onProgress: (progress) => {
        job.progress = progress;
        for (const l of job.listeners) l.onProgress?.(progress);
      },
      onPhase: (phase) => {
        job.phase = phase;
        for (const l of job.listeners) l.onPhase?.(phase);
      },
    };
    job.promise = this.download(url, shared).finally(() => {
      if (this.fetching.get(url.href) === job) this.fetching.delete(url.href);
    });
    job.promise.catch(() => undefined);
    this.fetching.set(url.href, job);
    return job;
  }

  private async download(url: URL, opts: FetchOptions): Promise<FetchedSource> {
    this.running += 1;
    try {
      await mkdir(this.tmpDir, { recursive: true });
      await mkdir(this.treesDir, { recursive: true });
      const release = await this.downloadSlots.acquire(opts.signal);
      const streaming = (await this.worthStreaming(url)) ? new StreamingUnpack(this.tmpDir, this.limits, opts.signal) : undefined;
      let downloaded: Downloaded;
      try {
        downloaded = await download(url, this.tmpDir, this.limits, { ...opts, allow: this.allowSource, sink: streaming?.input, sinkOnly: () => streaming?.taken === true });
      } catch (err) {
        await streaming?.result.catch(() => undefined);
        throw err;
      } finally {
        release();
      }
      this.remember(url, downloaded.sha256);
      if (streaming && (await streaming.streams)) opts.onPhase?.('unpacking');
      const unpacked = await streaming?.result.catch(async (err: unknown) => {
        await rm(downloaded.file, { force: true });
        throw err;
      });
      if (unpacked) return await this.adopt(downloaded, unpacked, opts.signal);
      return await this.materialize(downloaded, opts);
    } finally {
      this.running -= 1;
    }
  }

  /**
   * Unpacking while downloading pays off unless the URL's last archive is unpacked already: then the bytes are
   * most likely the same, and unpacking them again would only be thrown away.
   */
  private async worthStreaming(url: URL): Promise<boolean> {
    const sha256 = this.lastSha256.get(url.href);
    return sha256 === undefined || !(await isDirectory(this.treePath(sha256)));
  }

  private remember(url: URL, sha256: string): void {
    this.lastSha256.delete(url.href);
    this.lastSha256.set(url.href, sha256);
    if (this.lastSha256.size > REMEMBERED_URLS) this.lastSha256.delete(this.lastSha256.keys().next().value!);
  }

  /** Installs a tree unpacked while downloading as `trees/<sha256>`, unless an identical one got there first. */
  private async adopt(downloaded: Downloaded, dir: string, signal: AbortSignal | undefined): Promise<FetchedSource> {
    const { sha256 } = downloaded;
    const tree = this.treePath(sha256);
    // Archives are not kept: the tree is what gets used, and keeping both would double the disk cost.
    await rm(downloaded.file, { force: true });
    try {
      throwIfAborted(signal);
      if (await isDirectory(tree)) return { sha256, tree, cached: true };
      return { sha256, tree, cached: !(await installTree(dir, tree)) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Removes scratch files a crashed agent left in `<dataDir>/tmp`. Meant for startup; does nothing while a fetch
   * of this cache is running, since their scratch files look the same. Returns how many were removed.
   */
  async sweepTemp(): Promise<number> {
    if (this.running > 0) return 0;
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch {
      return 0;
    }
    const stale = names.filter((n) => n.startsWith('download-') || n.startsWith('unpack-'));
    await Promise.all(stale.map((n) => rm(path.join(this.tmpDir, n), { recursive: true, force: true })));
    return stale.length;
  }

  private async materialize(downloaded: Downloaded, opts: FetchOptions): Promise<FetchedSource> {
    const { sha256 } = downloaded;
    const tree = this.treePath(sha256);
    let handedOff = false;
    try {
      for (;;) {
        throwIfAborted(opts.signal);
        if (await isDirectory(tree)) return { sha256, tree, cached: true };
        const running = this.inflight.get(sha256);
        // An extraction whose every waiter gave up is being torn down; joining it would inherit its `aborted`.
        if (running?.controller.signal.aborted) {
          await running.promise.catch(() => undefined);
          continue;
        }
        let job = running;
        if (!job) {
          job = this.extract(downloaded, tree);
          handedOff = true;
        }
        // Join before announcing the phase: a listener reacting to it (even by aborting) must find us counted.
        const waiting = wait(job, opts.signal);
        waiting.catch(() => undefined);
        opts.onPhase?.('unpacking');
        await waiting;
        return { sha256, tree, cached: !handedOff };
      }
    } finally {
      // Archives are not kept: the tree is what gets used, and keeping both would double the disk cost.
      if (!handedOff) await rm(downloaded.file, { force: true });
    }
  }

  private extract(downloaded: Downloaded, tree: string): Extraction {
    const controller = new AbortController();
    const job: Extraction = { controller, waiters: 0, promise: Promise.resolve() };
    job.promise = (async () => {
      let dest: string | undefined;
      try {
        const format = await detectFormat(downloaded.file, downloaded.contentType, downloaded.contentEncoding);
        dest = await mkdtemp(path.join(this.tmpDir, 'unpack-'));
        await unpackArchive(downloaded.file, format, dest, this.limits, controller.signal);
        if (await installTree(dest, tree)) dest = undefined;
      } catch (err) {
        if (isAgentError(err)) throw err;
        throw sourceError('unpack_failed', `could not unpack the archive: ${err instanceof Error ? err.message : String(err)}`, err);
      } finally {
        if (dest !== undefined) await rm(dest, { recursive: true, force: true });
        await rm(downloaded.file, { force: true });
        if (this.inflight.get(downloaded.sha256) === job) this.inflight.delete(downloaded.sha256);
      }
    })();
    // Waiters observe the outcome; this only keeps an outcome nobody waits for from being "unhandled".
    job.promise.catch(() => undefined);
    this.inflight.set(downloaded.sha256, job);
    return job;
  }
}

/**
 * Waits for shared work (a download, an extraction). A waiter that aborts leaves at once, unless it is the last
 * one: then the work is cancelled and the waiter returns only after its scratch files are gone.
 */
function wait<T>(job: SharedJob<T>, signal: AbortSignal | undefined): Promise<T> {
  job.waiters += 1;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      job.waiters -= 1;
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (!finish()) return;
      if (job.waiters > 0) {
        reject(abortedError());
        return;
      }
      job.controller.abort();
      job.promise.then(
        () => reject(abortedError()),
        () => reject(abortedError()),
      );
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    job.promise.then(
      (value) => finish() && resolve(value),
      (err: unknown) => finish() && reject(err),
    );
  });
}

/**
 * Moves a complete scratch tree to `trees/<sha256>` by an atomic rename. False when another fetch or process
 * installed the same archive first: its tree is identical, and the caller discards `dest`.
 */
async function installTree(dest: string, tree: string): Promise<boolean> {
  // mkdtemp makes 0700; the tree must be readable by e.g. a container user with another uid.
  await chmod(dest, 0o755);
  try {
    await rename(dest, tree);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await isDirectory(tree))) return false;
    throw err;
  }
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
