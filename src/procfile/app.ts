import { constants } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AgentError } from '../errors.js';
import { parseDotenv } from './dotenv.js';
import { parseProcfile, type ProcfileEntry } from './procfile.js';
import { CONTENT_ERROR } from './text.js';

export interface LoadedApp {
  /** Absolute directory holding the Procfile: the children's working directory. */
  appDir: string;
  procfile: Map<string, ProcfileEntry>;
  dotenv: Record<string, string>;
}

/** Both files are small by nature; the cap keeps a hostile archive from making us buffer gigabytes. */
export const MAX_PROCFILE_BYTES = 1024 * 1024;

/** Entries archivers add that no author means as "the top-level directory". */
const ARCHIVE_NOISE = new Set(['__MACOSX', 'pax_global_header', '.DS_Store']);

export async function loadApp(treeDir: string): Promise<LoadedApp> {
  const appDir = await findAppDir(path.resolve(treeDir));
  const procfileBytes = await readCapped(path.join(appDir, 'Procfile'), 'Procfile', 'procfile_invalid');
  if (!procfileBytes) throw noProcfile(); // removed between the lookup and the read
  const procfile = parseProcfile(procfileBytes);
  const dotenvBytes = await readCapped(path.join(appDir, '.env'), '.env', 'dotenv_invalid');
  return { appDir, procfile, dotenv: dotenvBytes ? parseDotenv(dotenvBytes) : {} };
}

/** Procfile at the root wins; otherwise inside the only top-level directory (GitHub tarballs, zips). */
async function findAppDir(root: string): Promise<string> {
  if (await isFile(path.join(root, 'Procfile'))) return root;
  const entries = (await readdir(root, { withFileTypes: true })).filter((e) => !ARCHIVE_NOISE.has(e.name));
  if (entries.length === 1 && entries[0].isDirectory()) {
    const sub = path.join(root, entries[0].name);
    if (await isFile(path.join(sub, 'Procfile'))) return sub;
  }
  throw noProcfile();
}

function noProcfile(): AgentError {
  return new AgentError(
    'no_procfile',
    'no Procfile at the root of the source tree nor in its single top-level directory',
    CONTENT_ERROR,
  );
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

/**
 * Reads at most the cap plus one byte (not stat's size, so a file that grows meanwhile cannot get past it).
 * O_NONBLOCK keeps a FIFO planted under the name from hanging open(). Missing file: undefined.
 */
async function readCapped(file: string, label: string, notFileCode: string): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new AgentError(notFileCode, `${label} is not a regular file`, CONTENT_ERROR);
    const buf = Buffer.allocUnsafe(MAX_PROCFILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buf.length) break;
    }
    if (length > MAX_PROCFILE_BYTES) {
      throw new AgentError('procfile_too_large', `${label} is larger than ${MAX_PROCFILE_BYTES} bytes`, CONTENT_ERROR);
    }
    return buf.subarray(0, length);
  } finally {
    await handle.close();
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
