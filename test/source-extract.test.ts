/**
 * Hostile and oversized archives. Every refusal must fail the whole archive, leave nothing outside the data dir
 * and no scratch files inside it.
 */
import { lstat, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from '../src/errors.js';
import { SourceCache, sourceFailureState, type SourceLimits } from '../src/source/index.js';
import { type ArchiveEntry, type ArchiveServer, listTree, makeTar, makeTarGz, makeZip, startArchiveServer } from './helpers/archives.js';

let server: ArchiveServer;
let parent: string;
let dataDir: string;
let n = 0;

beforeAll(async () => {
  server = await startArchiveServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'source-extract-'));
  dataDir = path.join(parent, 'data');
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

type Kind = 'tar' | 'tar.gz' | 'zip';

async function build(kind: Kind, entries: ArchiveEntry[]): Promise<Buffer> {
  if (kind === 'zip') return makeZip(entries, { compress: true });
  return kind === 'tar' ? makeTar(entries) : makeTarGz(entries);
}

async function fetchArchive(kind: Kind, entries: ArchiveEntry[] | Buffer, limits?: Partial<SourceLimits>) {
  const body = Buffer.isBuffer(entries) ? entries : await build(kind, entries);
  const url = server.serve(`/a${++n}.${kind}`, { body, type: 'application/octet-stream' });
  return new SourceCache({ dataDir, limits }).fetch(url);
}

async function refusal(kind: Kind, entries: ArchiveEntry[] | Buffer, limits?: Partial<SourceLimits>): Promise<AgentError> {
  const err = await fetchArchive(kind, entries, limits).then(
    () => {
      throw new Error('expected the archive to be refused');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  expect(sourceFailureState((err as AgentError).code)).toBe('unpack failure');
  await expectContained();
  return err as AgentError;
}

async function expectContained(): Promise<void> {
  expect(await readdir(parent)).toEqual(['data']);
  expect((await listTree(parent)).filter((p) => /(^|\/)evil/.test(p))).toEqual([]);
  expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([]);
  expect(await readdir(path.join(dataDir, 'trees'))).toEqual([]);
  for (const outside of [path.join(parent, '..', 'evil'), path.join(parent, '..', '..', 'evil'), '/evil', '/tmp/evil']) {
    await expect(lstat(outside)).rejects.toThrow();
  }
}

const PROCFILE: ArchiveEntry = { name: 'Procfile', content: 'web: echo hello\n' };

describe.each(['tar', 'tar.gz', 'zip'] as const)('%s: refused entries', (kind) => {
  it("refuses a '..' entry", async () => {
    const err = await refusal(kind, [PROCFILE, { name: '../evil', content: 'x' }]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toBe(`archive entry "../evil" refused: path has a '..' component`);
  });

  it("refuses a '..' hidden in the middle of a path", async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'a/b/../../../evil', content: 'x' }]);
    expect(err.code).toBe('unpack_refused_entry');
  });

  it('refuses an absolute entry', async () => {
    const err = await refusal(kind, [PROCFILE, { name: '/tmp/evil', content: 'x' }]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/"\/tmp\/evil" refused: absolute path/);
  });

  it('refuses a backslash in a name', async () => {
    const err = await refusal(kind, [PROCFILE, { name: '..\\evil', content: 'x' }]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/backslash/);
  });

  it('refuses a NUL byte in a name', async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'evil\0.txt', content: 'x', pax: true }]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/NUL/);
  });

  it('refuses a name longer than maxPathLength', async () => {
    const err = await refusal(kind, [PROCFILE, { name: `${'d/'.repeat(40)}evil`, content: 'x' }], { maxPathLength: 64 });
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/longer than 64 bytes/);
  });

  it('refuses a symlink escaping the tree (link -> ../../etc)', async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'link', type: 'symlink', linkname: '../../etc' }]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/"link" refused: symlink target "..\/..\/etc" resolves outside the tree/);
  });

  it('refuses a symlink one level too high from a subdirectory', async () => {
    const err = await refusal(kind, [{ name: 'a/b/', type: 'directory' }, { name: 'a/b/up', type: 'symlink', linkname: '../../../evil' }]);
    expect(err.code).toBe('unpack_refused_entry');
  });

  it('refuses an absolute symlink target', async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'passwd', type: 'symlink', linkname: '/etc/passwd' }]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/absolute/);
  });

  it('refuses a write through a symlink (dir -> .. then dir/evil)', async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'dir', type: 'symlink', linkname: '..' }, { name: 'dir/evil', content: 'x' }]);
    expect(err.code).toBe('unpack_refused_entry');
  });

  it('refuses a write through an inside symlink (sub/up -> .. then sub/up/evil)', async () => {
    const err = await refusal(kind, [
      { name: 'sub/', type: 'directory' },
      { name: 'sub/up', type: 'symlink', linkname: '..' },
      { name: 'sub/up/evil', content: 'x' },
    ]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/written through the symlink "sub\/up"/);
  });

  it("refuses a symlink chain that climbs out through an earlier link (a/../..)", async () => {
    // sub/a -> .. is the root (inside); x -> sub/a/../.. looks like the root lexically, but really is the
    // root's parent's parent.
    const err = await refusal(kind, [
      { name: 'sub/', type: 'directory' },
      { name: 'sub/a', type: 'symlink', linkname: '..' },
      { name: 'x', type: 'symlink', linkname: 'sub/a/../..' },
    ]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/'\.\.' after a name/);
  });

  it('refuses a FIFO', async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'evil-fifo', type: 'fifo' }]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/FIFO/);
  });

  it('refuses a character device', async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'evil-null', type: 'character-device' }]);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/device/);
  });

  it('refuses a file nested under a file', async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'Procfile/evil', content: 'x' }]);
    expect(err.code).toBe('unpack_refused_entry');
  });

  it('enforces the entry-count cap', async () => {
    const entries = Array.from({ length: 30 }, (_, i) => ({ name: `f${i}`, content: 'x' }));
    const err = await refusal(kind, entries, { maxEntries: 10 });
    expect(err.code).toBe('unpack_too_many_entries');
    expect(err.message).toBe('archive has more than 10 entries');
  });

  it('enforces the unpacked-size cap against a compression bomb', async () => {
    const err = await refusal(kind, [PROCFILE, { name: 'bomb', content: Buffer.alloc(8 * 1024 * 1024) }], { maxUnpackedBytes: 1024 * 1024 });
    expect(err.code).toBe('unpack_too_large');
    expect(err.message).toBe('archive unpacks to more than 1048576 bytes');
  });

  it('enforces the unpacked-size cap across many files', async () => {
    const entries = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, content: Buffer.alloc(100_000, 1) }));
    const err = await refusal(kind, entries, { maxUnpackedBytes: 1_000_000 });
    expect(err.code).toBe('unpack_too_large');
  });

  it('keeps executable bits and drops setuid/setgid/sticky and group/other write', async () => {
    const got = await fetchArchive(kind, [
      { name: 'run', content: '#!/bin/sh\n', mode: 0o6755 },
      { name: 'open', content: 'x', mode: 0o777 },
      { name: 'plain', content: 'x', mode: 0o644 },
      { name: 'private', content: 'x', mode: 0o600 },
      { name: 'sticky/', type: 'directory', mode: 0o1777 },
    ]);
    const mode = async (p: string) => (await stat(path.join(got.tree, p))).mode & 0o7777;
    expect(await mode('run')).toBe(0o755);
    expect(await mode('open')).toBe(0o755);
    expect(await mode('plain')).toBe(0o644);
    expect(await mode('private')).toBe(0o600);
    expect(await mode('sticky')).toBe(0o755);
    expect(await mode('.')).toBe(0o755);
  });

  it('accepts symlinks that stay inside, including dangling ones and ./ prefixes', async () => {
    const got = await fetchArchive(kind, [
      { name: './', type: 'directory' },
      { name: './lib/', type: 'directory' },
      { name: './lib/run.sh', content: 'echo run\n', mode: 0o755 },
      { name: './bin/run', type: 'symlink', linkname: '../lib/run.sh' },
      { name: './bin/self', type: 'symlink', linkname: '..' },
      { name: './dangling', type: 'symlink', linkname: 'not/there' },
      { name: './here', type: 'symlink', linkname: './lib' },
    ]);
    expect(await readlink(path.join(got.tree, 'bin/run'))).toBe('../lib/run.sh');
    expect(await readFile(path.join(got.tree, 'bin/run'), 'utf8')).toBe('echo run\n');
    expect(await readlink(path.join(got.tree, 'dangling'))).toBe('not/there');
    expect(await readdir(path.join(got.tree, 'here'))).toEqual(['run.sh']);
  });

  it('a later entry replaces an earlier file or symlink of the same name, without writing through the link', async () => {
    const got = await fetchArchive(kind, [
      { name: 'target', content: 'original\n' },
      { name: 'x', type: 'symlink', linkname: 'target' },
      { name: 'x', content: 'replaced\n' },
      { name: 'dup', content: 'one\n' },
      { name: 'dup', content: 'two\n' },
    ]);
    expect(await readFile(path.join(got.tree, 'target'), 'utf8')).toBe('original\n');
    expect((await lstat(path.join(got.tree, 'x'))).isFile()).toBe(true);
    expect(await readFile(path.join(got.tree, 'x'), 'utf8')).toBe('replaced\n');
    expect(await readFile(path.join(got.tree, 'dup'), 'utf8')).toBe('two\n');
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([]);
  });
});

