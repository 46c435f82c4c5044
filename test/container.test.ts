import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LABEL_AGENT, LABEL_APP, LABEL_PROCESS_TYPE, LABEL_SLUG } from '../src/executors/container/index.js';
import { CLI, startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { checkEngine, containersLabelled, describeWithEngine, removeContainersOf, TEST_IMAGE } from './helpers/podman.js';
import { waitFor } from './helpers/wait.js';

// Container-executor specifics (the shared behaviour is in test/conformance/). Docs: docs/executors.md.
const engine = await checkEngine();

let files: FixtureServer;
let source: string;

beforeAll(async () => {
  files = await startFixtureServer();
  source = files.set('/conformance.tar.gz', { body: await appArchive('conformance', 'tar.gz') });
});

const dataDirs = new Set<string>();

afterAll(async () => {
  await stopAllAgents();
  if (engine.usable) await removeContainersOf(engine.docker, LABEL_AGENT, dataDirs);
  await files?.close();
});

/** Every agent of this file, so that afterAll can remove what a failed test left behind. */
async function startAgent(options: Parameters<typeof startAgentProcess>[0]): Promise<AgentProcess> {
  const agent = await startAgentProcess(options);
  dataDirs.add(agent.dataDir);
  return agent;
}

let seq = 0;
function request(processType: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  return { app: 'ctr', node: `${processType}-${++seq}`, process_type: processType, source_url: source, executor: 'container', ...more };
}

async function create(agent: AgentProcess, body: Record<string, unknown>): Promise<Record<string, any>> {
  const created = await agent.api('/create-process', { json: body });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

async function running(agent: AgentProcess, doc: Record<string, any>): Promise<Record<string, any>> {
  return waitFor(async () => {
    const { body } = await agent.api(doc.details);
    if (body.state !== 'running' && body.error) throw new Error(`${body.state}: ${body.error}`);
    return body.state === 'running' && body;
  }, { what: `${doc.slug} running` });
}

function consoleOf(url: string): { frames: string[]; closed: Promise<number> } {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  ws.on('message', (data) => frames.push(data.toString()));
  return { frames, closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))) };
}

function containerArgs(...more: string[]): string[] {
  return ['--executors', 'container,local', '--docker-socket', engine.socket, '--container-image', TEST_IMAGE, ...more];
}

describe('container executor without an engine', () => {
  it('an unreachable engine socket is a clear error on the process; the agent stays up', async () => {
    const agent = await startAgent({ args: ['--executor', 'container', '--docker-socket', '/nonexistent.sock'] });
    expect(agent.logs.some((l) => l.msg === 'container engine unreachable: container processes will fail to start until it answers')).toBe(true);
    const doc = await create(agent, request('web'));
    const failed = await waitFor(async () => {
      const { body } = await agent.api(doc.details);
      return body.error_code === 'engine_unreachable' && body;
    }, { what: 'engine_unreachable on the process' });
    expect(failed.error).toContain('/nonexistent.sock');
    expect(['starting', 'backoff']).toContain(failed.state);
    expect(failed.pid).toBeNull();
    // Still serving, and /healthz says why.
    const health = await agent.api('/healthz');
    const container = health.body.executors.find((e: { name: string }) => e.name === 'container');
    expect(container.engine.reachable).toBe(false);
    expect(container.engine.error).toContain('/nonexistent.sock');
    expect((await agent.api(doc.delete, { json: {} })).status).toBe(200);
    expect((await agent.stop('SIGINT')).code).toBe(0);
  });

  it('an unknown executor at start-up is one clear line and exit 2', async () => {
    const result = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', path.join(os.tmpdir(), `pa-bad-${process.pid}`), '--executors', 'local,kubernetes'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe("procfile-agent serve: unknown executor 'kubernetes' (known: local, container, fly)");
  });
});

