import path from 'node:path';
import { entriesFromDir, FIXTURE_APPS, makeTar, makeTarGz, makeZip } from './archives.js';

/**
 * A real archive of fixtures/apps/<name>. `topDir` wraps the app in one directory the way GitHub tarballs do.
 */
export async function appArchive(name: string, format: 'tar' | 'tar.gz' | 'zip', options: { topDir?: string } = {}): Promise<Buffer> {
  const entries = await entriesFromDir(path.join(FIXTURE_APPS, name), options.topDir ?? '');
  if (format === 'zip') return makeZip(entries);
  return format === 'tar' ? makeTar(entries) : makeTarGz(entries);
}
