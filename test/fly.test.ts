import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentError } from '../src/errors.js';
import { bootScript, exitStatusFromEvents, FlyClient, FlyExecutor, guestFor, guestProblem, META_SLUG } from '../src/executors/fly/index.js';
import type { Child, ChildSpec } from '../src/executors/types.js';
import { startAgentProcess, stopAllAgents } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { runCli } from './helpers/cli.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { pidsWithEnv, waitFor } from './helpers/wait.js';
import { rootPaths, startFlySim, type FlySim, type FlySimOptions } from './fly-sim/server.js';

const sims: FlySim[] = [];
async function sim(options: FlySimOptions = {}): Promise<FlySim> {
  const started = await startFlySim(options);
  sims.push(started);
  return started;
}

let files: FixtureServer;
let source: string;
beforeAll(async () => {
  files = await startFixtureServer();
  source = files.set('/app.tar.gz', { body: await appArchive('conformance', 'tar.gz') });
});
afterEach(() => stopAllAgents());
afterAll(async () => {
  await Promise.all(sims.map((s) => s.close()));
  await files?.close();
});

function executorFor(s: FlySim, more: Partial<ConstructorParameters<typeof FlyExecutor>[0]> = {}): FlyExecutor {
  return new FlyExecutor({ apiUrl: s.apiUrl, logsUrl: s.logsUrl, token: s.token, app: s.app, image: 'sim/busybox', instance: '/data/test', retryBaseMs: 20, ...more });
}

let seq = 0;
function spec(command: string, more: Partial<ChildSpec> = {}): ChildSpec {
  const marker = `fly-test-${process.pid}-${++seq}`;
  return {
    slug: `app.node-${seq}`,
    app: 'app',
    processType: 'web',
    command,
    env: { PATH: process.env.PATH!, PORT: '5123', FLY_TEST_MARKER: marker },
    cwd: '/nonexistent',
    port: 5123,
    sourceUrl: source,
    ...more,
  };
}

async function drain(child: Child): Promise<string> {
  let text = '';
  for await (const chunk of child.output) text += Buffer.from(chunk.data).toString();
  return text;
}

