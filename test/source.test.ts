import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { access, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from '../src/errors.js';
import {
  appRoot,
  DEFAULT_SOURCE_LIMITS,
  SOURCE_ERROR_CODES,
  SourceCache,
  sourceFailureState,
  type Progress,
  type SourceLimits,
} from '../src/source/index.js';
import {
  type ArchiveServer,
  entriesFromDir,
  FIXTURE_APPS,
  gitArchive,
  listTree,
  makeTar,
  makeTarGz,
  makeZip,
  startArchiveServer,
} from './helpers/archives.js';
import { download } from '../src/source/download.js';
import { waitFor } from './helpers/wait.js';

const HELLO = path.join(FIXTURE_APPS, 'hello');

let server: ArchiveServer;
let parent: string;
let dataDir: string;
let tarBytes: Buffer;
let tgzBytes: Buffer;
let zipBytes: Buffer;

beforeAll(async () => {
  server = await startArchiveServer();
  const entries = await entriesFromDir(HELLO);
  tarBytes = await makeTar(entries);
  tgzBytes = await makeTarGz(entries);
  zipBytes = makeZip(entries, { compress: true });
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'source-test-'));
  dataDir = path.join(parent, 'data');
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

const cache = (limits?: Partial<SourceLimits>) => new SourceCache({ dataDir, limits });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function failure(p: Promise<unknown>): Promise<AgentError> {
  const err = await p.then(
    () => {
      throw new Error('expected the fetch to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  return err as AgentError;
}

/** Nothing outside the data dir, and no scratch files left behind. */
async function expectContained(): Promise<void> {
  const top = await readdir(parent);
  expect(top.every((n) => n === 'data')).toBe(true);
  expect((await listTree(parent)).filter((p) => /(^|\/)evil/.test(p))).toEqual([]);
  const tmp = path.join(dataDir, 'tmp');
  const scratch = await readdir(tmp).catch(() => []);
  expect(scratch).toEqual([]);
}

async function expectHelloTree(tree: string): Promise<void> {
  expect(await readFile(path.join(tree, 'Procfile'), 'utf8')).toBe('web: echo hello\ngreet: ./bin/greet\n');
  const greet = await stat(path.join(tree, 'bin', 'greet'));
  expect(greet.mode & 0o111).toBe(0o111);
  expect((await stat(path.join(tree, 'README.txt'))).mode & 0o111).toBe(0);
}

describe('SourceCache: formats', () => {
  for (const [label, type, bytes] of [
    ['tar', 'application/x-tar', () => tarBytes],
    ['tar.gz', 'application/gzip', () => tgzBytes],
    ['tar.gz (x-compressed-tar)', 'application/x-compressed-tar', () => tgzBytes],
    ['zip', 'application/zip', () => zipBytes],
    ['zip (x-zip-compressed)', 'application/x-zip-compressed', () => zipBytes],
  ] as const) {
    it(`unpacks a ${label} served as ${type}`, async () => {
      const body = bytes();
      const url = server.serve(`/typed/${encodeURIComponent(type)}.${label.split(' ')[0]}`, { body, type });
      const phases: string[] = [];
      const progress: Progress[] = [];
      const got = await cache().fetch(url, { onPhase: (p) => phases.push(p), onProgress: (p) => progress.push(p) });
      expect(got.sha256).toBe(sha(body));
      expect(got.tree).toBe(path.join(dataDir, 'trees', sha(body)));
      expect(got.cached).toBe(false);
      expect(phases).toEqual(['downloading', 'unpacking']);
      expect(progress.at(-1)).toEqual({ bytes: body.length, total: body.length });
      await expectHelloTree(got.tree);
      await expectContained();
    });
  }

  for (const [label, bytes] of [
    ['tar', () => tarBytes],
    ['tar.gz', () => tgzBytes],
    ['zip', () => zipBytes],
  ] as const) {
    it(`detects a ${label} by its magic bytes when served as application/octet-stream or untyped`, async () => {
      const typed = await cache().fetch(server.serve(`/octet/${label}`, { body: bytes(), type: 'application/octet-stream' }));
      await expectHelloTree(typed.tree);
      await rm(dataDir, { recursive: true });
      const untyped = await cache().fetch(server.serve(`/untyped/${label}`, { body: bytes() }));
      await expectHelloTree(untyped.tree);
      await expectContained();
    });
  }

  it('trusts unambiguous bytes over a contradicting Content-Type', async () => {
    const got = await cache().fetch(server.serve('/lying', { body: tgzBytes, type: 'application/zip' }));
    await expectHelloTree(got.tree);
  });

  it('treats a magic-less (v7) tar as tar, by Content-Type or by a valid header checksum', async () => {
    const v7 = Buffer.from(tarBytes);
    // Strip ustar magic + version from every header and fix the checksums: what a pre-POSIX tar writes.
    for (let off = 0; off + 512 <= v7.length; ) {
      const block = v7.subarray(off, off + 512);
      if (block.every((b) => b === 0)) break;
      block.fill(0, 257, 265);
      block.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of block) sum += b;
      block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      const size = parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
      off += 512 + Math.ceil(size / 512) * 512;
    }
    expect(v7.toString('latin1', 257, 262)).not.toBe('ustar');
    const typed = await cache().fetch(server.serve('/v7-typed', { body: v7, type: 'application/x-tar' }));
    await expectHelloTree(typed.tree);
    await rm(dataDir, { recursive: true });
    const sniffed = await cache().fetch(server.serve('/v7-octet', { body: v7, type: 'application/octet-stream' }));
    await expectHelloTree(sniffed.tree);
  });

  it('unpacks a GitHub-style tarball (pax global header, single top-level directory)', async () => {
    for (const format of ['tar.gz', 'zip'] as const) {
      const body = await gitArchive(HELLO, 'octo-hello-0123abc', format);
      const got = await cache().fetch(server.serve(`/github.${format}`, { body, type: 'application/x-gzip' }));
      expect(await readdir(got.tree)).toEqual(['octo-hello-0123abc']);
      const root = await appRoot(got.tree);
      expect(root).toBe(path.join(got.tree, 'octo-hello-0123abc'));
      await expectHelloTree(root);
    }
    await expectContained();
  });

  it('appRoot is the tree itself when the Procfile is at the root', async () => {
    const got = await cache().fetch(server.serve('/root-procfile', { body: tarBytes }));
    expect(await appRoot(got.tree)).toBe(got.tree);
  });

  it('refuses unknown and unsupported formats as unpack failures', async () => {
    const garbage = await failure(cache().fetch(server.serve('/garbage', { body: Buffer.from('hello, not an archive\n'.repeat(50)), type: 'application/octet-stream' })));
    expect(garbage.code).toBe('unpack_failed');
    expect(garbage.message).toMatch(/unknown archive format/);
    const bz = await failure(cache().fetch(server.serve('/bz2', { body: Buffer.from('BZh91AY&SY' + 'x'.repeat(600)) })));
    expect(bz.code).toBe('unpack_failed');
    expect(bz.message).toMatch(/unsupported archive format: bzip2/);
    const empty = await failure(cache().fetch(server.serve('/empty', { body: Buffer.alloc(0), type: 'application/gzip' })));
    expect(empty.code).toBe('unpack_failed');
    expect(empty.message).toMatch(/empty/);
    await expectContained();
  });
});

describe('SourceCache: corrupt archives', () => {
  it('a truncated gzip is an unpack failure', async () => {
    const err = await failure(cache().fetch(server.serve('/trunc.tgz', { body: tgzBytes.subarray(0, tgzBytes.length - 40), type: 'application/gzip' })));
    expect(err.code).toBe('unpack_failed');
    expect(err.message).toMatch(/gzip/);
    await expectContained();
  });

  it('garbage inside a gzip stream is an unpack failure', async () => {
    const body = Buffer.from(tgzBytes);
    body.fill(0x55, 20, Math.min(body.length - 10, 200));
    const err = await failure(cache().fetch(server.serve('/garbled.tgz', { body, type: 'application/gzip' })));
    expect(err.code).toBe('unpack_failed');
    await expectContained();
  });

  it('a tar truncated in the middle of a file is an unpack failure', async () => {
    const big = await makeTar([{ name: 'Procfile', content: 'web: x\n' }, { name: 'data.bin', content: Buffer.alloc(20_000, 7) }]);
    const err = await failure(cache().fetch(server.serve('/trunc.tar', { body: big.subarray(0, 512 * 3 + 100), type: 'application/x-tar' })));
    expect(err.code).toBe('unpack_failed');
    expect(err.message).toMatch(/truncated tar/);
    // The same truncation under gzip must fail the same way.
    const gz = await failure(cache().fetch(server.serve('/trunc-inner.tgz', { body: gzipSync(big.subarray(0, 512 * 3 + 100)) })));
    expect(gz.code).toBe('unpack_failed');
    await expectContained();
  });

  it('a tar with a broken header checksum is an unpack failure', async () => {
    const body = Buffer.from(tarBytes);
    body[0] = body[0]! ^ 0xff;
    const err = await failure(cache().fetch(server.serve('/badsum.tar', { body, type: 'application/x-tar' })));
    expect(err.code).toBe('unpack_failed');
    expect(err.message).toMatch(/corrupt tar/);
    await expectContained();
  });

  it('a zip without its central directory is an unpack failure', async () => {
    const err = await failure(cache().fetch(server.serve('/trunc.zip', { body: zipBytes.subarray(0, zipBytes.length - 30), type: 'application/zip' })));
    expect(err.code).toBe('unpack_failed');
    expect(err.message).toMatch(/corrupt zip/);
    await expectContained();
  });

  it('a zip whose stored data does not match its CRC-32 is an unpack failure', async () => {
    const body = makeZip([{ name: 'Procfile', content: 'web: echo hello\n' }], { compress: false });
    body[30 + 'Procfile'.length] = 'X'.charCodeAt(0); // first data byte
    const err = await failure(cache().fetch(server.serve('/badcrc.zip', { body, type: 'application/zip' })));
    expect(err.code).toBe('unpack_failed');
    expect(err.message).toMatch(/CRC-32/);
    await expectContained();
  });

  it('a zip whose deflate data is garbage is an unpack failure', async () => {
    const body = makeZip([{ name: 'Procfile', content: 'web: echo hello\n'.repeat(100) }], { compress: true });
    body.fill(0xff, 30 + 'Procfile'.length, 30 + 'Procfile'.length + 10);
    const err = await failure(cache().fetch(server.serve('/baddeflate.zip', { body, type: 'application/zip' })));
    expect(err.code).toBe('unpack_failed');
    expect(err.message).toMatch(/corrupt zip entry "Procfile"/);
    await expectContained();
  });
});

describe('SourceCache: download failures', () => {
  it('refuses URLs that are not http(s) before touching the network or the disk', async () => {
    for (const url of ['ftp://example.com/a.tar', 'file:///etc/passwd', 'not a url', '', 'http://']) {
      const err = await failure(cache().fetch(url));
      expect(err.code).toBe('source_url_invalid');
      expect(sourceFailureState(err.code)).toBe('download failure');
    }
    expect(await readdir(parent)).toEqual([]);
  });

  it('a 404 is a download failure naming the status', async () => {
    const err = await failure(cache().fetch(server.url('/nope.tar')));
    expect(err.code).toBe('download_failed');
    expect(err.message).toBe(`GET ${server.url('/nope.tar')} answered 404 Not Found`);
    await expectContained();
  });

  it('a 500 with a body is a download failure, and the body is not kept', async () => {
    const url = server.serve('/boom', { body: Buffer.alloc(100_000, 1), status: 500, type: 'application/gzip' });
    const err = await failure(cache().fetch(url));
    expect(err.message).toMatch(/answered 500 Internal Server Error/);
    await expectContained();
  });

  it('does not leak URL credentials into messages', async () => {
    const url = server.url('/secret.tar').replace('http://', 'http://user:hunter2@');
    const err = await failure(cache().fetch(url));
    expect(err.code).toBe('download_failed');
    expect(err.message).not.toContain('hunter2');
  });

  it('an unreachable host is a download failure naming the cause', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const err = await failure(cache().fetch(`http://127.0.0.1:${port}/app.tar`));
    expect(err.code).toBe('download_failed');
    expect(err.message).toBe(`could not connect to 127.0.0.1:${port}: ECONNREFUSED`);
    expect(sourceFailureState(err.code)).toBe('download failure');
    await expectContained();
  });

  it('an unresolvable host is a download failure naming DNS', async () => {
    const err = await failure(cache().fetch('http://no-such-host.invalid/app.tar'));
    expect(err.code).toBe('download_failed');
    expect(err.message).toMatch(/could not resolve host no-such-host\.invalid: (ENOTFOUND|EAI_AGAIN)/);
  });

  it('refuses a download whose Content-Length exceeds the cap before reading it', async () => {
    const err = await failure(cache({ maxDownloadBytes: 1000 }).fetch(server.serve('/big', { body: Buffer.alloc(5000), type: 'application/x-tar' })));
    expect(err.code).toBe('download_too_large');
    expect(sourceFailureState(err.code)).toBe('download failure');
    await expectContained();
  });

  it('stops a chunked download as soon as it passes the cap', async () => {
    let written = 0;
    let closed = false;
    server.serve('/endless', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar' });
      const chunk = Buffer.alloc(16 * 1024);
      const timer = setInterval(() => {
        if (res.destroyed || written > 50 * 1024 * 1024) {
          clearInterval(timer);
          closed = res.destroyed;
          res.destroy();
          return;
        }
        written += chunk.length;
        res.write(chunk);
      }, 1);
      res.on('close', () => {
        clearInterval(timer);
        closed = true;
      });
    });
    const err = await failure(cache({ maxDownloadBytes: 100_000 }).fetch(server.url('/endless')));
    expect(err.code).toBe('download_too_large');
    await expect.poll(() => closed).toBe(true);
    expect(written).toBeLessThan(5 * 1024 * 1024);
    await expectContained();
  });

  it('a redirect loop is a download failure; a short redirect chain is followed', async () => {
    server.serve('/loop', (_req, res) => res.writeHead(302, { location: '/loop' }).end());
    const err = await failure(cache().fetch(server.url('/loop')));
    expect(err.code).toBe('download_failed');
    expect(err.message).toMatch(/redirect/i);

    server.serve('/hop1', (_req, res) => res.writeHead(301, { location: '/hop2' }).end());
    server.serve('/hop2', (_req, res) => res.writeHead(307, { location: '/hop-target.tar' }).end());
    server.serve('/hop-target.tar', { body: tarBytes, type: 'application/x-tar' });
    const ok = await cache().fetch(server.url('/hop1'));
    await expectHelloTree(ok.tree);

    const limited = await failure(cache({ maxRedirects: 1 }).fetch(server.url('/hop1')));
    expect(limited.code).toBe('download_failed');
    await expectContained();
  });

  it('a download that exceeds the total time budget is a download timeout', async () => {
    server.serve('/slow', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': '100000' });
      const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(Buffer.alloc(10))), 50);
      res.on('close', () => clearInterval(timer));
    });
    const err = await failure(cache({ downloadTimeoutMs: 600 }).fetch(server.url('/slow')));
    expect(err.code).toBe('download_timeout');
    expect(sourceFailureState(err.code)).toBe('download failure');
    await expectContained();
  });

  it('a stalled server trips the idle timeout', async () => {
    server.serve('/stall', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': '100000' });
      res.write(Buffer.alloc(10));
    });
    const err = await failure(cache({ downloadTimeoutMs: 400 }).fetch(server.url('/stall')));
    expect(err.code).toBe('download_timeout');
    await expectContained();
  });

  it('a connection cut mid-body is a download failure', async () => {
    server.serve('/cut', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': '100000' });
      res.write(Buffer.alloc(1000), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const err = await failure(cache().fetch(server.url('/cut')));
    expect(err.code).toBe('download_failed');
    await expectContained();
  });

  it('an AbortSignal aborts the download and cleans up', async () => {
    server.serve('/abortable', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': '1000000' });
      res.write(Buffer.alloc(5000));
    });
    const ac = new AbortController();
    const err = await failure(
      cache().fetch(server.url('/abortable'), {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.bytes > 0) ac.abort();
        },
      }),
    );
    expect(err.code).toBe('aborted');
    expect(sourceFailureState(err.code)).toBeNull();
    await expectContained();

    const pre = new AbortController();
    pre.abort();
    expect((await failure(cache().fetch(server.url('/abortable'), { signal: pre.signal }))).code).toBe('aborted');
  });

  it('an AbortSignal aborts during unpacking and cleans up', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => ({ name: `f/${i}.txt`, content: `file ${i}\n` }));
    const url = server.serve('/many.tar', { body: await makeTar(many), type: 'application/x-tar' });
    const ac = new AbortController();
    const err = await failure(cache().fetch(url, { signal: ac.signal, onPhase: (p) => p === 'unpacking' && ac.abort() }));
    expect(err.code).toBe('aborted');
    await expectContained();
    expect(await readdir(path.join(dataDir, 'trees'))).toEqual([]);
  });
});

