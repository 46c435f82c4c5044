import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppCache } from '../src/procfile/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'app-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tree = async (name: string, procfile?: string): Promise<string> => {
  const root = await mkdtemp(path.join(dir, `${name}-`));
  if (procfile !== undefined) await writeFile(path.join(root, 'Procfile'), procfile);
  return root;
};

describe('AppCache', () => {
  it('parses a tree once: later loads share the first result', async () => {
    const cache = new AppCache();
    const root = await tree('a', 'web: echo one\n');
    const first = await cache.load(root);
    // Trees never change in the agent; a change here shows the second load did not read the disk again.
    await writeFile(path.join(root, 'Procfile'), 'web: echo two\n');
    expect(await cache.load(root)).toBe(first);
    expect(first.procfile.get('web')?.command).toBe('echo one');
  });

  it('does not keep a failure: the next load reads the tree again', async () => {
    const cache = new AppCache();
    const root = await tree('b');
    await expect(cache.load(root)).rejects.toMatchObject({ code: 'no_procfile' });
    await writeFile(path.join(root, 'Procfile'), 'worker: echo ok\n');
    expect((await cache.load(root)).procfile.get('worker')?.command).toBe('echo ok');
  });

  it('forgets the least recently used tree beyond its capacity', async () => {
    const cache = new AppCache(2);
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => tree(n, `${n}: echo ${n}\n`)));
    const appA = await cache.load(a!);
    await cache.load(b!);
    expect(await cache.load(a!)).toBe(appA); // a is now the most recent, b the least
    await cache.load(c!);
    await writeFile(path.join(a!, 'Procfile'), 'a: echo changed\n');
    await writeFile(path.join(b!, 'Procfile'), 'b: echo changed\n');
    expect(await cache.load(a!)).toBe(appA);
    expect((await cache.load(b!)).procfile.get('b')?.command).toBe('echo changed');
  });
});
