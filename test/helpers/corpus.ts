/**
 * Reads the bad-input corpus (test/corpus/*.jsonl) and turns its recipes into bytes: request bodies, archives and
 * the behaviour of the HTTP server a source_url points at. The format is described in test/corpus/README.md.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import WebSocket from 'ws';
import { ROOT } from './agent.js';
import { makeTar, makeTarGz, makeZip, type ArchiveEntry, type ArchiveServer } from './archives.js';

export const CORPUS_DIR = path.join(ROOT, 'test/corpus');

export interface Expect {
  status?: number;
  /** `error_code` of the status document, or `code` of the error body; null: the answer is not a JSON error. */
  code?: string | null;
  state?: string;
  /** A regular expression the `error` text must match. */
  error?: string;
  /** The first line of the child's output. */
  output?: string;
  /** A regular expression the shown `source_url` must match. */
  sourceUrlShown?: string;
  /** How many times the case's own path / the blocked server may have been fetched. */
  fetched?: number;
  blockedFetched?: number;
  /** The mode a file of the unpacked tree must have. */
  treeMode?: { path: string; mode: number };
}

export interface RequestCase {
  name: string;
  method?: string;
  path?: unknown;
  body?: unknown;
  raw?: unknown;
  rawBase64?: string;
  headers?: Record<string, string>;
  chunked?: boolean;
  noBody?: boolean;
  ws?: boolean;
  expect: Expect;
}

export interface ArchiveRecipe {
  format: 'tar' | 'tar.gz' | 'zip' | 'zip-deflate' | 'raw';
  entries?: unknown[];
  body?: unknown;
  gzip?: boolean;
  type?: string;
  truncate?: number;
  corruptCrc?: boolean;
}

export interface ServeRecipe {
  kind: 'archive' | 'status' | 'redirect' | 'redirect-chain' | 'hang' | 'drip' | 'huge-length' | 'endless' | 'cut';
  status?: number;
  to?: string;
  hops?: number;
  requireBasic?: string;
}

export interface SourceCase {
  name: string;
  agent?: 'main' | 'limits';
  archive?: ArchiveRecipe;
  serve?: ServeRecipe;
  source_url?: string;
  process_type?: string;
  /** Must appear nowhere in the status document or the agent's logs. */
  secret?: string;
  expect: Expect;
}

export function loadCorpus<T>(file: string): T[] {
  return readFileSync(path.join(CORPUS_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('//'))
    .map((line, i) => {
      try {
        return JSON.parse(line) as T;
      } catch (err) {
        throw new Error(`${file} line ${i + 1}: ${(err as Error).message}`);
      }
    });
}

/** Deterministic "random" bytes (xorshift), so a failing case fails the same way every run. */
function pseudoRandom(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export type Vars = Record<string, string>;

function fill(text: string, vars: Vars): string {
  return text.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => vars[name] ?? whole);
}

/**
 * Expands generators anywhere in a value: `{"$repeat": s, "times": n, "prefix", "suffix", "then"}` → string,
 * `{"$zeros": n}` / `{"$random": n}` / `{"$base64": s}` → Buffer, `{"$envVars": n}` → an env object;
 * `{{name}}` in strings is replaced from `vars`.
 */
export function expand(value: unknown, vars: Vars): unknown {
  if (typeof value === 'string') return fill(value, vars);
  if (Array.isArray(value)) return value.map((v) => expand(v, vars));
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  if ('$repeat' in o) {
    const then = o.then === undefined ? '' : String(expand(o.then, vars));
    const prefix = o.prefix === undefined ? '' : fill(String(o.prefix), vars);
    const suffix = o.suffix === undefined ? '' : fill(String(o.suffix), vars);
    return prefix + String(o.$repeat).repeat(Number(o.times)) + then + suffix;
  }
  if ('$zeros' in o) return Buffer.alloc(Number(o.$zeros));
  if ('$random' in o) return pseudoRandom(Number(o.$random));
  if ('$base64' in o) return Buffer.from(String(o.$base64), 'base64');
  if ('$envVars' in o) return Object.fromEntries(Array.from({ length: Number(o.$envVars) }, (_, i) => [`VAR_${i}`, 'x']));
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, expand(v, vars)]));
}

function entriesOf(recipe: unknown[], vars: Vars): ArchiveEntry[] {
  const out: ArchiveEntry[] = [];
  for (const raw of recipe) {
    const e = raw as Record<string, unknown>;
    if ('$many' in e) {
      const { $many, ...template } = e;
      for (let i = 0; i < Number($many); i++) {
        out.push({ ...(expand(template, vars) as ArchiveEntry), name: String(template.name).replace('%d', String(i)) });
      }
    } else {
      out.push(expand(e, vars) as ArchiveEntry);
    }
  }
  return out;
}

/** Flips the CRC-32 of every zip entry (local header and central directory), leaving the data intact. */
function corruptZipCrc(zip: Buffer): Buffer {
  const out = Buffer.from(zip);
  for (let i = 0; i + 4 <= out.length; i++) {
    const sig = out.readUInt32LE(i);
    if (sig === 0x04034b50) out.writeUInt32LE(out.readUInt32LE(i + 14) ^ 0xffffffff, i + 14);
    if (sig === 0x02014b50) out.writeUInt32LE(out.readUInt32LE(i + 16) ^ 0xffffffff, i + 16);
  }
  return out;
}

