import { setTimeout as sleep } from 'node:timers/promises';
import got, { RequestError } from 'got';
import WebSocket from 'ws';
import type { z } from 'zod';
import type { CreateRequest } from '../supervisor/create-request.js';
import { FAILURE_STATES } from '../supervisor/states.js';
import {
  AgentApiError,
  AgentClientError,
  AgentProtocolError,
  AgentUnreachableError,
  AgentWaitTimeoutError,
  systemCodeOf,
} from './errors.js';
import {
  ConsoleFrameSchema,
  ErrorBodySchema,
  IndexDocumentSchema,
  ListDocumentSchema,
  StatusDocumentSchema,
  type ConsoleFrame,
  type IndexDocument,
  type StatusDocument,
} from './schemas.js';

export type CreateProcessRequest = CreateRequest;

/** One HTTP exchange (or WebSocket upgrade), for `-v` style logging. */
export interface RequestLogEntry {
  method: string;
  url: string;
  /** Undefined when there was no answer (see `error`). */
  status?: number;
  ms: number;
  requestBody?: string;
  responseBody?: string;
  error?: string;
}

export interface AgentClientOptions {
  /** The root URL: the only URL the client is ever given; everything else is a link found in a document. */
  url: string;
  /** Sent as `Authorization: Bearer <token>` on every request and console. */
  token?: string;
  /** Abort a request (not a console) that has not answered after this long: AgentUnreachableError ETIMEDOUT. */
  timeoutMs?: number;
  userAgent?: string;
  /** Called after every request; the CLI's `-v`. */
  onRequest?: (entry: RequestLogEntry) => void;
}

/** A process by slug, or a status document already in hand (its links are followed). */
export type ProcessRef = string | StatusDocument;

export interface ConsoleAttachOptions {
  /** Scrollback lines first (agent default 100, ring of 1,500). */
  tail?: number;
  /** `json` gives frames with `stream` and `ts`, and agent events as `stream: "agent"`. */
  format?: 'text' | 'json';
  onLine?: (frame: ConsoleFrame) => void;
}

export interface ConsoleClosed {
  /** WebSocket close code: 1000 when the agent closed it because the process was deleted; 1006 when the connection dropped. */
  code: number;
  reason: string;
  /** True when `close()` was called on this side. */
  byClient: boolean;
}

/** An open console: lines arrive through `onLine`; `send` writes one line to the child's stdin. */
export interface ConsoleHandle {
  readonly url: string;
  send(line: string): void;
  /** Detaches; never affects the child. */
  close(): void;
  /** Resolves (never rejects) when the console is closed by either side. */
  readonly closed: Promise<ConsoleClosed>;
}

export interface WaitOptions {
  /** Called with every status document read while waiting. */
  onUpdate?: (doc: StatusDocument) => void;
  /** Default: no limit. */
  timeoutMs?: number;
  /** Poll interval, default 200 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

/** States a process never leaves by itself: waiting for anything else is pointless. */
export const SETTLED_STATES: readonly string[] = ['exited', ...FAILURE_STATES];

export function isFailureState(state: string): boolean {
  return (FAILURE_STATES as readonly string[]).includes(state);
}

export function isSettled(doc: Pick<StatusDocument, 'state'>): boolean {
  return SETTLED_STATES.includes(doc.state);
}

/**
 * A hypermedia client of the agent's REST API (docs/api.md). It is configured with the root URL only: every other
 * URL it requests is a link read from a document (index → create/list; status document → details/delete/attach).
 * A process named by slug is looked up in the list document.
 */
export class AgentClient {
  readonly url: string;
  private readonly options: AgentClientOptions;
  private root: Promise<IndexDocument> | undefined;

  constructor(options: AgentClientOptions | string) {
    this.options = typeof options === 'string' ? { url: options } : options;
    try {
      this.url = new URL(this.options.url).href;
    } catch {
      throw new AgentClientError(`'${this.options.url}' is not a URL`);
    }
  }

  /** GET the root document (fresh; later link lookups reuse it). */
  async index(): Promise<IndexDocument> {
    const loading = this.getJson(this.url, IndexDocumentSchema, 'index');
    this.root = loading;
    loading.catch(() => {
      if (this.root === loading) this.root = undefined;
    });
    return loading;
  }

  /** Every process, in creation order (follows the index's `list` link). */
  async list(): Promise<StatusDocument[]> {
    const url = await this.indexLink('list');
    return (await this.getJson(url, ListDocumentSchema, 'list')).processes;
  }

  /** Creates a process (follows `create`); resolves with its status document, state `pending`. */
  async create(request: CreateProcessRequest): Promise<StatusDocument> {
    const url = await this.indexLink('create');
    const answer = await this.send('POST', url, request);
    return this.parse(answer, StatusDocumentSchema, 'status');
  }

