import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { waitFor } from './helpers/wait.js';

let agent: AgentProcess;
let files: FixtureServer;
let walkthroughUrl: string;

beforeAll(async () => {
  [agent, files] = await Promise.all([startAgentProcess(), startFixtureServer()]);
  walkthroughUrl = files.set('/app.tar.gz', { body: await appArchive('walkthrough', 'tar.gz'), type: 'application/gzip' });
});

afterAll(async () => {
  await stopAllAgents();
  await files.close();
});

const create = (body: unknown) => agent.api('/create-process', { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });

function request(overrides: Record<string, unknown> = {}) {
  return { app: 'myapp', node: `n${Math.random().toString(36).slice(2, 8)}`, process_type: 'greet', source_url: walkthroughUrl, ...overrides };
}

describe('index', () => {
  it('links create and list with absolute URLs built from the Host header', async () => {
    const { status, body } = await agent.api('/');
    expect(status).toBe(200);
    expect(body.create).toBe(`${agent.url}/create-process`);
    expect(body.list).toBe(`${agent.url}/list-processes`);

    // fetch may not set Host; a raw request can, as any proxy or client on another name would.
    const viaOtherHost = await new Promise<string>((resolve, reject) => {
      http.get(`${agent.url}/`, { headers: { Host: 'agent.example:9999' } }, (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    expect(JSON.parse(viaOtherHost).create).toBe('http://agent.example:9999/create-process');
  });

  it('echoes X-Request-Id and generates one when absent', async () => {
    const given = await agent.api('/', { headers: { 'X-Request-Id': 'req-123' } });
    expect(given.headers.get('x-request-id')).toBe('req-123');
    const generated = await agent.api('/');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('seed walk-through', () => {
  it('creates, reports, attaches and deletes a process field by field', async () => {
    const created = await create({ app: 'myapp', node: 'web.0', process_type: 'greet', source_url: walkthroughUrl, env: { GREETING: 'hi' } });
    expect(created.status).toBe(201);
    const doc = created.body;
    const base = agent.url;
    const wsBase = base.replace('http://', 'ws://');
    expect(doc).toMatchObject({
      app: 'myapp',
      node: 'web.0',
      slug: 'myapp.web.0',
      state: 'pending',
      attach: `${wsBase}/attach-console/myapp.web.0`,
      details: `${base}/process-status/myapp.web.0`,
      status: `${base}/process-status/myapp.web.0`,
      delete: `${base}/delete-process/myapp.web.0`,
      process_type: 'greet',
      source_url: walkthroughUrl,
      executor: 'local',
      restarts: 0,
      exit_code: null,
      exit_signal: null,
      error: null,
    });
    expect(created.headers.get('location')).toBe(doc.details);
    expect(typeof doc.port).toBe('number');
    expect(new Date(doc.created_at).toISOString()).toBe(doc.created_at);

    const running = await waitFor(async () => {
      const { body } = await agent.api(doc.details);
      return body.state === 'running' && body;
    }, { what: 'running' });
    expect(running.pid).toMatch(/^\d+$/);
    expect(running.started_at).not.toBeNull();

    const ws = new WebSocket(doc.attach);
    const frames: string[] = [];
    ws.on('message', (data) => frames.push(data.toString()));
    await waitFor(() => frames.includes('hi from walkthrough'), { what: 'greeting frame' });

    const listed = await agent.api('/list-processes');
    expect(listed.body.processes.map((p: { slug: string }) => p.slug)).toContain('myapp.web.0');

    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const deleted = await agent.api(doc.delete, { method: 'POST', body: '{}' });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({});
    expect(await closed).toBe(1000);
    expect((await agent.api(doc.details)).status).toBe(404);
  });

  it('lists processes in creation order', async () => {
    const slugs: string[] = [];
    for (const node of ['c', 'a', 'b']) {
      const { body } = await create(request({ app: 'order', node }));
      slugs.push(body.slug);
    }
    const { body } = await agent.api('/list-processes');
    const ours = body.processes.map((p: { slug: string }) => p.slug).filter((slug: string) => slug.startsWith('order.'));
    expect(ours).toEqual(['order.c', 'order.a', 'order.b']);
    await Promise.all(slugs.map((slug) => agent.api(`/delete-process/${slug}`, { method: 'POST', body: '{}' })));
  });
});

describe('create refuses bad requests with {error, code}', () => {
  const cases: Array<[string, string | Record<string, unknown>, string]> = [
    ['malformed JSON', '{"app": ', 'invalid_json'],
    ['a JSON array', '[]', 'invalid_body'],
    ['an empty body', '', 'invalid_json'],
    ['missing app', { node: 'x', process_type: 'web', source_url: 'http://x/a.tgz' }, 'missing_field'],
    ['missing source_url', { app: 'a', node: 'x', process_type: 'web' }, 'missing_field'],
    ['non-string node', { app: 'a', node: 5, process_type: 'web', source_url: 'http://x/a.tgz' }, 'invalid_field'],
    ['empty process_type', { app: 'a', node: 'x', process_type: '', source_url: 'http://x/a.tgz' }, 'invalid_field'],
    ['non-string env value', { app: 'a', node: 'x', process_type: 'web', source_url: 'http://x/a.tgz', env: { A: 1 } }, 'invalid_field'],
    ['unknown field', { app: 'a', node: 'x', process_type: 'web', source_url: 'http://x/a.tgz', colour: 'red' }, 'unknown_field'],
    ['app with a slash', { app: 'a/b', node: 'x', process_type: 'web', source_url: 'http://x/a.tgz' }, 'invalid_name'],
    ['node with ..', { app: 'a', node: 'x..y', process_type: 'web', source_url: 'http://x/a.tgz' }, 'invalid_name'],
    ['app starting with a dot', { app: '.a', node: 'x', process_type: 'web', source_url: 'http://x/a.tgz' }, 'invalid_name'],
    ['unknown executor', { app: 'a', node: 'x', process_type: 'web', source_url: 'http://x/a.tgz', executor: 'moon' }, 'unknown_executor'],
  ];

  it.each(cases)('%s → 400 %s', async (_name, body, code) => {
    const { status, body: answer } = await create(body);
    expect(status).toBe(400);
    expect(answer.code).toBe(code);
    expect(typeof answer.error).toBe('string');
    expect(answer.error.length).toBeGreaterThan(5);
    // The agent stays up and created nothing.
    const listed = await agent.api('/list-processes');
    expect(listed.body.processes.some((p: { app: string }) => p.app === 'a')).toBe(false);
  });

  it('a duplicate slug → 409 slug_exists', async () => {
    const body = request();
    expect((await create(body)).status).toBe(201);
    const again = await create(body);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('slug_exists');
    await agent.api(`/delete-process/${body.app}.${body.node}`, { method: 'POST', body: '{}' });
  });
});

describe('output channels', () => {
  it('prints nothing on stdout; its log lines on stderr are JSON with the request id', async () => {
    await agent.api('/', { headers: { 'X-Request-Id': 'log-check-1' } });
    await waitFor(() => agent.logs.some((entry) => entry.requestId === 'log-check-1'), { what: 'the request log line' });
    expect(agent.stdout()).toBe('');
    expect(agent.logs.filter((entry) => 'raw' in entry)).toEqual([]);
  });
});

describe('unknown slugs', () => {
  it('status → 404 not_found', async () => {
    const { status, body } = await agent.api('/process-status/nope.nope');
    expect(status).toBe(404);
    expect(body.code).toBe('not_found');
  });

  it('delete → 404 not_found', async () => {
    const { status, body } = await agent.api('/delete-process/nope.nope', { method: 'POST', body: '{}' });
    expect(status).toBe(404);
    expect(body.code).toBe('not_found');
  });

  it('attach → plain HTTP 404 before any upgrade', async () => {
    const ws = new WebSocket(`${agent.url.replace('http', 'ws')}/attach-console/nope.nope`);
    const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(404);
  });

  it('an unknown route → 404 JSON', async () => {
    const { status, body } = await agent.api('/no-such-route');
    expect(status).toBe(404);
    expect(body.code).toBe('not_found');
  });
});
