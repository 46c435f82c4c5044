import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { isAgentError } from '../errors.js';
import { sourceError } from './errors.js';
import { SNIFF_BYTES, sniffHead } from './format.js';
import type { SourceLimits } from './limits.js';
import { TreeWriter } from './tree-writer.js';
import { extractTarStream } from './untar.js';

/** Bytes the download may run ahead of the unpacking before it waits. */
const AHEAD_BYTES = 4 * 1024 * 1024;

/**
 * Unpacks a tar or tar.gz while it is still downloading, into a fresh scratch directory, so the two overlap the way
 * `curl | tar xz` does instead of running one after the other. Whether the bytes are such an archive is decided by
 * their strong signature only (the same first rule `detectFormat` applies); anything else (zip, which needs the
 * whole file, or an ambiguous head) is left to the unpacking of the downloaded file.
 *
 * `input` is the download's sink. `result` is the scratch directory holding the complete tree, or null when the
 * bytes were not streamable; on failure the scratch directory is gone before `result` rejects.
 */
export class StreamingUnpack {
  readonly input = new PassThrough({ highWaterMark: AHEAD_BYTES });
  readonly result: Promise<string | null>;
  /** Whether the head named a streamable archive (known once the first bytes arrived, or the input ended). */
  readonly streams: Promise<boolean>;
  /** True from the moment the head named a streamable archive: the download's file is not needed from then on. */
  taken = false;
  private decide: (streams: boolean) => void = () => undefined;

  constructor(
    private readonly tmpDir: string,
    private readonly limits: SourceLimits,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.streams = new Promise((resolve) => (this.decide = resolve));
    this.result = this.run();
    this.result.then(
      (dir) => this.decide(dir !== null),
      () => this.decide(false),
    );
  }

  private async run(): Promise<string | null> {
    const chunks = this.input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const head = await readHead(chunks);
    const sniffed = sniffHead(head);
    if (!sniffed || !('format' in sniffed) || !sniffed.strong || sniffed.format === 'zip') {
      void drain(chunks);
      return null;
    }
    this.taken = true;
    this.decide(true);
    const dest = await mkdtemp(path.join(this.tmpDir, 'unpack-'));
    try {
      const writer = await TreeWriter.open(dest, this.limits, this.signal);
      await extractTarStream(Readable.from(prepend(head, chunks)), sniffed.format === 'tar.gz', writer);
      return dest;
    } catch (err) {
      await rm(dest, { recursive: true, force: true });
      const error = isAgentError(err) ? err : sourceError('unpack_failed', `could not unpack the archive: ${String(err)}`, err);
      // The download stops at once instead of fetching the rest of an archive already refused.
      this.input.destroy(error);
      throw error;
    }
  }
}

async function readHead(chunks: AsyncIterator<Buffer>): Promise<Buffer> {
  const seen: Buffer[] = [];
  let length = 0;
  while (length < SNIFF_BYTES) {
    const next = await chunks.next();
    if (next.done) break;
    seen.push(next.value);
    length += next.value.length;
  }
  return Buffer.concat(seen, length);
}

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

async function drain(chunks: AsyncIterator<Buffer>): Promise<void> {
  try {
    while (!(await chunks.next()).done);
  } catch {
    // The download failed: it reports that itself.
  }
}
