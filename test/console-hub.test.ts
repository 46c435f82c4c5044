import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { ConsoleHub } from '../src/console/index.js';
import { encodeTextFrames } from '../src/console/ws-frames.js';
import { waitFor } from './helpers/wait.js';

/** A real loopback WebSocket server whose connections attach to one hub, as the agent does. */
async function serve(hub: ConsoleHub, query = '') {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const serverSockets: WebSocket[] = [];
  wss.on('connection', (ws, req) => {
    serverSockets.push(ws);
    const url = new URL(req.url ?? '/', 'http://x');
    hub.attach(ws, { tail: Number(url.searchParams.get('tail') ?? 100), format: url.searchParams.get('format') === 'json' ? 'json' : 'text' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/${query}`;
  cleanups.push(() => new Promise<void>((resolve) => { wss.close(); server.closeAllConnections(); server.close(() => resolve()); }));
  return { url, serverSockets };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

function client(url: string) {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  ws.on('message', (data) => frames.push(data.toString()));
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()));
  return { ws, frames, opened };
}

describe('batched frame encoding', () => {
  it('encodes every header length form the way a real client decodes it', async () => {
    const hub = new ConsoleHub();
    const { url } = await serve(hub);
    const c = client(url);
    await c.opened;
    const lengths = [0, 1, 125, 126, 127, 65535, 65536];
    const lines = [...lengths.map((n) => 'y'.repeat(n)), 'héllo wörld ✓ 🚀'];
    hub.write('stdout', Buffer.from(lines.map((line) => `${line}\n`).join('')));
    await waitFor(() => c.frames.length === lines.length, { what: 'all frames' });
    expect(c.frames.map((f) => f.length)).toEqual(lines.map((l) => l.length));
    expect(c.frames.at(-1)).toBe('héllo wörld ✓ 🚀');
    c.ws.close();
  });

  it('offsets point at each frame so a late joiner gets a view of the same bytes', () => {
    const { bytes, offsets } = encodeTextFrames(['a', 'bb', '']);
    expect([...offsets]).toEqual([0, 3, 7, 9]);
    expect(bytes.subarray(offsets[1], offsets[2])).toEqual(Buffer.from([0x81, 2, 0x62, 0x62]));
  });
});

describe('attach and detach in one process', () => {
  it('50 cycles leave no attacher, listener or timer behind', async () => {
    const hub = new ConsoleHub();
    const { url, serverSockets } = await serve(hub);
    for (let i = 0; i < 50; i++) {
      const c = client(url);
      await c.opened;
      hub.write('stdout', Buffer.from(`line ${i}\n`));
      await waitFor(() => c.frames.includes(`line ${i}`));
      c.ws.close();
      await new Promise((resolve) => c.ws.once('close', resolve));
    }
    await waitFor(() => hub.attacherCount === 0, { what: 'hub to forget closed consoles' });
    // Every server-side socket really closed: the hub holds none of them open.
    for (const ws of serverSockets) expect(ws.readyState).toBe(WebSocket.CLOSED);
    expect(serverSockets).toHaveLength(50);
  });

  it('close() sends pending lines, then closes every console with 1000', async () => {
    const hub = new ConsoleHub();
    const { url } = await serve(hub);
    const c = client(url);
    await c.opened;
    const closed = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)));
    hub.write('stdout', Buffer.from('one\ntwo without newline'));
    hub.close();
    expect(await closed).toBe(1000);
    expect(c.frames).toEqual(['one', 'two without newline']);
  });
});
