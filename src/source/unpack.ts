import { isAgentError } from '../errors.js';
import { sourceError } from './errors.js';
import type { ArchiveFormat } from './format.js';
import type { SourceLimits } from './limits.js';
import { TreeWriter } from './tree-writer.js';
import { extractTar } from './untar.js';
import { extractZip } from './unzip.js';

/**
 * Unpacks `archive` into `dest`, an empty directory the caller created and will remove on failure. Every
 * rejection is an AgentError with an `unpack_*` code (or `aborted`).
 */
export async function unpackArchive(
  archive: string,
  format: ArchiveFormat,
  dest: string,
  limits: SourceLimits,
  signal?: AbortSignal,
): Promise<void> {
  const writer = await TreeWriter.open(dest, limits, signal);
  try {
    if (format === 'zip') await extractZip(archive, writer, limits.maxPathLength);
    else await extractTar(archive, format === 'tar.gz', writer);
  } catch (err) {
    if (isAgentError(err)) throw err;
    throw sourceError('unpack_failed', `could not unpack the archive: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}
