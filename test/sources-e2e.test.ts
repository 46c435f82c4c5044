import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { gitArchive, FIXTURE_APPS, makeTarGz, makeZip } from './helpers/archives.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { deadPort } from './helpers/net.js';
import { waitFor } from './helpers/wait.js';

let agent: AgentProcess;
let files: FixtureServer;
let counter = 0;

beforeAll(async () => {
  [agent, files] = await Promise.all([startAgentProcess(), startFixtureServer()]);
});

afterAll(async () => {
  await stopAllAgents();
  await files.close();
});

/** Creates a process and waits until it reaches one of `states`. */
async function createUntil(body: Record<string, unknown>, states: string[]) {
  const node = `n${++counter}`;
  const created = await agent.api('/create-process', { method: 'POST', body: JSON.stringify({ app: 'src', node, process_type: 'web', ...body }) });
  expect(created.status).toBe(201);
  return waitFor(async () => {
    const { body: doc } = await agent.api(created.body.details);
    return states.includes(doc.state) && doc;
  }, { what: `state in ${states.join('|')}` });
}

async function firstLine(attach: string): Promise<string> {
  const ws = new WebSocket(attach);
  const line = await new Promise<string>((resolve) => ws.once('message', (data) => resolve(data.toString())));
  ws.close();
  return line;
}

/** Nothing but the data dir may appear in the agent's home. */
async function expectNothingOutsideDataDir(): Promise<void> {
  expect(await readdir(agent.home)).toEqual(['data']);
}

describe('archive formats', () => {
  it.each([
    ['tar', 'application/x-tar'],
    ['tar.gz', 'application/gzip'],
    ['zip', 'application/zip'],
  ] as const)('runs an app from a %s archive', async (format, type) => {
    const url = files.set(`/hello.${format}`, { body: await appArchive('hello', format), type });
    const doc = await createUntil({ source_url: url, process_type: 'greet', restart: 'never' }, ['exited', 'unpack failure']);
    expect(doc.state).toBe('exited');
    expect(doc.exit_code).toBe(0);
    // bin/greet is an executable script: its mode survived the archive.
    expect(await firstLine(doc.attach)).toMatch(/greet/);
  });

  it.each(['tar', 'tar.gz', 'zip'] as const)('finds the Procfile inside a GitHub-style single top directory (%s)', async (format) => {
    const url = files.set(`/github.${format}`, { body: await gitArchive(`${FIXTURE_APPS}/hello`, 'owner-hello-0123abc', format) });
    const doc = await createUntil({ source_url: url, process_type: 'web', restart: 'never' }, ['exited', 'no procfile']);
    expect(doc.state).toBe('exited');
    expect(await firstLine(doc.attach)).toBe('hello');
  });

  it('detects the format from magic bytes when the Content-Type says nothing', async () => {
    const url = files.set('/untyped', { body: await appArchive('hello', 'zip'), type: 'application/octet-stream' });
    const doc = await createUntil({ source_url: url, restart: 'never' }, ['exited', 'unpack failure']);
    expect(doc.state).toBe('exited');
  });

  it('shares one unpacked tree between processes of the same archive and reports progress', async () => {
    const url = files.set('/shared.tar.gz', { body: await appArchive('hello', 'tar.gz') });
    const [a, b] = await Promise.all([
      createUntil({ source_url: url, restart: 'never' }, ['exited']),
      createUntil({ source_url: url, restart: 'never' }, ['exited']),
    ]);
    expect(a.progress.bytes).toBeGreaterThan(0);
    expect(a.progress.total).toBe(a.progress.bytes);
    expect(b.progress.bytes).toBe(a.progress.bytes);
    const trees = await readdir(`${agent.dataDir}/trees`);
    expect(trees.length).toBeGreaterThanOrEqual(1);
    expect(new Set(trees).size).toBe(trees.length);
  });
});

describe('failure states', () => {
  it('a 404 source → download failure naming the status', async () => {
    const doc = await createUntil({ source_url: `${files.url}/missing.tar.gz` }, ['download failure']);
    expect(doc.error_code).toBe('download_failed');
    expect(doc.error).toMatch(/404/);
    await expectNothingOutsideDataDir();
  });

  it('an unreachable host → download failure naming the cause', async () => {
    const doc = await createUntil({ source_url: `http://127.0.0.1:${await deadPort()}/app.tgz` }, ['download failure']);
    expect(doc.error_code).toBe('download_failed');
    expect(doc.error).toMatch(/ECONNREFUSED/);
  });

  it('a non-http URL → download failure', async () => {
    const doc = await createUntil({ source_url: 'file:///etc/passwd' }, ['download failure']);
    expect(doc.error_code).toBe('source_url_invalid');
  });

  it('a corrupt archive → unpack failure', async () => {
    const good = await appArchive('hello', 'tar.gz');
    const url = files.set('/truncated.tar.gz', { body: good.subarray(0, Math.floor(good.length / 2)), type: 'application/gzip' });
    const doc = await createUntil({ source_url: url }, ['unpack failure']);
    expect(doc.error_code).toBe('unpack_failed');
    await expectNothingOutsideDataDir();
    expect(await readdir(`${agent.dataDir}/tmp`)).toEqual([]);
  });

  it.each(['tar.gz', 'zip'] as const)('a ../ entry (%s) → unpack failure, nothing written outside the data dir', async (format) => {
    const entries = [
      { name: 'Procfile', content: 'web: echo hi\n' },
      { name: '../../evil', content: 'pwned' },
    ];
    const body = format === 'zip' ? makeZip(entries) : await makeTarGz(entries);
    const url = files.set(`/evil.${format}`, { body });
    const doc = await createUntil({ source_url: url }, ['unpack failure']);
    expect(doc.error_code).toBe('unpack_refused_entry');
    expect(doc.error).toMatch(/\.\.\/\.\.\/evil/);
    await expectNothingOutsideDataDir();
    expect(await readdir(`${agent.dataDir}/tmp`)).toEqual([]);
  });

  it('an archive without a Procfile → no procfile', async () => {
    const url = files.set('/noprocfile.tar.gz', { body: await appArchive('no-procfile', 'tar.gz') });
    const doc = await createUntil({ source_url: url }, ['no procfile']);
    expect(doc.error_code).toBe('no_procfile');
  });

  it('a process type the Procfile lacks → unknown process type, listing the known ones', async () => {
    const url = files.set('/hello-unknown.tar.gz', { body: await appArchive('hello', 'tar.gz') });
    const doc = await createUntil({ source_url: url, process_type: 'worker' }, ['unknown process type']);
    expect(doc.error_code).toBe('unknown_process_type');
    expect(doc.error).toMatch(/worker.*web/);
  });

  it('failure states are terminal, stay listed, and delete at once', async () => {
    const doc = await createUntil({ source_url: `${files.url}/missing-again.tar.gz` }, ['download failure']);
    const listed = await agent.api('/list-processes');
    expect(listed.body.processes.find((p: { slug: string }) => p.slug === doc.slug).state).toBe('download failure');
    expect((await agent.api(doc.details)).body.restarts).toBe(0);
    const deleted = await agent.api(doc.delete, { method: 'POST', body: '{}' });
    expect(deleted.status).toBe(200);
    expect((await agent.api(doc.details)).status).toBe(404);
  });
});