describe('tar-only entries', () => {
  for (const kind of ['tar', 'tar.gz'] as const) {
    it(`${kind}: refuses hardlinks out of the tree or to non-files`, async () => {
      const cases: [ArchiveEntry[], RegExp][] = [
        [[PROCFILE, { name: 'evil', type: 'link', linkname: '../../etc/passwd' }], /not a relative path inside the tree/],
        [[PROCFILE, { name: 'evil', type: 'link', linkname: '/etc/passwd' }], /not a relative path inside the tree/],
        [[PROCFILE, { name: 'evil', type: 'link', linkname: 'missing' }], /not a regular file extracted earlier/],
        [
          [PROCFILE, { name: 'ln', type: 'symlink', linkname: 'Procfile' }, { name: 'evil', type: 'link', linkname: 'ln' }],
          /not a regular file extracted earlier/,
        ],
        [[{ name: 'd/', type: 'directory' }, { name: 'evil', type: 'link', linkname: 'd' }], /not a regular file extracted earlier/],
      ];
      for (const [entries, message] of cases) {
        const err = await refusal(kind, entries);
        expect(err.code).toBe('unpack_refused_entry');
        expect(err.message).toMatch(message);
      }
    });

    it(`${kind}: accepts a hardlink to an earlier file`, async () => {
      const got = await fetchArchive(kind, [PROCFILE, { name: 'copy', type: 'link', linkname: 'Procfile' }]);
      expect(await readFile(path.join(got.tree, 'copy'), 'utf8')).toBe('web: echo hello\n');
    });

    it(`${kind}: refuses a block device`, async () => {
      const err = await refusal(kind, [PROCFILE, { name: 'evil-sda', type: 'block-device' }]);
      expect(err.code).toBe('unpack_refused_entry');
    });
  }

  it('refuses a tar entry of an unknown type', async () => {
    const tarBytes = await makeTar([PROCFILE, { name: 'evil-sparse', content: 'x' }]);
    // Re-type the second header as GNU sparse ('S') and fix its checksum.
    const header = tarBytes.subarray(1024, 1536);
    header[156] = 'S'.charCodeAt(0);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const err = await refusal('tar', tarBytes);
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/unsupported tar entry type/);
  });

  it('refuses a tar bomb declared by its header before writing it', async () => {
    const err = await refusal('tar.gz', gzipSync(await makeTar([PROCFILE, { name: 'bomb', content: Buffer.alloc(3 * 1024 * 1024) }])), {
      maxUnpackedBytes: 1024 * 1024,
    });
    expect(err.code).toBe('unpack_too_large');
  });
});

