import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { alive, pidsWithEnv, waitFor } from './helpers/wait.js';

let files: FixtureServer;
const archives: Record<string, string> = {};

beforeAll(async () => {
  files = await startFixtureServer();
  for (const name of ['walkthrough', 'envprec', 'signals', 'forker']) {
    archives[name] = files.set(`/${name}.tar.gz`, { body: await appArchive(name, 'tar.gz') });
  }
});

afterAll(async () => {
  await stopAllAgents();
  await files.close();
});

async function createRunning(agent: AgentProcess, body: Record<string, unknown>) {
  const created = await agent.api('/create-process', { method: 'POST', body: JSON.stringify(body) });
  expect(created.status).toBe(201);
  return waitFor(async () => {
    const { body: doc } = await agent.api(created.body.details);
    return doc.state === 'running' && doc;
  }, { what: `${created.body.slug} running` });
}

function collect(url: string): { frames: string[]; ws: WebSocket; closed: Promise<number> } {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  ws.on('message', (data) => frames.push(data.toString()));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return { frames, ws, closed };
}

describe('environment', () => {
  it('merges agent env < .env < Procfile prefixes < request env < PORT', async () => {
    const agent = await startAgentProcess({ env: { AGENT_SECRET: 'must-not-leak' } });
    const doc = await createRunning(agent, {
      app: 'env',
      node: 'n1',
      process_type: 'show',
      source_url: archives.envprec,
      env: { OVERRIDE_BY_REQUEST: 'request', PORT: '3' },
    });
    const { frames } = collect(`${doc.attach}?tail=100`);
    await waitFor(() => frames.some((line) => line.startsWith('PORT=')), { what: 'env lines' });
    expect(frames).toContain('FROM_DOTENV=dotenv');
    expect(frames).toContain('FROM_PROCFILE=procfile');
    expect(frames).toContain('OVERRIDE_BY_PROCFILE=procfile');
    expect(frames).toContain('OVERRIDE_BY_REQUEST=request');
    expect(frames).toContain(`PORT=${doc.port}`);
    expect(frames.some((line) => line.startsWith('PATH='))).toBe(true);
    // Only the --inherit-env allow-list of the agent's own environment reaches children.
    expect(frames.some((line) => line.startsWith('AGENT_SECRET'))).toBe(false);
    expect(doc.port).toBeGreaterThanOrEqual(20_000);
    await agent.stop();
  });

  it('gives every process its own PORT and the child can serve on it', async () => {
    const agent = await startAgentProcess();
    const [a, b] = await Promise.all(
      ['w1', 'w2'].map((node) => createRunning(agent, { app: 'web', node, process_type: 'web', source_url: archives.walkthrough, env: { GREETING: node } })),
    );
    expect(a.port).not.toBe(b.port);
    const answer = await waitFor(async () => (await fetch(`http://127.0.0.1:${a.port}/`)).text(), { what: 'child serving on PORT' });
    expect(answer).toBe('w1\n');
    await agent.stop();
  });
});

describe('restart', () => {
  it('restarts a crashing child with growing delays, showing backoff', async () => {
    const agent = await startAgentProcess();
    const created = await agent.api('/create-process', {
      method: 'POST',
      body: JSON.stringify({ app: 'crash', node: 'c1', process_type: 'crash', source_url: archives.walkthrough }),
    });
    const states = new Set<string>();
    const doc = await waitFor(async () => {
      const { body } = await agent.api(created.body.details);
      states.add(body.state);
      return body.restarts >= 4 && body;
    }, { what: '4 restarts', intervalMs: 5 });
    expect(states.has('backoff')).toBe(true);
    expect(doc.exit_code).toBe(3);
    const { frames } = collect(`${doc.attach}?tail=1500&format=json`);
    await waitFor(() => frames.filter((f) => JSON.parse(f).line.startsWith('restarting in')).length >= 4, { what: 'restart events' });
    const delays = frames
      .map((f) => JSON.parse(f).line as string)
      .filter((line) => line.startsWith('restarting in'))
      .map((line) => Number(/restarting in (\d+) ms/.exec(line)![1]));
    // 100 ms × 2ⁿ ± 25 %: each window is disjoint from the next, so the sequence must grow.
    expect(delays[0]).toBeGreaterThanOrEqual(75);
    expect(delays[0]).toBeLessThanOrEqual(125);
    for (let i = 1; i < 4; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1]!);
    expect(delays[3]).toBeGreaterThanOrEqual(600);
    await agent.stop();
  });

  it('a child that exits at once is restarted and its output is kept', async () => {
    const agent = await startAgentProcess();
    const created = await agent.api('/create-process', {
      method: 'POST',
      body: JSON.stringify({ app: 'once', node: 'o1', process_type: 'once', source_url: archives.walkthrough, env: { ONE_OFF: 'x' } }),
    });
    const doc = await waitFor(async () => {
      const { body } = await agent.api(created.body.details);
      return body.restarts >= 1 && body;
    });
    expect(doc.exit_code).toBe(0);
    const { frames } = collect(doc.attach);
    await waitFor(() => frames.filter((line) => line === 'done-x').length >= 2, { what: 'output of two runs' });
    await agent.stop();
  });
});

