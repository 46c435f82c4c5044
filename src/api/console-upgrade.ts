import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { parseTail, type ConsoleFormat } from '../console/index.js';
import type { Supervisor } from '../supervisor/index.js';

const ATTACH_PATH = /^\/attach-console\/([^/]+)$/;

function refuse(socket: Duplex, status: number, reason: string, code: string, error: string): void {
  const body = JSON.stringify({ error, code });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function attachOptions(url: URL): { tail: number; format: ConsoleFormat } {
  const tail = parseTail(url.searchParams.get('tail'));
  const format: ConsoleFormat = url.searchParams.get('format') === 'json' ? 'json' : 'text';
  return { tail, format };
}

/** Answers `GET /attach-console/{slug}` upgrades; unknown slugs get a plain 404 before any upgrade (DESIGN §1). */
export function consoleUpgrade(supervisor: Supervisor) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const match = ATTACH_PATH.exec(url.pathname);
    if (!match) return refuse(socket, 404, 'Not Found', 'not_found', `no route ${url.pathname}`);
    let slug: string;
    try {
      slug = decodeURIComponent(match[1]!);
    } catch {
      return refuse(socket, 400, 'Bad Request', 'invalid_slug', 'slug is not valid percent-encoding');
    }
    const proc = supervisor.get(slug);
    if (!proc) return refuse(socket, 404, 'Not Found', 'not_found', `no process ${slug}`);
    wss.handleUpgrade(req, socket, head, (ws) => proc.console.attach(ws, attachOptions(url)));
  };
  return { wss, handle };
}