export async function buildArchive(recipe: ArchiveRecipe, vars: Vars): Promise<{ body: Buffer; type?: string }> {
  let body: Buffer;
  const entries = entriesOf(recipe.entries ?? [], vars);
  switch (recipe.format) {
    case 'tar':
      body = await makeTar(entries);
      break;
    case 'tar.gz':
      body = await makeTarGz(entries);
      break;
    case 'zip':
      body = makeZip(entries);
      break;
    case 'zip-deflate':
      body = makeZip(entries, { compress: true });
      break;
    case 'raw': {
      const content = expand(recipe.body ?? '', vars);
      body = Buffer.isBuffer(content) ? content : Buffer.from(String(content));
      if (recipe.gzip) body = gzipSync(body);
      break;
    }
  }
  if (recipe.corruptCrc) body = corruptZipCrc(body);
  if (recipe.truncate !== undefined) body = body.subarray(0, Math.floor(body.length * recipe.truncate));
  return recipe.type === undefined ? { body } : { body, type: recipe.type };
}

/** Serves one case at `pathname`: an archive, or a misbehaving server. Returns the handler to install. */
export function handlerFor(serve: ServeRecipe, archive: { body: Buffer; type?: string } | undefined, pathname: string, vars: Vars) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    // A misbehaving server must still let the fixture server close: every socket it holds is ours to end.
    res.on('error', () => undefined);
    switch (serve.kind) {
      case 'archive': {
        if (serve.requireBasic) {
          const expected = `Basic ${Buffer.from(serve.requireBasic).toString('base64')}`;
          if (req.headers.authorization !== expected) {
            res.writeHead(401, { 'www-authenticate': 'Basic realm="corpus"' }).end('no\n');
            return;
          }
        }
        const body = archive?.body ?? Buffer.alloc(0);
        res.writeHead(200, { 'content-length': String(body.length), ...(archive?.type ? { 'content-type': archive.type } : {}) }).end(body);
        return;
      }
      case 'status':
        res.writeHead(serve.status ?? 500, { 'content-type': 'text/plain' }).end('nope\n');
        return;
      case 'redirect':
        res.writeHead(302, { location: fill(serve.to ?? '/', vars) }).end();
        return;
      case 'redirect-chain': {
        const hop = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('hop') ?? '0');
        if (hop < (serve.hops ?? 1)) {
          res.writeHead(302, { location: `${pathname}?hop=${hop + 1}` }).end();
          return;
        }
        const body = archive?.body ?? Buffer.alloc(0);
        res.writeHead(200, { 'content-length': String(body.length) }).end(body);
        return;
      }
      case 'hang':
        // Never answers; the agent's idle timeout must end it.
        req.socket.setTimeout(10_000, () => req.socket.destroy());
        return;
      case 'drip': {
        res.writeHead(200, { 'content-type': 'application/gzip' });
        res.write(Buffer.from([0x1f]));
        const timer = setInterval(() => res.write(Buffer.from([0])), 100);
        const stop = (): void => clearInterval(timer);
        res.on('close', stop);
        setTimeout(() => {
          stop();
          res.destroy();
        }, 10_000).unref();
        return;
      }
      case 'huge-length':
        res.writeHead(200, { 'content-length': String(10 * 1024 ** 3), 'content-type': 'application/gzip' });
        res.write(Buffer.alloc(1024));
        setTimeout(() => res.destroy(), 10_000).unref();
        return;
      case 'endless': {
        res.writeHead(200, { 'content-type': 'application/gzip' });
        const chunk = Buffer.alloc(64 * 1024);
        const pump = (): void => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        setTimeout(() => res.destroy(), 10_000).unref();
        return;
      }
      case 'cut':
        res.writeHead(200, { 'content-length': '100000', 'content-type': 'application/gzip' });
        res.write(Buffer.alloc(1000), () => setTimeout(() => res.destroy(), 50));
        return;
    }
  };
}

export function install(server: ArchiveServer, pathname: string, c: SourceCase, archive: { body: Buffer; type?: string } | undefined, vars: Vars): void {
  const serve = c.serve ?? { kind: 'archive' };
  server.serve(pathname, handlerFor(serve, archive, pathname, vars));
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

/** A request sent byte for byte as written (no URL normalisation, any body, chunked or not). */
export function rawRequest(
  base: string,
  options: { method: string; path: string; headers?: Record<string, string>; body?: Buffer; chunked?: boolean; noBody?: boolean },
): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined && !options.chunked && headers['content-length'] === undefined) {
      headers['content-length'] = String(options.body.length);
    }
    const req = http.request({ host: url.hostname, port: url.port, method: options.method, path: options.path, headers, agent: false }, (res) => {
      void readBody(res).then((body) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, ...body });
        req.destroy();
      });
    });
    req.on('error', reject);
    if (options.noBody) {
      req.flushHeaders();
      return;
    }
    if (options.body !== undefined && options.chunked) {
      // Several writes without a Content-Length: chunked transfer encoding.
      const step = 8192;
      for (let i = 0; i < options.body.length; i += step) req.write(options.body.subarray(i, i + step));
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

/** A WebSocket upgrade attempt: 101 when it opened, else the refusal's status and JSON body. */
export function rawUpgrade(base: string, pathname: string, options: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<RawAnswer & { protocol: string }> {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${pathname}`, options.protocols ?? [], { headers: options.headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      const protocol = ws.protocol;
      ws.close();
      resolve({ status: 101, headers: {}, text: '', json: undefined, protocol });
    });
    ws.once('unexpected-response', (request, res) => {
      void readBody(res).then((body) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, ...body, protocol: '' });
        request.destroy();
      });
    });
    ws.once('error', (err) => {
      if (ws.readyState !== ws.OPEN) reject(err);
    });
  });
}

/** The whole body of an answer, as text and (when it parses) JSON. */
async function readBody(res: AsyncIterable<Buffer>): Promise<{ text: string; json: unknown }> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return { text, json: JSON.parse(text) };
  } catch {
    return { text, json: undefined };
  }
}
