import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { waitFor } from './helpers/wait.js';

let agent: AgentProcess;
let files: FixtureServer;
let source: string;
let counter = 0;

beforeAll(async () => {
  [agent, files] = await Promise.all([startAgentProcess(), startFixtureServer()]);
  source = files.set('/console.tar.gz', { body: await appArchive('console', 'tar.gz') });
});

afterAll(async () => {
  await stopAllAgents();
  await files.close();
});

async function create(processType: string, extra: Record<string, unknown> = {}) {
  const created = await agent.api('/create-process', {
    method: 'POST',
    body: JSON.stringify({ app: 'console', node: `c${++counter}`, process_type: processType, source_url: source, ...extra }),
  });
  expect(created.status).toBe(201);
  return created.body;
}

interface Console {
  ws: WebSocket;
  frames: string[];
  opened: Promise<void>;
  closed: Promise<number>;
}

function attach(url: string): Console {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  ws.on('message', (data) => frames.push(data.toString()));
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return { ws, frames, opened, closed };
}

const state = async (doc: { details: string }) => (await agent.api(doc.details)).body;

describe('scrollback then live', () => {
  it('joins a fast stream with no gap and no repeat at the seam', async () => {
    const doc = await create('count');
    // Attach while the child is mid-stream: scrollback first, then live, one consecutive sequence.
    await waitFor(async () => Number(await (await fetch(`${doc.output}?tail=1`)).text()) >= 1000, { what: 'some output' });
    const c = attach(`${doc.attach}?tail=1500`);
    await waitFor(() => c.frames.at(-1) === '200000', { what: 'the last count', timeoutMs: 60_000 });
    const numbers = c.frames.map(Number);
    expect(numbers[0]).toBeGreaterThan(1);
    for (let i = 1; i < numbers.length; i++) {
      if (numbers[i] !== numbers[i - 1]! + 1) throw new Error(`seam broken at frame ${i}: ${numbers[i - 1]} then ${numbers[i]}`);
    }
    c.ws.close();
  });

  it('serves ?tail=N of the scrollback, and the output link as text/plain', async () => {
    const doc = await create('events', { restart: 'never' });
    await waitFor(async () => (await state(doc)).state === 'exited');
    const c = attach(`${doc.attach}?tail=0`);
    await c.opened;
    const text = await fetch(doc.output);
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await text.text()).toBe('once\n');
    const full = attach(`${doc.attach}?tail=5`);
    await waitFor(() => full.frames.length === 1);
    expect(full.frames).toEqual(['once']);
    expect(c.frames).toEqual([]);
    c.ws.close();
    full.ws.close();
  });
});

describe('JSON frames', () => {
  it('carry stream, timestamp and the agent events: started, exited, restarting', async () => {
    const doc = await create('events');
    const c = attach(`${doc.attach}?format=json&tail=1500`);
    await waitFor(() => c.frames.filter((f) => JSON.parse(f).line.startsWith('restarting in')).length >= 2, { what: 'two restarts' });
    const frames = c.frames.map((f) => JSON.parse(f));
    for (const frame of frames) {
      expect(Object.keys(frame).sort()).toEqual(['line', 'stream', 'ts']);
      expect(Date.parse(frame.ts)).not.toBeNaN();
    }
    const agentLines = frames.filter((f) => f.stream === 'agent').map((f) => f.line);
    expect(agentLines[0]).toMatch(/^started pid \d+$/);
    expect(agentLines[1]).toBe('exited with code 3');
    expect(agentLines[2]).toMatch(/^restarting in \d+ ms$/);
    expect(frames.find((f) => f.line === 'once').stream).toBe('stdout');
    await agent.api(doc.delete, { method: 'POST', body: '{}' });
  });
});

describe('stdin', () => {
  it('text frames reach the child with a newline, binary frames raw, interleaved by frame', async () => {
    const doc = await create('cat');
    await waitFor(async () => (await state(doc)).state === 'running');
    const a = attach(doc.attach);
    const b = attach(doc.attach);
    await Promise.all([a.opened, b.opened]);
    a.ws.send('from a');
    await waitFor(() => b.frames.includes('from a'));
    b.ws.send(Buffer.from('raw 1\nraw 2\n'), { binary: true });
    a.ws.send('from a again');
    await waitFor(() => a.frames.length >= 4, { what: 'four echoed lines' });
    expect(a.frames).toEqual(['from a', 'raw 1', 'raw 2', 'from a again']);
    expect(b.frames).toEqual(a.frames);
    await agent.api(doc.delete, { method: 'POST', body: '{}' });
  });
});

describe('slow attachers', () => {
  it('a stalled attacher loses lines (and is told how many) while a healthy one gets every line', async () => {
    // 30 MB at ~10 MB/s: far more than the 8 MiB console buffer plus the kernel's socket buffers, at a pace any
    // healthy reader keeps up with.
    const lines = 30_000;
    const doc = await create('spew', { restart: 'never', env: { SPEW_LINES: String(lines), SPEW_BYTES: '1000', SPEW_BATCH: '100', SPEW_MS: '10' } });
    const healthy = attach(doc.attach);
    const stalled = attach(doc.attach);
    await Promise.all([healthy.opened, stalled.opened]);
    // Stop reading from the socket: the agent's writes back up into its per-attacher buffer.
    (stalled.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    await waitFor(async () => (await state(doc)).state === 'exited', { what: 'spew to finish', timeoutMs: 60_000 });
    await waitFor(() => healthy.frames.length >= lines, { what: 'every line for the healthy attacher' });
    expect(healthy.frames.length).toBe(lines);
    healthy.frames.forEach((frame, i) => {
      if (!frame.startsWith(`${i + 1} `)) throw new Error(`healthy frame ${i} is ${frame.slice(0, 20)}`);
    });

    (stalled.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const notice = await waitFor(() => stalled.frames.find((f) => f.startsWith('[agent] ')), { what: 'the drop notice' });
    const dropped = Number(/^\[agent\] (\d+) lines dropped$/.exec(notice)![1]);
    expect(dropped).toBeGreaterThan(0);
    // Every line is accounted for: received or counted as dropped, in order, never duplicated.
    await waitFor(() => stalled.frames.length - 1 + dropped === lines, { what: 'stalled attacher to drain' });
    const received = stalled.frames.filter((f) => !f.startsWith('[agent] ')).map((f) => Number(f.split(' ')[0]));
    for (let i = 1; i < received.length; i++) expect(received[i]).toBeGreaterThan(received[i - 1]!);
    healthy.ws.close();
    stalled.ws.close();
  });
});

describe('attach and detach', () => {
  it('50 attach/detach cycles leave no attacher behind and the child untouched', async () => {
    const doc = await create('cat');
    const before = await waitFor(async () => {
      const body = await state(doc);
      return body.state === 'running' && body;
    });
    for (let i = 0; i < 50; i++) {
      const c = attach(doc.attach);
      await c.opened;
      c.ws.close();
      await c.closed;
    }
    await waitFor(async () => (await state(doc)).attachers === 0, { what: 'attachers back to 0' });
    const after = await state(doc);
    expect(after.pid).toBe(before.pid);
    expect(after.restarts).toBe(0);
    // And a console still works afterwards.
    const c = attach(doc.attach);
    await c.opened;
    expect((await state(doc)).attachers).toBe(1);
    c.ws.send('still here');
    await waitFor(() => c.frames.includes('still here'));
    await agent.api(doc.delete, { method: 'POST', body: '{}' });
    expect(await c.closed).toBe(1000);
  });
});