describeWithEngine(engine, 'container executor (real engine)', () => {
  it('a missing image keeps the process in backoff with error_code image_not_found; the agent stays up', async () => {
    const agent = await startAgent({ args: containerArgs() });
    const image = 'localhost/procfile-agent-no-such-image:latest';
    const doc = await create(agent, request('web', { image }));
    const failed = await waitFor(async () => {
      const { body } = await agent.api(doc.details);
      return body.error_code === 'image_not_found' && body.state === 'backoff' && body;
    }, { what: 'image_not_found in backoff' });
    expect(failed.error).toContain(image);
    expect(failed.error).toMatch(/never pulls/);
    const console = consoleOf(`${doc.attach}?format=json&tail=100`);
    await waitFor(() => console.frames.some((f) => JSON.parse(f).line.startsWith('could not start: image')), { what: 'the failure in the console' });
    expect((await agent.api('/')).status).toBe(200);
    expect((await agent.api(doc.delete, { json: {} })).status).toBe(200);
    expect(await containersLabelled(engine.docker, LABEL_AGENT, agent.dataDir)).toEqual([]);
    await agent.stop('SIGINT');
  });

  it('publishes PORT on the same host port, bind-mounts the app read-only at /app, labels and sizes the container', async () => {
    const agent = await startAgent({ args: containerArgs() });
    const web = await running(agent, await create(agent, request('serve', { image: TEST_IMAGE, resources: { cpus: 0.5, memory_mb: 64 } })));
    const page = await waitFor(async () => {
      const response = await fetch(`http://127.0.0.1:${web.port}/`);
      return response.ok && response.text();
    }, { what: 'the container serving on its PORT' });
    expect(page).toBe('served by busybox httpd from a container\n');

    const [info] = await containersLabelled(engine.docker, LABEL_SLUG, web.slug);
    expect(info).toBeDefined();
    expect(info!.Labels).toMatchObject({ [LABEL_SLUG]: web.slug, [LABEL_APP]: 'ctr', [LABEL_PROCESS_TYPE]: 'serve', [LABEL_AGENT]: agent.dataDir });
    expect(info!.Names[0]!.replace(/^\//, '')).toMatch(new RegExp(`^${web.slug.replace(/\./g, '\\.')}-[0-9a-f]{8}$`));
    expect(info!.Id.startsWith(web.pid)).toBe(true);
    const inspected = await engine.docker.getContainer(info!.Id).inspect();
    expect(inspected.HostConfig.NanoCpus).toBe(500_000_000);
    expect(inspected.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(inspected.Config.WorkingDir).toBe('/app');

    const where = await running(agent, await create(agent, request('where')));
    const console = consoleOf(`${where.attach}?tail=100`);
    await waitFor(() => console.frames.some((f) => f.startsWith('app-')), { what: 'where output' });
    expect(console.frames).toEqual(['cwd=/app', 'tmp-writable', 'app-read-only']);
    expect((await agent.stop('SIGINT')).code).toBe(0);
  });

  it('a delete while the container is still being started ends it too', async () => {
    const agent = await startAgent({ args: containerArgs() });
    const doc = await create(agent, request('plain'));
    await waitFor(async () => (await agent.api(doc.details)).body.state === 'starting', { what: 'starting', intervalMs: 2 });
    expect((await agent.api(doc.delete, { json: {} })).status).toBe(200);
    await waitFor(async () => (await containersLabelled(engine.docker, LABEL_AGENT, agent.dataDir)).length === 0, { what: 'no container left', timeoutMs: 10_000 });
    await agent.stop('SIGINT');
  });

  it('agent SIGINT removes every container it started', async () => {
    const agent = await startAgent({ args: containerArgs('--stop-timeout', '2s') });
    const docs = await Promise.all(['web', 'handler', 'stubborn'].map((type) => create(agent, request(type))));
    await Promise.all(docs.map((doc) => running(agent, doc)));
    expect(await containersLabelled(engine.docker, LABEL_AGENT, agent.dataDir)).toHaveLength(3);
    const { code, signal } = await agent.stop('SIGINT');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(await containersLabelled(engine.docker, LABEL_AGENT, agent.dataDir)).toEqual([]);
  });

  it('after kill -9 the next agent on the same data dir removes its leftovers, and only its own', async () => {
    const first = await startAgent({ args: containerArgs() });
    await Promise.all(['web', 'plain'].map(async (type) => running(first, await create(first, request(type)))));
    const neighbour = await startAgent({ args: containerArgs() });
    const other = await running(neighbour, await create(neighbour, request('web')));

    await first.stop('SIGKILL');
    // The engine, not the agent, runs containers: they outlive a SIGKILLed agent.
    const left = await containersLabelled(engine.docker, LABEL_AGENT, first.dataDir);
    expect(left.map((c) => c.State)).toEqual(['running', 'running']);

    const second = await startAgent({ args: containerArgs(), home: first.home });
    const leftIds = left.map((c) => c.Id);
    const sweep = second.logs.find((l) => l.msg === 'removed containers left behind by a previous run of this agent');
    expect(sweep?.containers).toHaveLength(2);
    // The leftovers are gone; persistence brings both processes back, each in a fresh container.
    await waitFor(async () => {
      const now = await containersLabelled(engine.docker, LABEL_AGENT, first.dataDir);
      return now.length === 2 && now.every((c) => !leftIds.includes(c.Id) && c.State === 'running');
    }, { what: 'two fresh containers for the restored processes' });
    // Another agent's container on the same engine is not touched.
    expect((await neighbour.api(other.details)).body.state).toBe('running');
    expect(await containersLabelled(engine.docker, LABEL_AGENT, neighbour.dataDir)).toHaveLength(1);
    await Promise.all([second.stop('SIGINT'), neighbour.stop('SIGINT')]);
    expect(await containersLabelled(engine.docker, LABEL_AGENT, neighbour.dataDir)).toEqual([]);
  });
});