  /** The status document of a process found in the list document; AgentApiError 404 `not_found` when absent. */
  async find(slug: string): Promise<StatusDocument> {
    const found = (await this.list()).find((doc) => doc.slug === slug);
    if (!found) {
      throw new AgentApiError({ status: 404, code: 'not_found', message: `no process ${slug}`, method: 'GET', url: await this.indexLink('list') });
    }
    return found;
  }

  /** A fresh status document: a slug is looked up in the list; a document's `details` (or `status`) link is followed. */
  async status(ref: ProcessRef): Promise<StatusDocument> {
    if (typeof ref === 'string') return this.find(ref);
    const link = ref.details ?? ref.status;
    if (!link) return this.find(ref.slug);
    return this.getJson(this.resolve(link, ref.slug), StatusDocumentSchema, 'status');
  }

  /** Deletes a process (follows `delete`): resolves once the agent has stopped the child. */
  async delete(ref: ProcessRef): Promise<void> {
    const doc = typeof ref === 'string' ? await this.find(ref) : ref;
    const link = this.docLink(doc, 'delete');
    await this.send('POST', link, {});
  }

  /**
   * The recent output of the child as text, one line per line, agent events left out (follows the `output` link,
   * with `?tail=`). AgentProtocolError when the agent's status documents have no `output` link.
   */
  async output(ref: ProcessRef, options: { tail?: number } = {}): Promise<string> {
    const doc = typeof ref === 'string' ? await this.find(ref) : ref;
    const target = new URL(this.docLink(doc, 'output'));
    if (options.tail !== undefined) target.searchParams.set('tail', String(options.tail));
    return (await this.sendRaw('GET', target.href, undefined, 'text/plain')).text;
  }

  /**
   * Opens the process's console (follows `attach`, adding `?tail=` / `?format=` as docs/console.md describes).
   * Resolves once the WebSocket is open: scrollback lines follow at once, then live lines.
   */
  async attach(ref: ProcessRef, options: ConsoleAttachOptions = {}): Promise<ConsoleHandle> {
    const doc = typeof ref === 'string' ? await this.find(ref) : ref;
    const target = new URL(this.docLink(doc, 'attach'));
    if (options.tail !== undefined) target.searchParams.set('tail', String(options.tail));
    if (options.format === 'json') target.searchParams.set('format', 'json');
    return this.openConsole(target.href, options);
  }

  /**
   * Polls the process until `until` holds. With a list of states it also resolves when the process reaches a
   * settled state (`exited` or a failure state), which it would never leave; check the answer's `state`.
   */
  async waitFor(
    ref: ProcessRef,
    until: readonly string[] | ((doc: StatusDocument) => boolean),
    options: WaitOptions = {},
  ): Promise<StatusDocument> {
    const test = typeof until === 'function' ? until : (doc: StatusDocument) => until.includes(doc.state) || isSettled(doc);
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const interval = options.intervalMs ?? 200;
    let doc = typeof ref === 'string' ? await this.find(ref) : await this.status(ref);
    for (;;) {
      options.onUpdate?.(doc);
      if (test(doc)) return doc;
      if (Date.now() + interval > deadline) {
        throw new AgentWaitTimeoutError(`timed out waiting for ${doc.slug} (state ${doc.state})`, doc);
      }
      await sleep(interval, undefined, options.signal ? { signal: options.signal } : undefined);
      doc = await this.status(doc);
    }
  }

  // --- links -------------------------------------------------------------------------------------------------

  private async indexLink(name: 'create' | 'list'): Promise<string> {
    this.root ??= this.index();
    const doc = await this.root;
    const link = doc[name];
    if (!link) throw new AgentProtocolError(`the agent's index has no '${name}' link`, this.url);
    return this.resolve(link, 'index');
  }

  private docLink(doc: StatusDocument, name: 'attach' | 'delete' | 'output'): string {
    const link = doc[name];
    if (!link) throw new AgentProtocolError(`the status document of ${doc.slug} has no '${name}' link`);
    return this.resolve(link, doc.slug);
  }

  /** Links are absolute (DESIGN §1); a relative one is resolved against the root rather than refused. */
  private resolve(link: string, where: string): string {
    try {
      return new URL(link, this.url).href;
    } catch {
      throw new AgentProtocolError(`bad link '${link}' in ${where}`);
    }
  }

  // --- HTTP --------------------------------------------------------------------------------------------------

  private headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (json) headers['content-type'] = 'application/json';
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (this.options.userAgent) headers['user-agent'] = this.options.userAgent;
    return headers;
  }

  private async getJson<S extends z.ZodType>(url: string, schema: S, what: string): Promise<z.output<S>> {
    return this.parse(await this.send('GET', url), schema, what);
  }

