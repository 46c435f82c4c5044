import { chmodSync, closeSync, fchmodSync, futimesSync, linkSync, lstatSync, mkdirSync, openSync, realpathSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import path from 'node:path';
import { sourceError, throwIfAborted } from './errors.js';
import { checkSymlinkTarget, entryComponents, refused } from './entry-path.js';
import type { SourceLimits } from './limits.js';

type Kind = 'dir' | 'file' | 'symlink';

/** The longest the writer keeps the event loop to itself. */
const YIELD_EVERY_MS = 4;

// Group/other write and setuid/setgid/sticky never survive; the owner keeps enough rights to read (and for
// directories, to keep extracting into them).
const fileMode = (mode: number | undefined): number => (mode === undefined ? 0o644 : (mode & 0o755) | 0o600);
const dirMode = (mode: number | undefined): number => (mode === undefined ? 0o755 : (mode & 0o755) | 0o700);

/**
 * Writes archive entries into a fresh directory that nothing else touches, which is what makes the in-memory
 * record of every path we created authoritative: an entry may only go through directories we made ourselves, so
 * no symlink (from the archive or anywhere else) is ever written through. The kernel is asked once per directory
 * as a second opinion (realpath must stay under the root). Files are opened with O_CREAT|O_EXCL, which does not
 * follow a symlink either.
 *
 * The file system calls are synchronous: an archive of small files costs five calls per file, and a trip through
 * libuv's thread pool for each made unpacking 5-7x slower than `tar` (bench/, issue 10). The event loop is given
 * back every few milliseconds, so requests and consoles are never held up longer than that.
 */
export class TreeWriter {
  private readonly kinds = new Map<string, Kind>();
  private readonly verified = new Set<string>(['']);
  private entries = 0;
  private bytes = 0;
  private lastYield = performance.now();

  private constructor(
    private readonly root: string,
    private readonly limits: SourceLimits,
    private readonly signal: AbortSignal | undefined,
  ) {}

  static async open(dir: string, limits: SourceLimits, signal?: AbortSignal): Promise<TreeWriter> {
    return new TreeWriter(await realpath(dir), limits, signal);
  }

  /** Called for every archive entry, including those that create nothing, before acting on it. */
  countEntry(): void {
    throwIfAborted(this.signal);
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) this.throwTooManyEntries();
  }

  /** For formats that announce their entry count up front (zip), so a bomb of empty entries fails at once. */
  expectEntries(count: number): void {
    if (count > this.limits.maxEntries) this.throwTooManyEntries();
  }

  private throwTooManyEntries(): never {
    throw sourceError('unpack_too_many_entries', `archive has more than ${this.limits.maxEntries} entries`);
  }

  private addBytes(n: number): void {
    this.bytes += n;
    if (this.bytes > this.limits.maxUnpackedBytes) {
      throw sourceError('unpack_too_large', `archive unpacks to more than ${this.limits.maxUnpackedBytes} bytes`);
    }
  }

  async directory(name: string, mode?: number): Promise<void> {
    const parts = entryComponents(name, this.limits.maxPathLength);
    if (parts.length === 0) return; // `./` — the root already exists
    const key = parts.join('/');
    const abs = path.join(await this.parent(name, parts), parts.at(-1)!);
    if (this.kinds.get(key) === 'dir') {
      chmodSync(abs, dirMode(mode));
      return;
    }
    this.makeRoom(name, key, abs);
    mkdirSync(abs);
    chmodSync(abs, dirMode(mode));
    this.kinds.set(key, 'dir');
  }

  async file(name: string, mode: number | undefined, declaredSize: number | null, data: AsyncIterable<Uint8Array>, mtime?: Date): Promise<void> {
    // Trip the cap on the header's word before writing a byte; the count below is what really protects.
    if (declaredSize !== null && this.bytes + declaredSize > this.limits.maxUnpackedBytes) this.addBytes(declaredSize);
    const parts = this.nonRoot(name);
    const key = parts.join('/');
    const abs = path.join(await this.parent(name, parts), parts.at(-1)!);
    this.makeRoom(name, key, abs);
    const fd = openSync(abs, 'wx', 0o600);
    this.kinds.set(key, 'file');
    try {
      for await (const chunk of data) {
        throwIfAborted(this.signal);
        this.addBytes(chunk.byteLength);
        let offset = 0;
        while (offset < chunk.byteLength) offset += writeSync(fd, chunk, offset, chunk.byteLength - offset);
        await this.breathe();
      }
      fchmodSync(fd, fileMode(mode));
      if (mtime && !Number.isNaN(mtime.getTime())) futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
    await this.breathe();
  }

  async symlink(name: string, target: string): Promise<void> {
    const parts = this.nonRoot(name);
    checkSymlinkTarget(name, parts, target, this.limits.maxPathLength);
    const key = parts.join('/');
    const abs = path.join(await this.parent(name, parts), parts.at(-1)!);
    this.makeRoom(name, key, abs);
    symlinkSync(target, abs);
    this.kinds.set(key, 'symlink');
  }

  /** tar hardlinks name their target by archive path (relative to the root, not to the link). */
  async hardlink(name: string, target: string): Promise<void> {
    const parts = this.nonRoot(name);
    let targetParts: string[];
    try {
      targetParts = entryComponents(target, this.limits.maxPathLength);
    } catch {
      throw refused(name, `hardlink target ${JSON.stringify(target)} is not a relative path inside the tree`);
    }
    const key = parts.join('/');
    const targetKey = targetParts.join('/');
    if (this.kinds.get(targetKey) !== 'file') {
      throw refused(name, `hardlink target ${JSON.stringify(target)} is not a regular file extracted earlier`);
    }
    if (targetKey === key) throw refused(name, 'hardlink to itself');
    const targetAbs = path.join(this.root, ...targetParts);
    if (!lstatSync(targetAbs).isFile()) {
      throw refused(name, `hardlink target ${JSON.stringify(target)} is not a regular file`);
    }
    const abs = path.join(await this.parent(name, parts), parts.at(-1)!);
    this.makeRoom(name, key, abs);
    linkSync(targetAbs, abs);
    this.kinds.set(key, 'file');
  }

  private nonRoot(name: string): string[] {
    const parts = entryComponents(name, this.limits.maxPathLength);
    if (parts.length === 0) throw refused(name, 'a non-directory entry names the tree root');
    return parts;
  }

  /** Creates missing parent directories and returns the parent's absolute path, refusing any way out. */
  private async parent(name: string, parts: string[]): Promise<string> {
    let abs = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const key = parts.slice(0, i + 1).join('/');
      abs = path.join(abs, parts[i]!);
      const kind = this.kinds.get(key);
      if (kind === 'dir') continue;
      if (kind === 'symlink') throw refused(name, `it would be written through the symlink ${JSON.stringify(key)}`);
      if (kind === 'file') throw refused(name, `its parent ${JSON.stringify(key)} is a file, not a directory`);
      mkdirSync(abs);
      chmodSync(abs, 0o755);
      this.kinds.set(key, 'dir');
    }
    const parentKey = parts.slice(0, -1).join('/');
    if (!this.verified.has(parentKey)) {
      const real = realpathSync(abs);
      if (real !== this.root && !real.startsWith(this.root + path.sep)) {
        throw refused(name, 'its parent directory resolves outside the tree');
      }
      this.verified.add(parentKey);
    }
    return abs;
  }

  /** A later entry replaces an earlier file or link of the same name (tar semantics), never a directory. */
  private makeRoom(name: string, key: string, abs: string): void {
    const existing = this.kinds.get(key);
    if (existing === undefined) return;
    if (existing === 'dir') throw refused(name, 'an earlier entry of the same name is a directory');
    unlinkSync(abs);
    this.kinds.delete(key);
  }

  /** Gives the event loop a turn once this writer has held it for a few milliseconds. */
  private async breathe(): Promise<void> {
    if (performance.now() - this.lastYield < YIELD_EVERY_MS) return;
    await nextTurn();
    this.lastYield = performance.now();
  }
}