describe('SourceCache: cache', () => {
  it('a second fetch of the same bytes reuses the tree, even from another URL', async () => {
    const c = cache();
    const a = await c.fetch(server.serve('/cache-a.tgz', { body: tgzBytes, type: 'application/gzip' }));
    const b = await c.fetch(server.url('/cache-a.tgz'));
    const other = await new SourceCache({ dataDir }).fetch(server.serve('/cache-b.tgz', { body: tgzBytes }));
    expect(a.cached).toBe(false);
    expect(b).toEqual({ sha256: a.sha256, tree: a.tree, cached: true });
    expect(other).toEqual({ sha256: a.sha256, tree: a.tree, cached: true });
    expect(await readdir(path.join(dataDir, 'trees'))).toEqual([a.sha256]);
    expect(await c.lookup(a.sha256)).toBe(a.tree);
    expect(await c.lookup('0'.repeat(64))).toBeNull();
    await expectContained();
  });

  it('concurrent fetches of the same archive share one extraction and one tree', async () => {
    const many = Array.from({ length: 1500 }, (_, i) => ({ name: `app/f${i}.txt`, content: `file ${i}\n` }));
    const body = await makeTarGz([{ name: 'Procfile', content: 'web: echo hi\n' }, ...many]);
    const url = server.serve('/shared.tgz', { body, type: 'application/gzip' });
    const c = cache();
    const results = await Promise.all([c.fetch(url), c.fetch(url), c.fetch(url), c.fetch(url)]);
    expect(new Set(results.map((r) => r.tree)).size).toBe(1);
    expect(results.filter((r) => !r.cached)).toHaveLength(1);
    expect(await readdir(path.join(dataDir, 'trees'))).toEqual([sha(body)]);
    expect((await readdir(path.join(results[0]!.tree, 'app'))).length).toBe(1500);
    await expectContained();
  });

  it('one waiter aborting does not cancel an extraction another fetch still waits for', async () => {
    const many = Array.from({ length: 2000 }, (_, i) => ({ name: `g/${i}`, content: 'x' }));
    const url = server.serve('/shared2.tar', { body: await makeTar(many), type: 'application/x-tar' });
    const c = cache();
    const ac = new AbortController();
    let unpacking = 0;
    const onPhase = (p: string) => {
      if (p === 'unpacking' && ++unpacking === 2) ac.abort();
    };
    const [quitter, stayer] = await Promise.allSettled([c.fetch(url, { signal: ac.signal, onPhase }), c.fetch(url, { onPhase })]);
    if (stayer.status === 'rejected') throw stayer.reason;
    if (stayer.status === 'fulfilled') expect((await readdir(path.join(stayer.value.tree, 'g'))).length).toBe(2000);
    // The quitter either left the shared extraction (aborted) or had already got the finished tree.
    if (quitter.status === 'rejected') expect((quitter.reason as AgentError).code).toBe('aborted');
    await expectContained();
  });

  it('overlapping fetches of one URL share one download; a later fetch downloads again', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    server.serve('/coalesce.tgz', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': String(tgzBytes.length) });
      // Held back until every fetch below has joined, so they surely overlap.
      void gate.then(() => res.end(tgzBytes));
    });
    const c = cache();
    const phases: string[][] = [[], [], []];
    const progress: Progress[] = [];
    const fetches = phases.map((seen, i) =>
      c.fetch(server.url('/coalesce.tgz'), { onPhase: (p) => seen.push(p), onProgress: i === 2 ? (p) => progress.push(p) : undefined }),
    );
    await waitFor(() => server.hits('/coalesce.tgz') === 1, { what: 'the one request' });
    release();
    const results = await Promise.all(fetches);
    expect(server.hits('/coalesce.tgz')).toBe(1);
    expect(new Set(results.map((r) => r.tree)).size).toBe(1);
    expect(results.map((r) => r.cached)).toEqual([false, true, true]);
    for (const seen of phases) expect(seen).toEqual(['downloading', 'unpacking']);
    expect(progress.at(-1)).toEqual({ bytes: tgzBytes.length, total: tgzBytes.length });

    await c.fetch(server.url('/coalesce.tgz'));
    expect(server.hits('/coalesce.tgz')).toBe(2);
    await expectContained();
  });

  it('a shared download goes on while one fetch stays, and stops when the last one aborts', async () => {
    server.serve('/slow-shared', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar' });
      res.write(tarBytes.subarray(0, 512));
      // Never finished: only an abort ends these fetches.
    });
    const c = cache();
    const first = new AbortController();
    const second = new AbortController();
    const a = failure(c.fetch(server.url('/slow-shared'), { signal: first.signal }));
    const b = failure(c.fetch(server.url('/slow-shared'), { signal: second.signal }));
    await waitFor(() => server.hits('/slow-shared') === 1, { what: 'the one request' });
    first.abort();
    expect((await a).code).toBe('aborted');
    // The other fetch still holds the download: a third joins it instead of sending a second request.
    const third = new AbortController();
    const c3 = failure(c.fetch(server.url('/slow-shared'), { signal: third.signal }));
    second.abort();
    third.abort();
    expect((await b).code).toBe('aborted');
    expect((await c3).code).toBe('aborted');
    expect(server.hits('/slow-shared')).toBe(1);
    await expectContained();
  });

  it('unpacks a tar while it downloads: an archive refused by its first entry fails before the download ends', async () => {
    const tarball = await makeTar([
      { name: '../evil.txt', content: 'x' },
      { name: 'Procfile', content: 'web: echo hi\n' },
    ]);
    server.serve('/refused-early.tar', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': String(tarball.length + 1_000_000) });
      // The first entry, then nothing more: the rest of the "archive" never comes.
      res.write(tarball.subarray(0, 1024));
    });
    const err = await failure(cache().fetch(server.url('/refused-early.tar')));
    expect(err.code).toBe('unpack_refused_entry');
    expect(err.message).toMatch(/evil/);
    await expectContained();
  });

  it('a tree unpacked while downloading is the same as one unpacked from the file', async () => {
    const many = Array.from({ length: 300 }, (_, i) => ({ name: `app/d${i % 7}/f${i}.txt`, content: `file ${i}\n`.repeat(i) }));
    const body = await makeTarGz([{ name: 'app/Procfile', content: 'web: echo hi\n' }, ...many]);
    const streamed = await cache().fetch(server.serve('/streamed.tgz', { body, type: 'application/gzip' }));
    // A zip of the same entries has no streaming path: compare both trees entry for entry.
    const zipped = await new SourceCache({ dataDir: path.join(parent, 'data', 'other') }).fetch(
      server.serve('/same.zip', { body: makeZip([{ name: 'app/Procfile', content: 'web: echo hi\n' }, ...many]), type: 'application/zip' }),
    );
    expect(await listTree(streamed.tree)).toEqual(await listTree(zipped.tree));
    expect(await readFile(path.join(streamed.tree, 'app/d3/f150.txt'), 'utf8')).toBe('file 150\n'.repeat(150));
  });

  it('download with sinkOnly: the sink and the hash get every byte, the file only those before it said so', async () => {
    const body = Buffer.concat(Array.from({ length: 64 }, (_, i) => Buffer.alloc(16 * 1024, i)));
    const url = server.serve('/sink-only.bin', { body });
    const seen: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        seen.push(chunk);
        done();
      },
    });
    const tmp = path.join(parent, 'tmp');
    await mkdir(tmp);
    const got = await download(new URL(url), tmp, DEFAULT_SOURCE_LIMITS, { sink, sinkOnly: () => seen.length > 0 });
    expect(Buffer.concat(seen).equals(body)).toBe(true);
    expect(got.sha256).toBe(sha(body));
    expect(got.bytes).toBe(body.length);
    const kept = await readFile(got.file);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(body.length);
    expect(kept.equals(body.subarray(0, kept.length))).toBe(true);
  });

  it('sweepTemp removes scratch files a crashed agent left behind', async () => {
    const c = cache();
    await c.fetch(server.serve('/sweep.tar', { body: tarBytes }));
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(path.join(dataDir, 'tmp', 'unpack-stale', 'x'), { recursive: true });
    await writeFile(path.join(dataDir, 'tmp', 'download-stale'), 'x');
    expect(await c.sweepTemp()).toBe(2);
    await expectContained();
  });
});