describe('guest sizes (validated the way Fly does)', () => {
  it.each([
    [{ cpu_kind: 'shared', cpus: 1, memory_mb: 256 }, null],
    [{ cpu_kind: 'shared', cpus: 1, memory_mb: 2048 }, null],
    [{ cpu_kind: 'shared', cpus: 8, memory_mb: 16384 }, null],
    [{ cpu_kind: 'shared', cpus: 6, memory_mb: 1536 }, null],
    [{ cpu_kind: 'performance', cpus: 1, memory_mb: 2048 }, null],
    [{ cpu_kind: 'performance', cpus: 16, memory_mb: 131072 }, null],
    [{ cpu_kind: 'performance', cpus: 2, memory_mb: 4352 }, null],
    [{ cpu_kind: 'shared', cpus: 1, memory_mb: 2304 }, /1-1 |256-2048 MB/],
    [{ cpu_kind: 'shared', cpus: 2, memory_mb: 256 }, /512-4096 MB/],
    [{ cpu_kind: 'shared', cpus: 1, memory_mb: 300 }, /multiple of 256/],
    [{ cpu_kind: 'shared', cpus: 3, memory_mb: 768 }, /1, 2, 4, 6, 8 vCPUs/],
    [{ cpu_kind: 'shared', cpus: 16, memory_mb: 4096 }, /vCPUs/],
    [{ cpu_kind: 'performance', cpus: 1, memory_mb: 1024 }, /2048-8192 MB/],
    [{ cpu_kind: 'performance', cpus: 6, memory_mb: 12288 }, /1, 2, 4, 8, 16 vCPUs/],
    [{ cpu_kind: 'performance', cpus: 1, memory_mb: 8448 }, /2048-8192 MB/],
    [{ cpu_kind: 'dedicated', cpus: 1, memory_mb: 256 }, /cpu_kind/],
    [{ cpu_kind: 'shared', cpus: 0.5, memory_mb: 256 }, /vCPUs/],
  ] as const)('%o → %s', (guest, problem) => {
    const found = guestProblem(guest as never);
    if (problem === null) expect(found).toBeNull();
    else expect(found).toMatch(problem);
  });

  it('resources → guest: shared by default, performance beyond 2 GB per vCPU, 400 invalid_resources otherwise', () => {
    expect(guestFor(undefined)).toEqual({ cpu_kind: 'shared', cpus: 1, memory_mb: 256 });
    expect(guestFor({ cpus: 2 })).toEqual({ cpu_kind: 'shared', cpus: 2, memory_mb: 512 });
    expect(guestFor({ memory_mb: 1024 })).toEqual({ cpu_kind: 'shared', cpus: 1, memory_mb: 1024 });
    expect(guestFor({ cpus: 1, memory_mb: 4096 })).toEqual({ cpu_kind: 'performance', cpus: 1, memory_mb: 4096 });
    for (const bad of [{ cpus: 3 }, { memory_mb: 100 }, { cpus: 0.5 }, { cpus: 1, memory_mb: 9216 }, { cpus: 32 }]) {
      let error: unknown;
      try {
        guestFor(bad);
      } catch (err) {
        error = err;
      }
      expect(error, JSON.stringify(bad)).toBeInstanceOf(AgentError);
      expect((error as AgentError).code).toBe('invalid_resources');
      expect((error as AgentError).status).toBe(400);
    }
  });

  it('the simulator refuses bad sizes with 422 and Fly\'s {error}, which becomes the AgentError message', async () => {
    const s = await sim();
    const client = new FlyClient({ apiUrl: s.apiUrl, logsUrl: s.logsUrl, token: s.token, app: s.app });
    const config = { image: 'x', init: { cmd: ['true'] }, env: {}, restart: { policy: 'no' as const }, guest: { cpu_kind: 'shared' as const, cpus: 1, memory_mb: 4096 } };
    const error = await client.createMachine({ config }).catch((err: unknown) => err as AgentError);
    expect(error).toBeInstanceOf(AgentError);
    expect(error).toMatchObject({ code: 'fly_api_error', status: 400 });
    expect((error as AgentError).message).toMatch(/create machine failed \(HTTP 422\): invalid guest: 1 shared vCPU take 256-2048 MB/);
    // A request the agent would refuse never reaches the API.
    const executor = executorFor(s);
    await expect(executor.start(spec('true', { resources: { cpus: 3 } }))).rejects.toMatchObject({ code: 'invalid_resources', status: 400 });
    expect(s.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });
});

describe('Fly API client against the simulator', () => {
  it('401 without or with a wrong token, as a clear error', async () => {
    const s = await sim();
    expect((await fetch(`${s.apiUrl}/apps/${s.app}/machines`)).status).toBe(401);
    const client = new FlyClient({ apiUrl: s.apiUrl, logsUrl: s.logsUrl, token: 'wrong', app: s.app });
    await expect(client.listMachines()).rejects.toMatchObject({ code: 'fly_unauthorized', message: expect.stringMatching(/refused the token \(HTTP 401\).*FLY_API_TOKEN/) });
    await expect(client.getLogs('x')).rejects.toMatchObject({ code: 'fly_unauthorized' });
    expect(s.requests.map((r) => r.status)).toEqual([401, 401, 401]);
  });

  it('404 for an unknown machine or app, with Fly\'s message', async () => {
    const s = await sim();
    const client = new FlyClient({ apiUrl: s.apiUrl, logsUrl: s.logsUrl, token: s.token, app: s.app });
    await expect(client.getMachine('nope')).rejects.toMatchObject({ code: 'fly_api_error', message: 'get machine nope failed (HTTP 404): machine not found' });
    const other = new FlyClient({ apiUrl: s.apiUrl, logsUrl: s.logsUrl, token: s.token, app: 'other' });
    await expect(other.listMachines()).rejects.toMatchObject({ message: expect.stringMatching(/app not found: other/) });
  });

  it('an unreachable API is fly_api_unreachable (503)', async () => {
    const client = new FlyClient({ apiUrl: 'http://127.0.0.1:1/v1', token: 't', app: 'a' });
    await expect(client.listMachines()).rejects.toMatchObject({ code: 'fly_api_unreachable', status: 503 });
  });

  it('429: retried with backoff until the per-machine, per-action bucket allows it', async () => {
    const s = await sim({ rateLimit: { perSecond: 5, burst: 1 } });
    const client = new FlyClient({ apiUrl: s.apiUrl, logsUrl: s.logsUrl, token: s.token, app: s.app, retryBaseMs: 50 });
    const machine = await client.createMachine({ config: { image: 'x', init: { cmd: ['true'] }, env: {}, guest: guestFor(undefined), restart: { policy: 'no' } }, skip_launch: true });
    const began = Date.now();
    const got = await Promise.all([1, 2, 3, 4].map(() => client.getMachine(machine.id)));
    expect(got.every((m) => m.id === machine.id)).toBe(true);
    const gets = s.requests.filter((r) => r.method === 'GET' && r.path.endsWith(machine.id));
    expect(gets.filter((r) => r.status === 429).length).toBeGreaterThan(0);
    expect(gets.filter((r) => r.status === 200)).toHaveLength(4);
    // 5 req/s, burst 1: four answers take at least ~0.6 s.
    expect(Date.now() - began).toBeGreaterThanOrEqual(550);
    // Another action on the same machine has its own bucket.
    await client.destroyMachine(machine.id);
    expect(s.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 200 });
  });

  it('429 that never clears becomes fly_rate_limited', async () => {
    const s = await sim({ rateLimit: { perSecond: 0.01, burst: 1 } });
    const client = new FlyClient({ apiUrl: s.apiUrl, logsUrl: s.logsUrl, token: s.token, app: s.app, retryBaseMs: 10, maxAttempts: 3 });
    const machine = await client.createMachine({ config: { image: 'x', init: { cmd: ['true'] }, env: {}, guest: guestFor(undefined), restart: { policy: 'no' } }, skip_launch: true });
    await client.getMachine(machine.id);
    await expect(client.getMachine(machine.id)).rejects.toMatchObject({ code: 'fly_rate_limited', status: 503 });
    expect(s.requests.filter((r) => r.status === 429)).toHaveLength(3);
  });

  it('the machine\'s exit code comes from its newest exit event', () => {
    const exit = (timestamp: number, exit_code: number, signal = -1) => ({ type: 'exit', timestamp, request: { exit_event: { exit_code, signal } } });
    expect(exitStatusFromEvents([exit(2, 3), { type: 'start', timestamp: 1 }, exit(1, 0)])).toEqual({ code: 3, signal: null });
    expect(exitStatusFromEvents([exit(1, -1, 9)])).toEqual({ code: null, signal: 'SIGKILL' });
    expect(exitStatusFromEvents([])).toEqual({ code: null, signal: null });
  });
});

