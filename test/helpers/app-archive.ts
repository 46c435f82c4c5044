import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './agent.js';

const run = promisify(execFile);

/**
 * A real archive of fixtures/apps/<name>, made by the system tar / zip. `topDir` wraps the app in one
 * directory the way GitHub tarballs do.
 */
export async function appArchive(name: string, format: 'tar' | 'tar.gz' | 'zip', options: { topDir?: string } = {}): Promise<Buffer> {
  const stage = await mkdtemp(path.join(os.tmpdir(), 'pa-archive-'));
  try {
    const appDir = path.join(stage, options.topDir ?? 'app');
    await cp(path.join(ROOT, 'fixtures/apps', name), appDir, { recursive: true });
    const cwd = options.topDir ? stage : appDir;
    const what = options.topDir ? [options.topDir] : ['.'];
    const maxBuffer = 256 * 1024 * 1024;
    if (format === 'zip') {
      return (await run('zip', ['-qry', '-', ...what], { cwd, encoding: 'buffer', maxBuffer })).stdout;
    }
    const flags = format === 'tar.gz' ? '-czf' : '-cf';
    return (await run('tar', [flags, '-', ...what], { cwd, encoding: 'buffer', maxBuffer })).stdout;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
