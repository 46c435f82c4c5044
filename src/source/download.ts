import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import got, { RequestError, type Response } from 'got';
import { isAgentError, type AgentError } from '../errors.js';
import { abortedError, sourceError, throwIfAborted } from './errors.js';
import { IDLE_TIMEOUT_MS, type SourceLimits } from './limits.js';
import { notAllowedError, type SourceAllowList } from './allow.js';
import { redactUrl } from './url.js';

export interface Progress {
  bytes: number;
  /** Content-Length when the server sent one. */
  total: number | null;
}

export interface Downloaded {
  /** Temp file holding the archive; the caller owns (and deletes) it. */
  file: string;
  sha256: string;
  bytes: number;
  contentType: string | null;
  contentEncoding: string | null;
}

export interface DownloadOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: Progress) => void) | undefined;
  /** `--allow-source`, checked again on every redirect so an open redirect cannot lead elsewhere. */
  allow?: SourceAllowList | undefined;
  /**
   * Also gets every byte, with backpressure: ended after the last one, destroyed when the download fails. An
   * error it emits (an AgentError) fails the download with that error.
   */
  sink?: Writable | undefined;
  /**
   * Once this answers true the sink alone needs the bytes: the rest are hashed and given to the sink but no longer
   * written to the file, which is then incomplete (the caller knows, since it said so). Halves the disk writes of
   * an archive unpacked while it downloads.
   */
  sinkOnly?: (() => boolean) | undefined;
}

const PROGRESS_INTERVAL_MS = 100;
const USER_AGENT = 'procfile-agent (+https://github.com/smartmob-project)';
const ACCEPT = 'application/x-tar, application/gzip, application/zip, application/octet-stream;q=0.9, */*;q=0.5';

/**
 * Streams `url` into a fresh file under `tmpDir`, hashing as it goes, so an archive of any size costs constant
 * memory. Every failure removes the partial file before rejecting.
 */
