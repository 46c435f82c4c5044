/**
 * Builds real tar / tar.gz / zip archives (including hostile ones) and serves them over loopback HTTP, so source
 * tests exercise the same bytes and sockets a real `source_url` would.
 */
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cp, lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export const FIXTURE_APPS = fileURLToPath(new URL('../../fixtures/apps/', import.meta.url));

export type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';

export interface ArchiveEntry {
  /** Written verbatim (hostile names welcome). Directories get no automatic trailing slash in tar. */
  name: string;
  type?: EntryType;
  content?: string | Buffer;
  mode?: number;
  /** Symlink target, or (tar only) hardlink target path. */
  linkname?: string;
  /** tar: force a PAX header, so names with NUL bytes survive into the archive. */
  pax?: boolean;
  /** zip: raw Unix st_mode for the external attributes, overriding the one derived from `type`/`mode`. */
  zipUnixMode?: number;
}

/** A tar built by tar-stream, which writes any name, type and link target it is given. */
export async function makeTar(entries: ArchiveEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(1_700_000_000_000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.pax ? { pax: {} } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, toBuffer(e.content ?? ''), done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

export async function makeTarGz(entries: ArchiveEntry[]): Promise<Buffer> {
  return gzipSync(await makeTar(entries));
}

const S_IF: Record<EntryType, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  link: 0o100000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

/**
 * A minimal zip writer (no zip64, no encryption): local headers + data + central directory + end record, with
 * Unix modes in the external attributes the way Info-ZIP writes them, so symlinks and devices can be expressed.
 */
export function makeZip(entries: ArchiveEntry[], opts: { compress?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const type = e.type ?? 'file';
    const name = Buffer.from(e.name, 'utf8');
    const data = type === 'symlink' ? Buffer.from(e.linkname ?? '', 'utf8') : type === 'file' ? toBuffer(e.content ?? '') : Buffer.alloc(0);
    const perms = e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644);
    const unixMode = e.zipUnixMode ?? (S_IF[type] | perms);
    const method = opts.compress && type === 'file' && data.length > 0 ? 8 : 0;
    const stored = method === 8 ? deflateRawSync(data) : data;
    const crc = crc32(data) >>> 0;
    const flags = /[^\x00-\x7f]/.test(e.name) ? 0x800 : 0;
    const dosDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01
    const external = ((unixMode << 16) | (type === 'directory' ? 0x10 : 0)) >>> 0;

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);

    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(flags, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt16LE(0, 12);
    cd.writeUInt16LE(dosDate, 14);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(stored.length, 20);
    cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(external, 38);
    cd.writeUInt32LE(offset, 42);

    parts.push(local, name, stored);
    central.push(cd, name);
    offset += local.length + name.length + stored.length;
  }
  const cdBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBuf, end]);
}

/** Entries for a directory on disk (modes and symlinks kept), names prefixed with `prefix` (e.g. `repo-abc123/`). */
export async function entriesFromDir(dir: string, prefix = ''): Promise<ArchiveEntry[]> {
  const out: ArchiveEntry[] = [];
  if (prefix !== '') out.push({ name: prefix.endsWith('/') ? prefix : `${prefix}/`, type: 'directory' });
  const walkDir = async (abs: string, rel: string): Promise<void> => {
    for (const name of (await readdir(abs)).sort()) {
      const childAbs = path.join(abs, name);
      const childRel = `${rel}${name}`;
      const st = await lstat(childAbs);
      const archiveName = `${prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`}${childRel}`;
      if (st.isSymbolicLink()) {
        out.push({ name: archiveName, type: 'symlink', linkname: await readlink(childAbs) });
      } else if (st.isDirectory()) {
        out.push({ name: `${archiveName}/`, type: 'directory', mode: st.mode & 0o7777 });
        await walkDir(childAbs, `${childRel}/`);
      } else {
        out.push({ name: archiveName, type: 'file', mode: st.mode & 0o7777, content: await readFile(childAbs) });
      }
    }
  };
  await walkDir(dir, '');
  return out;
}

/**
 * A tarball made the way GitHub makes them: `git archive --prefix=<top>/`, which wraps everything in one top-level
 * directory and starts with a pax global header carrying the commit id.
 */
export async function gitArchive(dir: string, prefix: string, format: 'tar' | 'tar.gz' | 'zip'): Promise<Buffer> {
  const run = promisify(execFile);
  const work = await mkdtemp(path.join(tmpdir(), 'git-archive-'));
  try {
    await cp(dir, work, { recursive: true });
    const git = (...args: string[]) =>
      run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'commit.gpgsign=false', ...args], {
        cwd: work,
        encoding: 'buffer',
        maxBuffer: 64 * 1024 * 1024,
      });
    await git('init', '-q');
    await git('add', '-A');
    await git('commit', '-q', '-m', 'fixture');
    const { stdout } = await git('archive', `--format=${format === 'tar.gz' ? 'tgz' : format}`, `--prefix=${prefix}/`, 'HEAD');
    return stdout;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Every path under `dir`, relative, sorted; directories end with `/`. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walkDir = async (abs: string, rel: string): Promise<void> => {
    for (const name of await readdir(abs)) {
      const st = await lstat(path.join(abs, name));
      if (st.isDirectory()) {
        out.push(`${rel}${name}/`);
        await walkDir(path.join(abs, name), `${rel}${name}/`);
      } else {
        out.push(`${rel}${name}`);
      }
    }
  };
  await walkDir(dir, '');
  return out.sort();
}

function toBuffer(content: string | Buffer): Buffer {
  return typeof content === 'string' ? Buffer.from(content) : content;
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Served {
  body: Buffer;
  /** Content-Type; omitted when undefined. */
  type?: string;
  status?: number;
  headers?: Record<string, string>;
}

export interface ArchiveServer {
  readonly origin: string;
  url(pathname: string): string;
  serve(pathname: string, what: Served | RouteHandler): string;
  /** Requests seen per path. */
  hits(pathname: string): number;
  close(): Promise<void>;
}

export async function startArchiveServer(): Promise<ArchiveServer> {
  const routes = new Map<string, Served | RouteHandler>();
  const hitCount = new Map<string, number>();
  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    hitCount.set(pathname, (hitCount.get(pathname) ?? 0) + 1);
    const route = routes.get(pathname);
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (typeof route === 'function') {
      route(req, res);
      return;
    }
    res.writeHead(route.status ?? 200, {
      'content-length': String(route.body.length),
      ...(route.type !== undefined ? { 'content-type': route.type } : {}),
      ...route.headers,
    });
    res.end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (pathname) => `${origin}${pathname}`,
    serve(pathname, what) {
      routes.set(pathname, what);
      return `${origin}${pathname}`;
    },
    hits: (pathname) => hitCount.get(pathname) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