  private parse<S extends z.ZodType>(answer: { url: string; body: unknown }, schema: S, what: string): z.output<S> {
    const parsed = schema.safeParse(answer.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
      throw new AgentProtocolError(`unexpected ${what} document from ${answer.url}${where}: ${issue?.message ?? 'invalid'}`, answer.url);
    }
    return parsed.data;
  }

  /** One request: the answer's text; an error status is an AgentApiError, no answer an AgentUnreachableError. */
  private async sendRaw(method: string, url: string, body?: unknown, accept = 'application/json'): Promise<{ url: string; status: number; text: string }> {
    const requestBody = body === undefined ? undefined : JSON.stringify(body);
    const started = performance.now();
    const log = (entry: Partial<RequestLogEntry>): void =>
      this.options.onRequest?.({ method, url, ms: Math.round(performance.now() - started), requestBody, ...entry });
    let status: number;
    let statusText: string;
    let text: string;
    try {
      // got rather than fetch: fetch refuses the WHATWG "bad ports" (6000, 10080…) and hides the system error code.
      const response = await got(url, {
        method: method as 'GET' | 'POST',
        headers: { ...this.headers(requestBody !== undefined), accept },
        body: requestBody,
        throwHttpErrors: false,
        retry: { limit: 0 },
        responseType: 'text',
        followRedirect: true,
        timeout: this.options.timeoutMs === undefined ? undefined : { request: this.options.timeoutMs },
      });
      status = response.statusCode;
      statusText = response.statusMessage ?? '';
      text = response.body;
    } catch (err) {
      const code = (err instanceof RequestError ? err.code : undefined) ?? systemCodeOf(err) ?? (err as Error).message;
      log({ error: code });
      throw new AgentUnreachableError(url, code, { cause: err });
    }
    log({ status, responseBody: text });
    if (status < 200 || status > 299) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const error = ErrorBodySchema.safeParse(parsed);
      throw new AgentApiError({
        status,
        code: error.success ? (error.data.code ?? `http_${status}`) : `http_${status}`,
        message: error.success ? error.data.error : `${method} ${url} answered ${status} ${statusText}`.trim(),
        method,
        url,
      });
    }
    return { url, status, text };
  }

  private async send(method: string, url: string, body?: unknown): Promise<{ url: string; status: number; body: unknown }> {
    const answer = await this.sendRaw(method, url, body);
    try {
      return { url, status: answer.status, body: answer.text === '' ? undefined : JSON.parse(answer.text) };
    } catch {
      throw new AgentProtocolError(`${method} ${url} did not answer JSON`, url);
    }
  }

  // --- console -----------------------------------------------------------------------------------------------

  private openConsole(url: string, options: ConsoleAttachOptions): Promise<ConsoleHandle> {
    const started = performance.now();
    const headers: Record<string, string> = {};
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (this.options.userAgent) headers['user-agent'] = this.options.userAgent;
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const log = (entry: Partial<RequestLogEntry>): void =>
      this.options.onRequest?.({ method: 'GET', url, ms: Math.round(performance.now() - started), ...entry });
    const json = options.format === 'json';
    ws.on('message', (data, isBinary) => {
      if (!options.onLine) return;
      const raw = Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data as ArrayBuffer).toString();
      if (!json || isBinary) return options.onLine({ line: raw });
      let frame: ConsoleFrame = { line: raw };
      try {
        const parsed = ConsoleFrameSchema.safeParse(JSON.parse(raw));
        if (parsed.success) frame = parsed.data;
      } catch {
        // not JSON: hand over the raw text
      }
      options.onLine(frame);
    });
    let byClient = false;
    const closed = new Promise<ConsoleClosed>((resolve) => {
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), byClient }));
    });
    return new Promise<ConsoleHandle>((resolve, reject) => {
      const fail = (err: AgentClientError): void => {
        ws.removeAllListeners('open');
        reject(err);
      };
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          log({ status, responseBody: text });
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          const error = ErrorBodySchema.safeParse(body);
          fail(
            new AgentApiError({
              status,
              code: error.success ? (error.data.code ?? `http_${status}`) : `http_${status}`,
              message: error.success ? error.data.error : `console ${url} answered ${status}`,
              method: 'GET',
              url,
            }),
          );
          ws.terminate();
        });
      });
      ws.once('error', (err) => {
        const code = systemCodeOf(err) ?? err.message;
        log({ error: code });
        fail(new AgentUnreachableError(url, code, { cause: err }));
      });
      ws.once('open', () => {
        log({ status: 101 });
        // Errors after the upgrade end in 'close' (1006); keep them from being unhandled.
        ws.removeAllListeners('error');
        ws.on('error', () => undefined);
        resolve({
          url,
          closed,
          send(line: string) {
            if (ws.readyState === WebSocket.OPEN) ws.send(line);
          },
          close() {
            byClient = true;
            if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000, 'detached');
          },
        });
      });
    });
  }
}