export async function download(url: URL, tmpDir: string, limits: SourceLimits, opts: DownloadOptions = {}): Promise<Downloaded> {
  const { signal, onProgress, sink, sinkOnly } = opts;
  throwIfAborted(signal);

  const file = path.join(tmpDir, `download-${randomBytes(8).toString('hex')}`);
  const shown = redactUrl(url);
  const idle = Math.min(IDLE_TIMEOUT_MS, limits.downloadTimeoutMs);
  const hash = createHash('sha256');
  let bytes = 0;
  let total: number | null = null;
  let contentType: string | null = null;
  let contentEncoding: string | null = null;
  let responded = false;
  let lastReport = 0;
  // got wraps whatever we destroy its stream with, so the error we mean is kept here and wins in the catch.
  let failure: AgentError | undefined;

  // Throttled with a trailing call, so the last bytes of a burst are reported even if the stream then stalls.
  let trailing: NodeJS.Timeout | undefined;
  const report = (force: boolean): void => {
    if (!onProgress) return;
    const now = Date.now();
    if (!force && now - lastReport < PROGRESS_INTERVAL_MS) {
      trailing ??= setTimeout(() => {
        trailing = undefined;
        report(true);
      }, lastReport + PROGRESS_INTERVAL_MS - now);
      return;
    }
    clearTimeout(trailing);
    trailing = undefined;
    lastReport = now;
    try {
      onProgress({ bytes, total });
    } catch {
      // A broken progress listener must not turn into a download failure.
    }
  };

  const tooLarge = (): AgentError =>
    sourceError('download_too_large', `GET ${shown}: archive is larger than the ${limits.maxDownloadBytes}-byte download limit`);

  const request = got.stream(url, {
    // No decompression: the bytes hashed and unpacked must be the bytes the server holds.
    decompress: false,
    throwHttpErrors: false,
    retry: { limit: 0 },
    maxRedirects: limits.maxRedirects,
    // The total budget is our own timer below; got's `request` timeout would buffer the remaining body on error.
    timeout: { lookup: idle, connect: idle, secureConnect: idle, send: idle, response: idle, socket: idle },
    headers: { 'user-agent': USER_AGENT, accept: ACCEPT },
    hooks: {
      beforeRedirect: [
        (options) => {
          const next = options.url instanceof URL ? options.url : new URL(String(options.url));
          if (opts.allow && !opts.allow(next)) {
            const err = notAllowedError(next, url);
            failure ??= err;
            throw err;
          }
        },
      ],
    },
  });

  const fail = (err: AgentError): void => {
    failure ??= err;
    request.destroy(err);
  };

  request.on('response', (res: Response) => {
    responded = true;
    if (res.statusCode < 200 || res.statusCode > 299) {
      const via = res.url !== url.href ? ` (redirected from ${shown})` : '';
      fail(sourceError('download_failed', `GET ${redactUrl(res.url)} answered ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd() + via));
      return;
    }
    const length = header(res.headers['content-length']);
    total = length !== null && /^\d+$/.test(length.trim()) ? Number(length.trim()) : null;
    contentType = header(res.headers['content-type']);
    contentEncoding = header(res.headers['content-encoding']);
    if (total !== null && total > limits.maxDownloadBytes) {
      fail(tooLarge());
      return;
    }
    report(true);
  });

  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > limits.maxDownloadBytes) {
        const err = tooLarge();
        failure ??= err;
        callback(err);
        return;
      }
      hash.update(chunk);
      report(false);
      const toFile = sinkOnly?.() ? undefined : chunk;
      if (!sink || sink.write(chunk)) callback(null, toFile);
      else sink.once('drain', () => callback(null, toFile));
    },
  });
  sink?.on('error', (err) => fail(isAgentError(err) ? err : sourceError('unpack_failed', `could not unpack: ${err.message}`, err)));

  const onAbort = (): void => fail(abortedError());
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => fail(sourceError('download_timeout', `GET ${shown} did not complete within ${formatMs(limits.downloadTimeoutMs)}`)),
    limits.downloadTimeoutMs,
  );

  try {
    await pipeline(request, meter, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    const error = failure ?? describeFailure(err, url, shown, responded, idle);
    sink?.destroy(error);
    await rm(file, { force: true });
    throw error;
  } finally {
    clearTimeout(timer);
    clearTimeout(trailing);
    trailing = undefined;
    signal?.removeEventListener('abort', onAbort);
  }
  // An abort that raced the last chunk still wins: the caller has stopped caring about this download.
  if (signal?.aborted) {
    sink?.destroy(abortedError());
    await rm(file, { force: true });
    throw abortedError();
  }
  sink?.end();
  report(true);
  return { file, sha256: hash.digest('hex'), bytes, contentType, contentEncoding };
}

function header(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);

/** Turns got's (and the file system's) errors into one sentence naming the cause, for the status `error` field. */
function describeFailure(err: unknown, url: URL, shown: string, responded: boolean, idleMs: number): AgentError {
  const e = err as NodeJS.ErrnoException & { event?: string; options?: { url?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = e instanceof Error ? e.message : String(err);
  // After a redirect the failing request is not the one we started; name the one that failed.
  const current = e?.options?.url instanceof URL ? e.options.url : url;
  const host = current.host;

  if (!(err instanceof RequestError) && e?.syscall !== undefined) {
    return sourceError('download_failed', `could not store the download of ${shown}: ${message}`, err);
  }
  if (code === 'ERR_TOO_MANY_REDIRECTS') {
    return sourceError('download_failed', `GET ${shown}: ${message}`, err);
  }
  if (e?.name === 'TimeoutError' || code === 'ETIMEDOUT') {
    const what = e.event === 'socket' || e.event === undefined ? 'data' : e.event;
    return sourceError('download_timeout', `GET ${redactUrl(current)} timed out: no ${what} within ${formatMs(idleMs)}`, err);
  }
  if (DNS_CODES.has(code)) {
    return sourceError('download_failed', `could not resolve host ${current.hostname}: ${code}`, err);
  }
  if (code.startsWith('ERR_TLS') || code.startsWith('CERT_') || code.includes('CERT') || code.startsWith('ERR_SSL')) {
    return sourceError('download_failed', `TLS error talking to ${host}: ${code} (${message})`, err);
  }
  if (code === 'ERR_UNSUPPORTED_PROTOCOL') {
    return sourceError('download_failed', `GET ${shown}: redirected to an unsupported URL (${message})`, err);
  }
  if (!responded && code !== '') {
    return sourceError('download_failed', `could not connect to ${host}: ${code}`, err);
  }
  if (responded) {
    return sourceError('download_failed', `download of ${shown} was interrupted: ${code || message}`, err);
  }
  return sourceError('download_failed', `GET ${shown} failed: ${message}`, err);
}
