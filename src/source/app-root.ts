import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

// Finder-made zips carry this beside the real content; it never holds the app.
const IGNORED_TOP_LEVEL = new Set(['__MACOSX']);

/**
 * Where the app lives inside an unpacked tree (DESIGN §3): the root if it has a Procfile, else the single
 * top-level directory (GitHub tarballs wrap everything in `owner-repo-sha/`), else the root.
 */
export async function appRoot(tree: string): Promise<string> {
  if (await exists(path.join(tree, 'Procfile'))) return tree;
  const entries = (await readdir(tree, { withFileTypes: true })).filter((e) => !IGNORED_TOP_LEVEL.has(e.name));
  const only = entries.length === 1 ? entries[0] : undefined;
  // A symlinked top-level directory is not followed: the app root must be a real directory inside the tree.
  if (only?.isDirectory()) return path.join(tree, only.name);
  return tree;
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}
