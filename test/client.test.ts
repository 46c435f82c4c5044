import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentApiError,
  AgentClient,
  AgentClientError,
  AgentUnreachableError,
  AgentWaitTimeoutError,
  type ConsoleFrame,
  type RequestLogEntry,
} from '../src/client/index.js';
import { ROOT, startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { deadPort, startPrefixProxy, type PrefixProxy } from './helpers/cli.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);

let agent: AgentProcess;
let files: FixtureServer;
let proxy: PrefixProxy;
let source: string;

beforeAll(async () => {
  [agent, files] = await Promise.all([startAgentProcess(), startFixtureServer()]);
  source = files.set('/cli.tar.gz', { body: await appArchive('cli', 'tar.gz'), type: 'application/gzip' });
  proxy = await startPrefixProxy(agent.url);
});

afterAll(async () => {
  await proxy?.close();
  await stopAllAgents();
  await files?.close();
});

const node = () => `n${Math.random().toString(36).slice(2, 8)}`;

describe('AgentClient (hypermedia)', () => {
  it('only ever requests the root and URLs found in documents (agent served under a path prefix)', async () => {
    const log: RequestLogEntry[] = [];
    const client = new AgentClient({ url: proxy.root, token: 'tkn-1', onRequest: (entry) => log.push(entry) });

    const index = await client.index();
    expect(index.create).toBe(`${proxy.root}create-process`);

    const created = await client.create({ app: 'hyper', node: 'e', process_type: 'echoer', source_url: source });
    expect(created).toMatchObject({ slug: 'hyper.e', state: 'pending' });
    expect(created.details).toBe(`${proxy.root}process-status/hyper.e`);

    const running = await client.waitFor('hyper.e', ['running'], { intervalMs: 50, timeoutMs: 20_000 });
    expect(running.state).toBe('running');
    expect(running.pid).toMatch(/^\d+$/);

    expect((await client.list()).map((doc) => doc.slug)).toContain('hyper.e');
    expect((await client.status('hyper.e')).state).toBe('running');
    expect((await client.status(running)).slug).toBe('hyper.e');

    const frames: ConsoleFrame[] = [];
    const console1 = await client.attach('hyper.e', { format: 'json', tail: 10, onLine: (frame) => frames.push(frame) });
    console1.send('ping over the proxy');
    await waitFor(() => frames.some((frame) => frame.stream === 'stdout' && frame.line === 'ping over the proxy'), { what: 'echoed line' });
    expect(frames.find((frame) => frame.stream === 'agent')?.line).toMatch(/^started pid \d+$/);

    await waitFor(async () => (await client.output('hyper.e')) === 'ping over the proxy\n', { what: 'output link' });
    expect(await client.output(running, { tail: 0 })).toBe('');

    const textLines: string[] = [];
    const console2 = await client.attach(running, { onLine: (frame) => textLines.push(frame.line) });
    await waitFor(() => textLines.includes('ping over the proxy'), { what: 'scrollback in text mode' });
    console2.close();
    expect((await console2.closed).byClient).toBe(true);

    await client.delete('hyper.e');
    const closed = await console1.closed;
    expect(closed).toMatchObject({ code: 1000, byClient: false });
    await expect(client.status('hyper.e')).rejects.toMatchObject({ status: 404, code: 'not_found' });

    // Every request was for the root or a link the proxy had served, under the prefix, with the bearer token.
    expect(proxy.requests.length).toBeGreaterThan(8);
    for (const request of proxy.requests) {
      expect(request, request.url).toMatchObject({ known: true, authorization: 'Bearer tkn-1' });
      expect(request.url.replace(/^ws/, 'http').startsWith(proxy.root)).toBe(true);
    }
    expect(proxy.requests.some((request) => request.url.startsWith('ws://') && request.url.includes('format=json'))).toBe(true);
    // The logging hook saw them all, with status and duration.
    expect(log.find((entry) => entry.method === 'POST' && entry.url.endsWith('/create-process'))).toMatchObject({ status: 201 });
    expect(log.every((entry) => typeof entry.ms === 'number')).toBe(true);
  });

  it('throws AgentApiError with status, code and message', async () => {
    const client = new AgentClient(agent.url);
    // A type the Procfile lacks: the process settles at once and deletes without a stop.
    const request = { app: 'errs', node: node(), process_type: 'nope', source_url: source };
    await client.create(request);
    const duplicate = await client.create(request).catch((err: unknown) => err);
    expect(duplicate).toBeInstanceOf(AgentApiError);
    expect(duplicate).toBeInstanceOf(AgentClientError);
    expect(duplicate).toMatchObject({ status: 409, code: 'slug_exists', method: 'POST' });
    expect((duplicate as Error).message).toMatch(/errs\./);

    await expect(client.create({ ...request, app: 'a/b' })).rejects.toMatchObject({ status: 400, code: 'invalid_name' });
    await expect(client.status('no.such')).rejects.toMatchObject({ name: 'AgentApiError', status: 404, code: 'not_found' });
    await expect(client.delete('no.such')).rejects.toBeInstanceOf(AgentApiError);

    // A stale document: its links now answer 404 (the console's before the upgrade).
    const doc = await client.status(`${request.app}.${request.node}`);
    await client.delete(doc);
    await expect(client.status(doc)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    await expect(client.attach(doc)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    await expect(client.delete(doc)).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });

  it('throws AgentUnreachableError with the system code when nothing listens', async () => {
    const port = await deadPort();
    const client = new AgentClient(`http://127.0.0.1:${port}`);
    const err = await client.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentUnreachableError);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', url: `http://127.0.0.1:${port}/` });
    expect((err as Error).message).toBe(`cannot reach agent at http://127.0.0.1:${port}/: ECONNREFUSED`);
  });

  it('waitFor resolves on a settled state and times out with the last document', async () => {
    const client = new AgentClient(agent.url);
    const updates: string[] = [];
    const bad = await client.create({ app: 'waits', node: node(), process_type: 'nope', source_url: source });
    const settled = await client.waitFor(bad, ['running'], { intervalMs: 50, onUpdate: (doc) => updates.push(doc.state) });
    expect(settled).toMatchObject({ state: 'unknown process type', error_code: 'unknown_process_type' });
    expect(settled.error).toMatch(/no process type 'nope'/);
    expect(updates.at(-1)).toBe('unknown process type');
    await client.delete(settled);

    const slow = await client.create({ app: 'waits', node: node(), process_type: 'nope', source_url: source });
    const timeout = await client.waitFor(slow, () => false, { intervalMs: 50, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(timeout).toBeInstanceOf(AgentWaitTimeoutError);
    expect((timeout as AgentWaitTimeoutError).last).toMatchObject({ slug: slow.slug });
    await client.delete(slow);
  });

  it("is exported by the package: import { AgentClient } from 'procfile-agent'", async () => {
    const pkg = await import('../src/index.js');
    expect(pkg.AgentClient).toBe(AgentClient);
    expect(pkg.AgentApiError).toBe(AgentApiError);
    expect(pkg.AgentUnreachableError).toBe(AgentUnreachableError);
    // And through the package name, as a user imports it (the built dist/).
    const script = `import { AgentClient } from 'procfile-agent';
      const docs = await new AgentClient(process.argv[1]).list();
      console.log(docs.length >= 0 ? 'ok' : 'bad');`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, agent.url], { cwd: ROOT });
    expect(stdout).toBe('ok\n');
  });
});
