import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { messageOf } from '../errors.js';
import { CreateRequestSchema, slugOf, type CreateRequest } from './create-request.js';

/** What survives an agent restart: the create request and the facts needed to bring the process back as it was. */
export const DeclaredProcessSchema = z.object({
  version: z.literal(1),
  request: CreateRequestSchema,
  created_at: z.string(),
  /** The archive's sha256 once known, so a restarted agent reuses the unpacked tree instead of downloading. */
  source_sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
});

export type DeclaredProcess = z.infer<typeof DeclaredProcessSchema>;

export interface LoadResult {
  declared: DeclaredProcess[];
  /** Files that could not be read back; kept on disk for the operator, reported in the log. */
  broken: Array<{ file: string; error: string }>;
}

/**
 * One JSON file per declared process under `<dataDir>/processes/`, written atomically: a temporary file, fsync,
 * rename over the old one, fsync of the directory — a crash leaves the old version or the new one, never half.
 */
export class StateStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'processes');
  }

  async save(declared: DeclaredProcess): Promise<void> {
    const slug = slugOf(declared.request);
    const temp = path.join(this.dir, `.${slug}.${randomBytes(4).toString('hex')}.tmp`);
    const file = await this.create(temp);
    try {
      await file.writeFile(`${JSON.stringify(declared, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, this.fileOf(slug));
    await this.syncDir();
  }

  async remove(slug: string): Promise<void> {
    // unlink, not rm: rm checks the path with a synchronous lstat on the event loop first (100 deletes: 25 ms).
    await unlink(this.fileOf(slug)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await this.syncDir();
  }

  /** Every declared process, oldest first (the listing's creation order survives the restart). */
  async load(): Promise<LoadResult> {
    const result: LoadResult = { declared: [], broken: [] };
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return result;
    }
    for (const name of names) {
      if (name.startsWith('.')) {
        // A temporary file from a save that was cut short: the previous version (if any) is intact.
        await rm(path.join(this.dir, name), { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const parsed = DeclaredProcessSchema.parse(JSON.parse(await readFile(path.join(this.dir, name), 'utf8')));
        if (`${slugOf(parsed.request)}.json` !== name) throw new Error(`file name does not match slug ${slugOf(parsed.request)}`);
        result.declared.push(parsed);
      } catch (err) {
        result.broken.push({ file: path.join(this.dir, name), error: messageOf(err) });
      }
    }
    result.declared.sort((a, b) => a.created_at.localeCompare(b.created_at));
    return result;
  }

  /** The directory is made when a save finds it missing (first save, or removed by hand), not before every save. */
  private async create(temp: string): Promise<FileHandle> {
    try {
      return await open(temp, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(this.dir, { recursive: true });
      return open(temp, 'wx', 0o600);
    }
  }

  private fileOf(slug: string): string {
    return path.join(this.dir, `${slug}.json`);
  }

  private async syncDir(): Promise<void> {
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

export function declare(request: CreateRequest, createdAt: Date, sha256: string | null = null): DeclaredProcess {
  return { version: 1, request, created_at: createdAt.toISOString(), source_sha256: sha256 };
}