describe('fly executor against the simulator', () => {
  it('creates the machine Fly expects, runs the command on the downloaded source, reports output and exit code, destroys it', async () => {
    const s = await sim();
    const executor = executorFor(s);
    const child = await executor.start(spec('echo "hi on $PORT from $(pwd)"; ls; exit 7', { region: 'ams', image: 'registry.fly.io/app:1', resources: { cpus: 2, memory_mb: 1024 } }));
    const [text, status] = await Promise.all([drain(child), child.exited]);
    expect(status).toEqual({ code: 7, signal: null });
    const machine = s.machines.get(child.id)!;
    expect(text).toContain(`hi on 5123 from ${machine.root}/app\n`);
    expect(text).toContain('Procfile\n');
    expect(machine.state).toBe('destroyed');
    const create = s.requests.find((r) => r.method === 'POST' && r.path === `/v1/apps/${s.app}/machines`)!.body as Record<string, any>;
    expect(create).toMatchObject({
      region: 'ams',
      skip_launch: true,
      config: {
        image: 'registry.fly.io/app:1',
        init: { entrypoint: ['/bin/sh', '-c'], cmd: [bootScript(source, 'echo "hi on $PORT from $(pwd)"; ls; exit 7')] },
        env: { PORT: '5123' },
        guest: { cpu_kind: 'shared', cpus: 2, memory_mb: 1024 },
        restart: { policy: 'no' },
        services: [{ protocol: 'tcp', internal_port: 5123 }],
        metadata: { [META_SLUG]: expect.stringMatching(/^app\.node-\d+$/) },
      },
    });
    expect(s.requests.map((r) => `${r.method} ${r.path.replace(child.id, 'ID')}`)).toEqual(
      expect.arrayContaining([`POST /v1/apps/${s.app}/machines/ID/start`, `GET /v1/apps/${s.app}/machines/ID/wait`, `GET /v1/apps/${s.app}/machines/ID`, `DELETE /v1/apps/${s.app}/machines/ID`]),
    );
    expect(s.requests.find((r) => r.method === 'DELETE')!.query).toEqual({ force: 'true' });
  });

  it('sources as zip and as a tarball with one top directory', async () => {
    const s = await sim();
    const executor = executorFor(s);
    for (const [file, body] of [
      ['/app.zip', await appArchive('conformance', 'zip')],
      ['/top.tar.gz', await appArchive('conformance', 'tar.gz', { topDir: 'repo-main' })],
    ] as const) {
      const child = await executor.start(spec('test -f Procfile && echo found-procfile', { sourceUrl: files.set(file, { body }) }));
      const [text, status] = await Promise.all([drain(child), child.exited]);
      expect(text, file).toContain('found-procfile');
      expect(status.code).toBe(0);
    }
  });

  it('a source the machine cannot download ends it non-zero before the command runs', async () => {
    const s = await sim();
    const child = await executorFor(s).start(spec('echo never', { sourceUrl: `${files.url}/missing.tar.gz` }));
    const [text, status] = await Promise.all([drain(child), child.exited]);
    expect(text).not.toContain('never');
    expect(status.code).not.toBe(0);
  });

  it('wait: 408 answers are waited again until the machine stops', async () => {
    const s = await sim({ rateLimit: null });
    const executor = executorFor(s, { child: { waitTimeoutS: 0.2 } });
    const child = await executor.start(spec('sleep 1; echo done'));
    const [text, status] = await Promise.all([drain(child), child.exited]);
    expect(text).toContain('done\n');
    expect(status.code).toBe(0);
    const waits = s.requests.filter((r) => r.path.endsWith('/wait'));
    expect(waits.filter((r) => r.status === 408).length).toBeGreaterThanOrEqual(2);
    expect(waits.at(-1)).toMatchObject({ status: 200, query: { state: 'stopped', timeout: '0.2' } });
  });

  it('stop: SIGTERM with the grace as Fly\'s timeout; the machine kills what ignores it', async () => {
    const s = await sim();
    const executor = executorFor(s);
    const child = await executor.start(spec("trap '' TERM; echo ready; while true; do sleep 1; done"));
    let text = '';
    const output = (async () => {
      for await (const chunk of child.output) text += Buffer.from(chunk.data).toString();
      return text;
    })();
    await waitFor(() => text.includes('ready\n'), { what: 'ready' });
    const marker = (s.requests.find((r) => r.method === 'POST')!.body as any).config.env.FLY_TEST_MARKER as string;
    const began = Date.now();
    await child.stop(1000);
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);
    expect(await child.exited).toEqual({ code: 137, signal: null });
    expect(await output).toContain('ready\n');
    expect(s.requests.find((r) => r.path.endsWith('/stop'))!.body).toEqual({ signal: 'SIGTERM', timeout: '1s' });
    expect(pidsWithEnv('FLY_TEST_MARKER', marker)).toEqual([]);
  });

  it('killAll destroys every machine at once', async () => {
    const s = await sim();
    const executor = executorFor(s);
    const children = await Promise.all([1, 2].map(() => executor.start(spec('echo up; sleep 600'))));
    await waitFor(() => children.every((c) => s.machines.get(c.id)?.state === 'started'), { what: 'started' });
    executor.killAll();
    const statuses = await Promise.all(children.map((c) => c.exited));
    expect(statuses.every((st) => st.code === 137)).toBe(true);
    expect(children.every((c) => s.machines.get(c.id)!.state === 'destroyed')).toBe(true);
    expect(executor.describe()).toMatchObject({ app: s.app, running: 0 });
  });

  it('the simulator rewrites /app and /tmp into the machine root', () => {
    expect(rootPaths('cd /app && x=/tmp/f; echo "/app/www" /application', '/r')).toBe('cd /r/app && x=/r/tmp/f; echo "/r/app/www" /application');
  });
});

