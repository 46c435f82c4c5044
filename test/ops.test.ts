import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ROOT, startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { makeTarGz, startArchiveServer, type ArchiveServer } from './helpers/archives.js';
import { waitFor } from './helpers/wait.js';

const VERSION = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string }).version;

let agent: AgentProcess;
let files: ArchiveServer;
let crashArchive: Buffer;
let crashUrl: string;
let sleeperUrl: string;

beforeAll(async () => {
  files = await startArchiveServer();
  crashArchive = await appArchive('crash', 'tar.gz');
  crashUrl = files.serve('/crash.tar.gz', { body: crashArchive });
  sleeperUrl = files.serve('/sleeper.tar.gz', { body: await makeTarGz([{ name: 'Procfile', content: 'web: echo up; sleep 600\n' }]) });
  agent = await startAgentProcess();
});

afterAll(async () => {
  await stopAllAgents();
  await files.close();
});

/** Prometheus text → `name{labels}` → value (labels as the agent prints them). */
async function scrape(target: AgentProcess = agent): Promise<Map<string, number>> {
  const response = await fetch(`${target.url}/metrics`);
  expect(response.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function create(target: AgentProcess, body: Record<string, unknown>) {
  const created = await target.api('/create-process', { method: 'POST', body: JSON.stringify({ app: 'ops', process_type: 'web', ...body }) });
  expect(created.status).toBe(201);
  return created.body;
}

describe('index', () => {
  it('links healthz and metrics with absolute URLs', async () => {
    const { body } = await agent.api('/');
    expect(body.healthz).toBe(`${agent.url}/healthz`);
    expect(body.metrics).toBe(`${agent.url}/metrics`);
  });
});

describe('GET /healthz', () => {
  it('answers 200 with status, version, executors, kill guarantee, uptime and process count', async () => {
    const answer = await agent.api('/healthz');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const doc = answer.body;
    expect(doc).toEqual({
      status: 'ok',
      version: VERSION,
      executors: [{ name: 'local', kill_guarantee: doc.kill_guarantee }],
      kill_guarantee: expect.stringMatching(/^(pidns|pidns-userns|pdeathsig|none)$/),
      uptime_s: expect.any(Number),
      processes: expect.any(Number),
      warnings: doc.kill_guarantee === 'pidns' ? [] : [expect.stringContaining('kill guarantee')],
    });
    expect(doc.uptime_s).toBeGreaterThanOrEqual(0);
  });

  it('counts processes', async () => {
    const before = (await agent.api('/healthz')).body.processes;
    const doc = await create(agent, { node: 'health', source_url: sleeperUrl });
    expect((await agent.api('/healthz')).body.processes).toBe(before + 1);
    await agent.api(doc.delete, { method: 'POST', body: '{}' });
    expect((await agent.api('/healthz')).body.processes).toBe(before);
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus text with the agent metric families', async () => {
    const response = await fetch(`${agent.url}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const family of [
      'procfile_agent_info',
      'procfile_agent_processes',
      'procfile_agent_state_transitions_total',
      'procfile_agent_restarts_total',
      'procfile_agent_child_exits_total',
      'procfile_agent_download_bytes_total',
      'procfile_agent_console_lines_total',
      'procfile_agent_console_lines_dropped_total',
      'procfile_agent_console_attachers',
      'procfile_agent_http_request_duration_seconds',
      'process_resident_memory_bytes',
      'process_open_fds',
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(text).toContain(`procfile_agent_info{version="${VERSION}"} 1`);
  });

  it('moves as a crash-looping child starts, exits and is restarted, and as consoles attach', async () => {
    const before = await scrape();
    const exits3 = 'procfile_agent_child_exits_total{code="3",signal=""}';
    const doc = await create(agent, { node: 'crash', source_url: crashUrl });

    const during = await waitFor(async () => {
      const m = await scrape();
      return (m.get('procfile_agent_restarts_total') ?? 0) >= (before.get('procfile_agent_restarts_total') ?? 0) + 2 ? m : undefined;
    }, { what: 'two restarts counted' });
    expect(during.get(exits3)! - (before.get(exits3) ?? 0)).toBeGreaterThanOrEqual(2);
    // The archive was downloaded exactly once by this agent so far.
    expect(during.get('procfile_agent_download_bytes_total')! - (before.get('procfile_agent_download_bytes_total') ?? 0)).toBe(crashArchive.length);
    expect(during.get('procfile_agent_console_lines_total')!).toBeGreaterThan(before.get('procfile_agent_console_lines_total') ?? 0);
    expect(during.get('procfile_agent_state_transitions_total{state="backoff"}')!).toBeGreaterThanOrEqual(2);
    const looping = (m: Map<string, number>) =>
      (m.get('procfile_agent_processes{state="backoff"}') ?? 0) + (m.get('procfile_agent_processes{state="starting"}') ?? 0) + (m.get('procfile_agent_processes{state="running"}') ?? 0);
    expect(looping(during)).toBe(1);

    const ws = new WebSocket(doc.attach);
    await new Promise((resolve) => ws.once('open', resolve));
    await waitFor(async () => (await scrape()).get('procfile_agent_console_attachers') === 1, { what: 'attacher gauge 1' });
    ws.close();
    await waitFor(async () => (await scrape()).get('procfile_agent_console_attachers') === 0, { what: 'attacher gauge 0' });

    expect((await agent.api(doc.delete, { method: 'POST', body: '{}' })).status).toBe(200);
    const after = await scrape();
    expect(looping(after)).toBe(0);
    expect(after.get('procfile_agent_state_transitions_total{state="stopping"}')).toBeGreaterThanOrEqual(1);
    // Counters never go down when the process that fed them is gone.
    expect(after.get('procfile_agent_console_lines_total')!).toBeGreaterThanOrEqual(during.get('procfile_agent_console_lines_total')!);
  });

  it('counts a failure state', async () => {
    const doc = await create(agent, { node: 'missing', source_url: `${files.origin}/missing.tar.gz` });
    await waitFor(async () => (await scrape()).get('procfile_agent_processes{state="download failure"}') === 1, { what: 'failure gauge' });
    await agent.api(doc.delete, { method: 'POST', body: '{}' });
    expect((await scrape()).get('procfile_agent_processes{state="download failure"}')).toBe(0);
  });

  it('times HTTP requests by route template, method and status, WebSocket upgrades included', async () => {
    await agent.api('/process-status/nope.nope');
    await agent.api('/no/such/route');
    const ws = new WebSocket(`${agent.url.replace('http', 'ws')}/attach-console/nope.nope`);
    await new Promise((resolve) => ws.once('unexpected-response', resolve));
    const m = await scrape();
    expect(m.get('procfile_agent_http_request_duration_seconds_count{method="GET",route="/process-status/:slug",status="404"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('procfile_agent_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('procfile_agent_http_request_duration_seconds_count{method="GET",route="/attach-console/:slug",status="404"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('procfile_agent_http_request_duration_seconds_count{method="POST",route="/create-process",status="201"}')).toBeGreaterThanOrEqual(1);
    // Raw paths never become labels: the slug above is nowhere in the text.
    expect([...m.keys()].some((k) => k.includes('nope.nope'))).toBe(false);
  });

  it('counts lines dropped for a stalled attacher', async () => {
    const small = await startAgentProcess({ args: ['--console-buffer', '16KiB'] });
    const url = files.serve('/console.tar.gz', { body: await appArchive('console', 'tar.gz') });
    // 15 MB of output: far beyond the 16 KiB console buffer plus the kernel's socket buffers.
    const doc = await create(small, {
      node: 'drop',
      process_type: 'spew',
      source_url: url,
      restart: 'never',
      env: { SPEW_LINES: '15000', SPEW_BYTES: '1000', SPEW_BATCH: '1000', SPEW_MS: '5' },
    });
    const ws = new WebSocket(`${doc.attach}?tail=0`);
    await new Promise((resolve) => ws.once('open', resolve));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitFor(async () => ((await scrape(small)).get('procfile_agent_console_lines_dropped_total') ?? 0) > 0, { what: 'dropped lines counted' });
    ws.terminate();
    await small.api(doc.delete, { method: 'POST', body: '{}' });
    await small.stop();
  });
});

describe('request ids in logs', () => {
  it('every log line of a request carries its id', async () => {
    await agent.api('/list-processes', { headers: { 'X-Request-Id': 'ops-req-42' } });
    const line = await waitFor(() => agent.logs.find((l) => l.requestId === 'ops-req-42'), { what: 'request log line' });
    expect(line).toMatchObject({ msg: 'request', method: 'GET', path: '/list-processes', status: 200 });
    expect(agent.logs.filter((l) => l.msg === 'request').every((l) => typeof l.requestId === 'string')).toBe(true);
  });
});

describe('--max-concurrent-downloads', () => {
  it('queues downloads beyond the limit instead of failing them, and a queued one can be deleted', async () => {
    const held: ServerResponse[] = [];
    const body = await makeTarGz([{ name: 'Procfile', content: 'web: echo done\n' }]);
    const slow = files.serve('/held.tar.gz', (_req, res) => {
      res.writeHead(200, { 'content-length': String(body.length) });
      held.push(res);
    });
    const fast = files.serve('/queued.tar.gz', { body });
    const gone = files.serve('/never.tar.gz', { body });
    const one = await startAgentProcess({ args: ['--max-concurrent-downloads', '1'] });

    const first = await create(one, { node: 'first', source_url: slow, restart: 'never' });
    await waitFor(() => held.length === 1, { what: 'the first download to start' });
    const second = await create(one, { node: 'second', source_url: fast, restart: 'never' });
    const third = await create(one, { node: 'third', source_url: gone, restart: 'never' });
    // Several round trips while the first download holds the only slot: the others wait, they do not fail.
    for (let i = 0; i < 5; i++) {
      const doc = (await one.api(second.details)).body;
      expect(doc.state).toBe('downloading');
      expect(doc.progress).toBeNull();
      expect(files.hits('/queued.tar.gz')).toBe(0);
    }
    expect((await one.api(third.delete, { method: 'POST', body: '{}' })).status).toBe(200);
    held[0]!.end(body);
    for (const doc of [first, second]) {
      await waitFor(async () => (await one.api(doc.details)).body.state === 'exited', { what: `${doc.node} exited` });
    }
    expect(files.hits('/queued.tar.gz')).toBe(1);
    expect(files.hits('/never.tar.gz')).toBe(0);
    await one.stop();
  });
});

describe('--allow-source patterns', () => {
  it('match host globs, optional scheme and port, IPv6 in brackets', async () => {
    const { compileAllowList } = await import('../src/source/allow.js');
    const allow = compileAllowList(['https://*.example.com', 'codeload.github.com', '127.0.0.1:8080', '[::1]:*'])!;
    const ok = (url: string) => allow(new URL(url));
    expect(ok('https://a.example.com/x.tgz')).toBe(true);
    expect(ok('https://a.b.example.com/x.tgz')).toBe(true);
    expect(ok('http://a.example.com/x.tgz')).toBe(false);
    expect(ok('https://example.com.evil.net/x.tgz')).toBe(false);
    expect(ok('https://CODELOAD.github.com:8443/x')).toBe(true);
    expect(ok('http://127.0.0.1:8080/x')).toBe(true);
    expect(ok('http://127.0.0.1:8081/x')).toBe(false);
    expect(ok('http://[::1]:9/x')).toBe(true);
    expect(ok('http://user:pw@169.254.169.254/latest/meta-data')).toBe(false);
    expect(compileAllowList([])).toBeUndefined();
    expect(() => compileAllowList(['https://example.com/path'])).toThrow(/only \[scheme:\/\/\]host\[:port\]/);
    expect(() => compileAllowList(['user@example.com'])).toThrow();
  });
});

describe('download slots', () => {
  it('queue in order beyond the size and let an aborted waiter leave', async () => {
    const { Slots } = await import('../src/source/queue.js');
    const slots = new Slots(1);
    const order: string[] = [];
    const releaseA = await slots.acquire();
    const b = slots.acquire().then((release) => {
      order.push('b');
      return release;
    });
    const controller = new AbortController();
    const c = slots.acquire(controller.signal);
    const d = slots.acquire().then((release) => {
      order.push('d');
      return release;
    });
    expect(slots.queued).toBe(3);
    controller.abort();
    await expect(c).rejects.toMatchObject({ code: 'aborted' });
    expect(slots.queued).toBe(2);
    releaseA();
    const releaseB = await b;
    expect(order).toEqual(['b']);
    releaseB();
    releaseB(); // a second call is harmless
    (await d)();
    expect(order).toEqual(['b', 'd']);
    expect(slots.active).toBe(0);
  });
});
