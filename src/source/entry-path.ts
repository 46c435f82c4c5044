import type { AgentError } from '../errors.js';
import { sourceError } from './errors.js';

export function refused(entry: string, rule: string): AgentError {
  return sourceError('unpack_refused_entry', `archive entry ${JSON.stringify(entry)} refused: ${rule}`);
}

function checkCharacters(entry: string, value: string, what: string, maxPathLength: number): void {
  if (Buffer.byteLength(value) > maxPathLength) throw refused(entry, `${what} is longer than ${maxPathLength} bytes`);
  if (value.includes('\0')) throw refused(entry, `${what} contains a NUL byte`);
  // Refused rather than translated: a backslash is a separator on Windows and a name character here, and an archive
  // that means one while we read the other could place files where nobody expects them.
  if (value.includes('\\')) throw refused(entry, `${what} contains a backslash`);
}

/**
 * The path components of an entry name, relative to the tree root. `.` and empty components are dropped (tar's
 * `./app/` prefix, trailing `/` of directories); an empty result means the root itself.
 */
export function entryComponents(name: string, maxPathLength: number): string[] {
  checkCharacters(name, name, 'name', maxPathLength);
  if (name.startsWith('/')) throw refused(name, 'absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refused(name, "path has a '..' component");
  return parts;
}

/**
 * Refuses a symlink whose target could resolve outside the tree. The rule is deliberately lexical and strict:
 * only leading `..` components are allowed, and never more of them than the link is deep. Climbing from the link's
 * own directory is then exact, because every directory we create is a real directory (never a symlink). After the
 * climb the target only descends, so even if it passes through other symlinks, each of those was held to this same
 * rule and stays inside too. A target like `a/../b` is refused: if `a` is (or later becomes) a symlink, `..` climbs
 * from wherever `a` points, which lexical reasoning cannot see.
 */
export function checkSymlinkTarget(entry: string, linkParts: string[], target: string, maxPathLength: number): void {
  if (target === '') throw refused(entry, 'symlink has an empty target');
  checkCharacters(entry, target, 'symlink target', maxPathLength);
  if (target.startsWith('/')) throw refused(entry, `symlink target ${JSON.stringify(target)} is absolute, so it points outside the tree`);
  const parts = target.split('/').filter((p) => p !== '' && p !== '.');
  let up = 0;
  while (up < parts.length && parts[up] === '..') up++;
  if (parts.slice(up).includes('..')) {
    throw refused(entry, `symlink target ${JSON.stringify(target)} has '..' after a name, which could climb out through another symlink`);
  }
  const depth = linkParts.length - 1;
  if (up > depth) throw refused(entry, `symlink target ${JSON.stringify(target)} resolves outside the tree`);
}