describe('stop', () => {
  it('delete of a child that ignores SIGTERM finishes after the grace period, by SIGKILL', async () => {
    const agent = await startAgentProcess({ args: ['--stop-timeout', '1s'] });
    const doc = await createRunning(agent, { app: 'sig', node: 's1', process_type: 'stubborn', source_url: archives.signals, env: { MARKER: 'stubborn-1' } });
    const { frames } = collect(doc.attach);
    await waitFor(() => frames.includes('ready'));
    const deleting = agent.api(doc.delete, { method: 'POST', body: '{}' });
    await waitFor(async () => (await agent.api(doc.details)).body.state === 'stopping', { what: 'stopping' });
    await waitFor(() => frames.includes('ignoring TERM'), { what: 'the child to see SIGTERM' });
    const answer = await deleting;
    expect(answer.status).toBe(200);
    // Answered only once the child had ended: nothing of it is left.
    expect(pidsWithEnv('MARKER', 'stubborn-1')).toEqual([]);
    await agent.stop();
  });

  it('SIGINT to the agent stops all 5 children in parallel and exits 0', async () => {
    const agent = await startAgentProcess({ args: ['--stop-timeout', '20s'] });
    const docs = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        createRunning(agent, { app: 'many', node: `h${i}`, process_type: 'handler', source_url: archives.signals, env: { MARKER: 'sigint-5', STOP_MS: '1000' } }),
      ),
    );
    const consoles = docs.map((doc) => collect(doc.attach));
    await waitFor(() => consoles.every((c) => c.frames.includes('ready')), { what: 'all ready' });
    expect(pidsWithEnv('MARKER', 'sigint-5').length).toBeGreaterThanOrEqual(5);
    const { code, signal } = await agent.stop('SIGINT');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // Every handler ran (graceful), and nothing is left.
    for (const c of consoles) expect(c.frames).toContain('got SIGTERM');
    expect(pidsWithEnv('MARKER', 'sigint-5')).toEqual([]);
    const stopped = agent.logs.find((entry) => entry.msg === 'all children stopped');
    expect(stopped).toBeTruthy();
  });

  it('kill -9 of the agent leaves no child, grandchild or setsid escapee alive', async () => {
    const agent = await startAgentProcess();
    const marker = `kill9-${process.pid}-${Date.now()}`;
    const docs = await Promise.all(
      [1, 2, 3].map((i) => createRunning(agent, { app: 'tree', node: `t${i}`, process_type: 'tree', source_url: archives.forker, env: { MARKER: marker } })),
    );
    const consoles = docs.map((doc) => collect(doc.attach));
    await waitFor(() => consoles.every((c) => c.frames.includes('ready')), { what: 'trees ready' });
    // Each tree: sh fork.sh + 3 sleeps (one orphaned, one in its own session), plus the namespace helpers.
    const before: number[] = await waitFor(() => {
      const pids = pidsWithEnv('MARKER', marker);
      return pids.length >= 12 ? pids : undefined;
    }, { what: 'all descendants' });
    await agent.stop('SIGKILL');
    await waitFor(() => before.every((pid) => !alive(pid)), { timeoutMs: 2000, what: 'no survivors 2 s after kill -9' });
    expect(pidsWithEnv('MARKER', marker)).toEqual([]);
  });
});

describe('console', () => {
  it('an attacher gets all 100k lines of a child that exits at once, in order, including the last', async () => {
    // A big console buffer: under CI load the test's own client may read slower than the agent sends, and what
    // this test checks is framing, order and the last line, not the slow-attacher bound.
    const agent = await startAgentProcess({ args: ['--console-buffer', '64MiB'] });
    const created = await agent.api('/create-process', {
      method: 'POST',
      body: JSON.stringify({ app: 'burst', node: 'b1', process_type: 'burst', source_url: archives.walkthrough, restart: 'never' }),
    });
    // Attach before the child starts (state pending): every line must arrive live.
    const { frames } = collect(created.body.attach);
    await waitFor(() => frames.length >= 100_001, { what: '100k lines', timeoutMs: 60_000 });
    expect(frames.length).toBe(100_001);
    for (let i = 0; i < 100_000; i++) {
      if (frames[i] !== `line ${i + 1}`) throw new Error(`frame ${i} is ${frames[i]}`);
    }
    expect(frames[100_000]).toBe('last line without newline');
    const doc = await waitFor(async () => {
      const { body } = await agent.api(created.body.details);
      return body.state === 'exited' && body;
    });
    expect(doc.exit_code).toBe(0);
    await agent.stop();
  });

  it('stdout and stderr both reach the console, each tagged in JSON mode', async () => {
    const agent = await startAgentProcess();
    const doc = await createRunning(agent, { app: 'streams', node: 'e1', process_type: 'both', source_url: archives.walkthrough });
    const { frames } = collect(`${doc.attach}?format=json`);
    await waitFor(() => frames.some((f) => JSON.parse(f).line === 'to-err') && frames.some((f) => JSON.parse(f).line === 'to-out'));
    const parsed = frames.map((f) => JSON.parse(f));
    expect(parsed.find((f) => f.line === 'to-out').stream).toBe('stdout');
    expect(parsed.find((f) => f.line === 'to-err').stream).toBe('stderr');
    expect(new Date(parsed[0].ts).getTime()).toBeGreaterThan(0);
    await agent.stop();
  });
});
