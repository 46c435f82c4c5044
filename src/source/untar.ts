import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar, { type Header } from 'tar-stream';
import { isAgentError } from '../errors.js';
import { sourceError } from './errors.js';
import { refused } from './entry-path.js';
import type { TreeWriter } from './tree-writer.js';

const READ_CHUNK_BYTES = 256 * 1024;

/** Streams a (gzipped) tar file through the writer; nothing is buffered beyond tar-stream's own chunking. */
export function extractTar(file: string, gzipped: boolean, writer: TreeWriter): Promise<void> {
  // Big chunks: per-chunk costs (stream callbacks, tar-stream parsing, garbage) dominate small-file archives.
  return extractTarStream(createReadStream(file, { highWaterMark: READ_CHUNK_BYTES }), gzipped, writer);
}

/** Streams (gzipped) tar bytes through the writer; `read` is destroyed when this returns. */
export async function extractTarStream(read: Readable, gzipped: boolean, writer: TreeWriter): Promise<void> {
  // Magic-less (v7) tars are accepted: every header's checksum is still verified by tar-stream.
  // (Missing from tar-stream's bundled typings, hence the cast.)
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  const gunzip = gzipped ? createGunzip({ chunkSize: READ_CHUNK_BYTES }) : null;
  let gzipError: Error | null = null;
  // Entry streams die with a generic "Stream was destroyed"; the reason is what the extractor itself failed with.
  let tarError: Error | null = null;
  extract.on('error', (err: Error) => {
    tarError ??= err;
  });
  read.on('error', (err) => extract.destroy(err));
  if (gunzip) {
    gunzip.on('error', (err) => {
      gzipError = err;
      extract.destroy(err);
    });
    read.pipe(gunzip).pipe(extract);
  } else {
    read.pipe(extract);
  }

  try {
    for await (const entry of extract) {
      // tar-stream yields Buffers; its typings say unknown.
      await extractEntry(entry.header, entry as unknown as EntryData, writer);
    }
  } catch (caught) {
    if (isAgentError(caught)) throw caught;
    // The extractor's 'error' event may trail the entry stream's failure by a tick.
    if (tarError === null && gzipError === null) await new Promise((resolve) => setImmediate(resolve));
    const err: unknown = gzipError ?? tarError ?? caught;
    const message = err instanceof Error ? err.message : String(err);
    if (gzipError !== null) throw sourceError('unpack_failed', `corrupt gzip data: ${(gzipError as Error).message}`, err);
    if ((err as NodeJS.ErrnoException).syscall !== undefined) throw sourceError('unpack_failed', `could not unpack: ${message}`, err);
    if (/unexpected end/i.test(message)) throw sourceError('unpack_failed', 'truncated tar archive: unexpected end of data', err);
    throw sourceError('unpack_failed', `corrupt tar archive: ${message}`, err);
  } finally {
    read.destroy();
    gunzip?.destroy();
    extract.destroy();
  }
}

type EntryData = AsyncIterable<Uint8Array> & { resume(): unknown };

async function extractEntry(header: Header, data: EntryData, writer: TreeWriter): Promise<void> {
  writer.countEntry();
  const name = header.name;
  switch (header.type) {
    case 'file':
    case 'contiguous-file':
      await writer.file(name, header.mode, Number.isFinite(header.size) ? header.size : null, data, header.mtime);
      return;
    case 'directory':
      await writer.directory(name, header.mode);
      break;
    case 'symlink':
      await writer.symlink(name, header.linkname ?? '');
      break;
    case 'link':
      await writer.hardlink(name, header.linkname ?? '');
      break;
    case 'character-device':
    case 'block-device':
      throw refused(name, 'device files are not allowed');
    case 'fifo':
      throw refused(name, 'FIFOs are not allowed');
    default:
      // tar-stream reports types it does not know (GNU sparse files, volume labels, …) as null.
      throw refused(name, `unsupported tar entry type ${JSON.stringify((header.type as string | null) ?? 'unknown')}`);
  }
  // Non-file entries normally carry no data, but a crafted header may; it has to be read past.
  data.resume();
}
