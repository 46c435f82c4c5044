import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { isAgentError } from '../errors.js';
import { sourceError } from './errors.js';
import { refused } from './entry-path.js';
import type { TreeWriter } from './tree-writer.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MSDOS_DIRECTORY = 0x10;
// "Version made by" hosts whose external attributes carry a Unix st_mode in the high 16 bits.
const UNIX_HOSTS = new Set([3 /* Unix */, 19 /* OS X */]);

/** zip needs random access (the directory is at the end), which is why archives are downloaded to a file first. */
export async function extractZip(file: string, writer: TreeWriter, maxPathLength: number): Promise<void> {
  let zip: ZipFile;
  try {
    // decodeStrings off: yauzl would otherwise reject (or, non-strict, rewrite) bad names with its own wording;
    // we decode below and apply our own rules so every refusal reads the same.
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (err) {
    throw sourceError('unpack_failed', `corrupt zip archive: ${messageOf(err)}`, err);
  }
  try {
    writer.expectEntries(zip.entryCount);
    for await (const entry of zip.eachEntry()) {
      await extractEntry(zip, entry, writer, maxPathLength);
    }
  } catch (err) {
    if (isAgentError(err)) throw err;
    if ((err as NodeJS.ErrnoException).syscall !== undefined) throw sourceError('unpack_failed', `could not unpack: ${messageOf(err)}`, err);
    throw sourceError('unpack_failed', `corrupt zip archive: ${messageOf(err)}`, err);
  } finally {
    if (zip.isOpen) zip.close();
  }
}

async function extractEntry(zip: ZipFile, entry: Entry, writer: TreeWriter, maxPathLength: number): Promise<void> {
  writer.countEntry();
  // strictFileNames=true keeps backslashes so the shared rules can refuse them.
  const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
  const unixMode = UNIX_HOSTS.has(entry.versionMadeBy >> 8) ? entry.externalFileAttributes >>> 16 : 0;
  const type = unixMode & S_IFMT;
  const perms = unixMode & 0o7777 ? unixMode & 0o7777 : undefined;

  if (type === S_IFLNK) {
    const target = await readSmall(zip, entry, name, maxPathLength);
    await writer.symlink(name, target);
  } else if (type === S_IFDIR || (type === 0 && (name.endsWith('/') || (entry.externalFileAttributes & MSDOS_DIRECTORY) !== 0))) {
    await writer.directory(name, perms);
  } else if (type === S_IFREG || type === 0) {
    if (name.endsWith('/')) throw refused(name, 'a regular file whose name ends with /');
    const stream = await openEntry(zip, entry, name);
    await writer.file(name, perms, entry.uncompressedSize, crcChecked(stream, entry, name), entry.getLastModDate());
  } else {
    throw refused(name, type === 0o010000 ? 'FIFOs are not allowed' : 'device files, sockets and unknown file types are not allowed');
  }
}

async function openEntry(zip: ZipFile, entry: Entry, name: string): Promise<Readable> {
  try {
    const stream = await zip.openReadStreamPromise(entry);
    // yauzl starts inflating at once and forwards zlib errors with a bare emit('error'), possibly before we
    // iterate (the iterator would then wait forever) or after it detached (an "unhandled" crash). Turning the
    // emit into a real destroy makes the stream remember the error for whoever reads it next.
    stream.on('error', (err) => {
      if (!stream.destroyed) stream.destroy(err);
    });
    return stream;
  } catch (err) {
    throw sourceError('unpack_failed', `corrupt zip entry ${JSON.stringify(name)}: ${messageOf(err)}`, err);
  }
}

/** yauzl checks sizes but not CRC-32; a flipped bit in stored data would otherwise go unnoticed. */
async function* crcChecked(stream: Readable, entry: Entry, name: string): AsyncGenerator<Buffer> {
  let crc = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      crc = crc32(chunk, crc);
      yield chunk;
    }
  } catch (err) {
    if (isAgentError(err)) throw err;
    throw sourceError('unpack_failed', `corrupt zip entry ${JSON.stringify(name)}: ${messageOf(err)}`, err);
  }
  if (crc >>> 0 !== entry.crc32 >>> 0) {
    throw sourceError('unpack_failed', `corrupt zip entry ${JSON.stringify(name)}: CRC-32 mismatch`);
  }
}

/** A zip symlink stores its target as the entry's content; it is read whole, but capped at the path limit. */
async function readSmall(zip: ZipFile, entry: Entry, name: string, maxPathLength: number): Promise<string> {
  if (entry.uncompressedSize > maxPathLength) throw refused(name, `symlink target is longer than ${maxPathLength} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of crcChecked(await openEntry(zip, entry, name), entry, name)) {
    size += chunk.length;
    if (size > maxPathLength) throw refused(name, `symlink target is longer than ${maxPathLength} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