describe('source module contract', () => {
  it('maps every code to a failure state', () => {
    expect(SOURCE_ERROR_CODES.map((c) => [c, sourceFailureState(c)])).toEqual([
      ['source_url_invalid', 'download failure'],
      ['download_failed', 'download failure'],
      ['download_too_large', 'download failure'],
      ['download_timeout', 'download failure'],
      ['unpack_failed', 'unpack failure'],
      ['unpack_refused_entry', 'unpack failure'],
      ['unpack_too_large', 'unpack failure'],
      ['unpack_too_many_entries', 'unpack failure'],
      ['aborted', null],
    ]);
    expect(sourceFailureState('something_else')).toBeNull();
  });

  it('has the documented defaults and refuses nonsense limits', () => {
    expect(DEFAULT_SOURCE_LIMITS).toEqual({
      maxDownloadBytes: 1024 ** 3,
      maxUnpackedBytes: 4 * 1024 ** 3,
      maxEntries: 100_000,
      maxPathLength: 1024,
      downloadTimeoutMs: 600_000,
      maxRedirects: 5,
    });
    expect(() => new SourceCache({ dataDir: 'x', limits: { maxEntries: 0 } })).toThrow(RangeError);
    expect(() => new SourceCache({ dataDir: 'x', limits: { maxDownloadBytes: Number.NaN } })).toThrow(RangeError);
  });

  it('keeps internal symlinks of a fixture intact (readlink unchanged)', async () => {
    const body = await makeTar([
      { name: 'lib/', type: 'directory' },
      { name: 'lib/run.sh', content: '#!/bin/sh\necho run\n', mode: 0o755 },
      { name: 'bin/', type: 'directory' },
      { name: 'bin/run', type: 'symlink', linkname: '../lib/run.sh' },
    ]);
    const got = await cache().fetch(server.serve('/links.tar', { body }));
    expect(await readlink(path.join(got.tree, 'bin', 'run'))).toBe('../lib/run.sh');
    await access(path.join(got.tree, 'bin', 'run'));
  });
});