describe('zip-only entries', () => {
  it('refuses a zip whose entry count in the directory is over the cap, before extracting', async () => {
    const err = await refusal('zip', makeZip(Array.from({ length: 50 }, (_, i) => ({ name: `e${i}`, content: '' }))), { maxEntries: 5 });
    expect(err.code).toBe('unpack_too_many_entries');
  });

  it('refuses socket and unknown file types in unix modes', async () => {
    for (const zipUnixMode of [0o140644, 0o060644]) {
      const err = await refusal('zip', makeZip([PROCFILE, { name: 'evil', content: '', zipUnixMode }]));
      expect(err.code).toBe('unpack_refused_entry');
    }
  });

  it('unpacks zips without unix modes (made on DOS/Windows) with default modes', async () => {
    const body = makeZip([{ name: 'dir/', type: 'directory' }, { name: 'dir/Procfile', content: 'web: x\n' }]);
    // Rewrite "version made by" to host 0 (MS-DOS) in both central directory entries; attributes become DOS ones.
    for (let i = body.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); i !== -1; i = body.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), i + 4)) {
      body.writeUInt16LE(20, i + 4);
      body.writeUInt32LE(body.readUInt32LE(i + 38) & 0xffff, i + 38);
    }
    const got = await fetchArchive('zip', body);
    expect((await stat(path.join(got.tree, 'dir'))).isDirectory()).toBe(true);
    expect((await stat(path.join(got.tree, 'dir/Procfile'))).mode & 0o777).toBe(0o644);
  });
});
