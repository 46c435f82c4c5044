import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { parseTail, type ConsoleFormat } from '../console/index.js';
import type { Supervisor } from '../supervisor/index.js';
import { challenge, type TokenAuth } from './auth.js';

export interface UpgradeOptions {
  /** When enabled, the upgrade needs `Authorization: Bearer` or the `bearer` subprotocol pair (docs/security.md). */
  auth?: TokenAuth | undefined;
  /** Told how every upgrade attempt ended (101 or the refusal status), for metrics and logs. */
  onUpgrade?: ((status: number, req: IncomingMessage) => void) | undefined;
}

const ATTACH_PATH = /^\/attach-console\/([^/]+)$/;

function refuseRaw(socket: Duplex, status: number, reason: string, code: string, error: string, extra = ''): void {
  const body = JSON.stringify({ error, code });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}

function attachOptions(url: URL): { tail: number; format: ConsoleFormat } {
  const tail = parseTail(url.searchParams.get('tail'));
  const format: ConsoleFormat = url.searchParams.get('format') === 'json' ? 'json' : 'text';
  return { tail, format };
}

/** Answers `GET /attach-console/{slug}` upgrades; unknown slugs get a plain 404 before any upgrade (DESIGN §1). */
export function consoleUpgrade(supervisor: Supervisor, options: UpgradeOptions = {}) {
  // A browser that authenticated with the `bearer` subprotocol pair only accepts the handshake if the server
  // selects one of the protocols it offered; otherwise ws's default (the first offered) is kept.
  const selected = new WeakMap<IncomingMessage, string>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1024 * 1024,
    handleProtocols: (protocols, req) => selected.get(req) ?? protocols.values().next().value ?? false,
  });
  const handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const done = (status: number): void => options.onUpgrade?.(status, req);
    const refuse = (status: number, reason: string, code: string, error: string, extra = ''): void => {
      done(status);
      refuseRaw(socket, status, reason, code, error, extra);
    };
    const url = new URL(req.url ?? '/', 'http://agent');
    if (options.auth?.enabled) {
      const result = options.auth.check(req.headers, { websocket: true });
      if (!result.ok) {
        return refuse(401, 'Unauthorized', 'unauthorized', 'this agent requires a bearer token', `WWW-Authenticate: ${challenge(result.reason)}\r\n`);
      }
      if (result.protocol) selected.set(req, result.protocol);
    }
    const match = ATTACH_PATH.exec(url.pathname);
    if (!match) return refuse(404, 'Not Found', 'not_found', `no route ${url.pathname}`);
    let slug: string;
    try {
      slug = decodeURIComponent(match[1]!);
    } catch {
      return refuse(400, 'Bad Request', 'invalid_slug', 'slug is not valid percent-encoding');
    }
    const proc = supervisor.get(slug);
    if (!proc) return refuse(404, 'Not Found', 'not_found', `no process ${slug}`);
    wss.handleUpgrade(req, socket, head, (ws) => {
      done(101);
      proc.console.attach(ws, attachOptions(url));
    });
  };
  return { wss, handle };
}
