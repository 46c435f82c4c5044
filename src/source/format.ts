import { open } from 'node:fs/promises';
import { sourceError } from './errors.js';

export type ArchiveFormat = 'tar' | 'tar.gz' | 'zip';

const TAR_TYPES = new Set(['application/x-tar', 'application/tar', 'application/x-ustar', 'application/x-gtar']);
const GZIP_TYPES = new Set([
  'application/gzip',
  'application/x-gzip',
  'application/x-compressed-tar',
  'application/x-tgz',
  'application/x-gtar-compressed',
  'application/tar+gzip',
]);
const ZIP_TYPES = new Set(['application/zip', 'application/x-zip-compressed', 'application/x-zip', 'multipart/x-zip']);

/** The format a Content-Type names, or null for generic types (application/octet-stream, text/plain, none). */
export function formatFromContentType(contentType: string | null): ArchiveFormat | null {
  const type = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (TAR_TYPES.has(type)) return 'tar';
  if (GZIP_TYPES.has(type)) return 'tar.gz';
  if (ZIP_TYPES.has(type)) return 'zip';
  return null;
}

export type Sniffed = { format: ArchiveFormat; strong: boolean } | { unsupported: string } | { empty: true } | null;

const UNSUPPORTED: [string, number[]][] = [
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['7-zip', [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]],
  ['rar', [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07]],
  ['lzip', [0x4c, 0x5a, 0x49, 0x50]],
];

/** How many leading bytes `sniffHead` needs to decide (one tar header block). */
export const SNIFF_BYTES = 512;

/** Reads the signature of a file (see `sniffHead`). */
export async function sniffFormat(file: string): Promise<Sniffed> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return sniffHead(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * The format the first bytes of an archive show. gzip, zip and ustar/GNU tar signatures are "strong" (they cannot
 * be mistaken); a magic-less (v7) tar is only recognised by a valid header checksum, which is weak.
 */
export function sniffHead(bytes: Buffer): Sniffed {
  const head = bytes.subarray(0, SNIFF_BYTES);
  if (head.length === 0) return { empty: true };
  const starts = (sig: number[]): boolean => head.length >= sig.length && sig.every((b, i) => head[i] === b);
  if (starts([0x1f, 0x8b])) return { format: 'tar.gz', strong: true };
  // Local file header, or an empty archive's end record, or the (rare) spanning marker.
  if (starts([0x50, 0x4b, 0x03, 0x04]) || starts([0x50, 0x4b, 0x05, 0x06]) || starts([0x50, 0x4b, 0x07, 0x08])) {
    return { format: 'zip', strong: true };
  }
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return { format: 'tar', strong: true };
  for (const [name, sig] of UNSUPPORTED) if (starts(sig)) return { unsupported: name };
  if (head.length === SNIFF_BYTES && (head.every((b) => b === 0) || tarChecksumValid(head))) return { format: 'tar', strong: false };
  return null;
}

function tarChecksumValid(block: Buffer): boolean {
  const field = block.toString('latin1', 148, 156).replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === parseInt(field, 8);
}

/**
 * Decides the archive format. Unambiguous leading bytes win over the Content-Type, because mislabelled archives
 * (S3 objects uploaded as octet-stream, `.tar.gz` served as x-tar + Content-Encoding) are common and the bytes
 * cannot lie; the Content-Type decides only when the bytes are not conclusive, e.g. an old v7 tar.
 */
export async function detectFormat(file: string, contentType: string | null, contentEncoding: string | null): Promise<ArchiveFormat> {
  const sniffed = await sniffFormat(file);
  if (sniffed && 'empty' in sniffed) throw sourceError('unpack_failed', 'the downloaded archive is empty (0 bytes)');
  if (sniffed && 'unsupported' in sniffed) {
    throw sourceError('unpack_failed', `unsupported archive format: ${sniffed.unsupported} (supported: tar, tar.gz, zip)`);
  }
  if (sniffed?.strong) return sniffed.format;
  // A Content-Encoding means the Content-Type describes the bytes before encoding, so it cannot be trusted here.
  const encoded = contentEncoding !== null && !/^\s*identity\s*$/i.test(contentEncoding);
  const declared = encoded ? null : formatFromContentType(contentType);
  if (declared) return declared;
  if (sniffed) return sniffed.format;
  throw sourceError(
    'unpack_failed',
    `unknown archive format (Content-Type ${contentType ?? 'missing'}; not tar, tar.gz or zip by its first bytes)`,
  );
}