describe('fly executor in the agent', () => {
  it('agent SIGINT stops and destroys its machines (the simulator\'s records)', async () => {
    const s = await sim();
    const agent = await startAgentProcess({
      args: ['--executor', 'fly', '--fly-api-url', s.apiUrl, '--fly-logs-url', s.logsUrl, '--fly-app', s.app, '--fly-image', 'sim/busybox'],
      env: { FLY_API_TOKEN: s.token },
    });
    for (const type of ['web', 'handler']) {
      const created = await agent.api('/create-process', { json: { app: 'conformance', node: type, process_type: type, source_url: source, env: { APP_NAME: 'x' } } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      await waitFor(async () => (await agent.api(created.body.details)).body.state === 'running', { what: `${type} running` });
    }
    await waitFor(() => s.machines.size === 2 && [...s.machines.values()].every((m) => m.state === 'started'), { what: 'two machines' });
    expect((await agent.stop('SIGINT')).code).toBe(0);
    for (const machine of s.machines.values()) {
      expect(machine.state).toBe('destroyed');
      const mine = s.requests.filter((r) => r.path.includes(machine.id));
      expect(mine.some((r) => r.method === 'POST' && r.path.endsWith('/stop') && (r.body as any).signal === 'SIGTERM')).toBe(true);
      expect(mine.some((r) => r.method === 'DELETE' && r.query.force === 'true' && r.status === 200)).toBe(true);
    }
  });

  it('after kill -9 the next agent destroys the machines its previous run left, and only those', async () => {
    const s = await sim();
    const args = ['--executor', 'fly', '--fly-api-url', s.apiUrl, '--fly-logs-url', s.logsUrl, '--fly-app', s.app, '--fly-image', 'sim/busybox'];
    const first = await startAgentProcess({ args, env: { FLY_API_TOKEN: s.token } });
    const neighbour = await startAgentProcess({ args, env: { FLY_API_TOKEN: s.token } });
    for (const agent of [first, neighbour]) {
      const created = await agent.api('/create-process', { json: { app: 'conformance', node: 'web', process_type: 'web', source_url: source, env: { APP_NAME: 'x' } } });
      await waitFor(async () => (await agent.api(created.body.details)).body.state === 'running', { what: 'running' });
    }
    const started = () => [...s.machines.values()].filter((m) => m.state === 'started');
    await waitFor(() => started().length === 2, { what: 'two machines' });
    await first.stop('SIGKILL');
    // Fly runs machines, not the agent: they outlive it.
    expect(started()).toHaveLength(2);
    const before = new Set(started().map((m) => m.id));

    const second = await startAgentProcess({ home: first.home, args, env: { FLY_API_TOKEN: s.token } });
    const sweep = await waitFor(() => second.logs.find((l) => l.msg === 'destroyed machines left behind by a previous run of this agent'));
    expect(sweep.machines).toHaveLength(1);
    const [leftover] = sweep.machines as string[];
    expect(s.machines.get(leftover!)?.state).toBe('destroyed');
    // The neighbour's machine was not touched; the restored process runs in a new machine.
    await waitFor(() => started().length === 2 && started().filter((m) => before.has(m.id)).length === 1, { what: 'neighbour kept, restored process relaunched' });
    await Promise.all([second.stop('SIGINT'), neighbour.stop('SIGINT')]);
  });

  it('refuses an impossible guest size at create (400), and mounts a volume at /data', async () => {
    const s = await sim();
    const agent = await startAgentProcess({
      args: ['--executor', 'fly', '--fly-api-url', s.apiUrl, '--fly-logs-url', s.logsUrl, '--fly-app', s.app, '--fly-image', 'sim/busybox'],
      env: { FLY_API_TOKEN: s.token },
    });
    const base = { app: 'conformance', process_type: 'web', source_url: source, env: { APP_NAME: 'x' } };
    const tooBig = await agent.api('/create-process', { json: { ...base, node: 'big', resources: { cpus: 3, memory_mb: 512 } } });
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.code).toBe('invalid_resources');
    expect(tooBig.body.error).toMatch(/vCPUs/);
    expect((await agent.api('/process-status/conformance.big')).status).toBe(404);

    const withVolume = await agent.api('/create-process', { json: { ...base, node: 'vol', volume: 'vol_abc123' } });
    expect(withVolume.status).toBe(201);
    await waitFor(async () => (await agent.api(withVolume.body.details)).body.state === 'running', { what: 'running' });
    const create = s.requests.find((r) => r.method === 'POST' && r.path.endsWith('/machines'));
    expect((create!.body as any).config.mounts).toEqual([{ volume: 'vol_abc123', path: '/data' }]);
    await agent.stop('SIGINT');
  });

  it('the token never reaches a child, even with --inherit-env *', async () => {
    const s = await sim();
    const agent = await startAgentProcess({
      args: ['--executor', 'fly', '--fly-api-url', s.apiUrl, '--fly-logs-url', s.logsUrl, '--fly-app', s.app, '--fly-image', 'img', '--inherit-env', '*'],
      env: { FLY_API_TOKEN: s.token },
    });
    const created = await agent.api('/create-process', { json: { app: 'conformance', node: 'env', process_type: 'env', source_url: source, restart: 'never' } });
    expect(created.status).toBe(201);
    await waitFor(async () => (await agent.api(created.body.details)).body.state === 'running', { what: 'env running' });
    expect([...s.machines.values()][0]!.config.env.PATH).toBe(process.env.PATH);
    expect(JSON.stringify([...s.machines.values()][0]!.config.env)).not.toContain(s.token);
  });

  it.each([
    [['--executor', 'fly', '--fly-app', 'a'], {}, /fly executor needs a Fly API token: set FLY_API_TOKEN/],
    [['--executors', 'local,fly', '--fly-app', 'a'], { FLY_API_TOKEN: '' }, /FLY_API_TOKEN/],
    [['--executor', 'fly'], { FLY_API_TOKEN: 't' }, /needs --fly-app/],
    [['--executor', 'fly', '--fly-app', 'a', '--fly-api-url', 'api.machines.dev'], { FLY_API_TOKEN: 't' }, /--fly-api-url must be an http\(s\) URL/],
  ])('serve %j exits 2 with a clear error', async (args, env, message) => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'pa-fly-'));
    const result = await runCli(['serve', '--port', '0', '--data-dir', path.join(home, 'data'), ...args], { env: { FLY_API_TOKEN: undefined, ...env } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
