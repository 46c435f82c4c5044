import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAgentProcess, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { appArchive } from '../helpers/app-archive.js';
import { startFixtureServer, type FixtureServer } from '../helpers/http-fixture.js';
import { pidsWithEnv, waitFor } from '../helpers/wait.js';

/**
 * The executor conformance suite: one set of behaviours (DESIGN §1, §4, §5) that every executor shows through the
 * real agent, with the same app (fixtures/apps/conformance: POSIX sh that a busybox container also runs).
 * Only what the executors legitimately differ in is allowed to differ (see docs/executors.md).
 */
export interface ConformanceHooks {
  /** What an executor might leave behind of an agent's children (e.g. containers by label); [] when nothing. */
  leftovers?: (agent: AgentProcess) => Promise<string[]>;
  /** After a failed test (agents are SIGKILLed in afterAll): remove whatever the agent's children left. */
  cleanup?: (agent: AgentProcess) => Promise<void>;
  /** The executor delivers stdout and stderr as one stream (Fly's logs API): stderr lines may arrive as stdout. */
  mergedOutput?: boolean;
  /** Cases that cannot apply to this executor, by title, with the reason (shown in the skipped case's name). */
  skip?: Record<string, string>;
}

interface Console {
  frames: string[];
  ws: WebSocket;
  closed: Promise<number>;
  opened: Promise<void>;
}

function attach(url: string): Console {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  ws.on('message', (data) => frames.push(data.toString()));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { frames, ws, closed, opened };
}

/** Lines of a `?format=json` console. */
function lines(frames: string[], stream?: string): string[] {
  return frames.map((f) => JSON.parse(f) as { stream: string; line: string }).filter((f) => !stream || f.stream === stream).map((f) => f.line);
}

export function defineConformanceSuite(name: string, agentArgs: string[], extraRequestFields: Record<string, unknown>, hooks: ConformanceHooks = {}): void {
  describe(`executor conformance: ${name}`, () => {
    const test = (title: string, fn: () => Promise<void>): void => {
      const reason = hooks.skip?.[title];
      if (reason) it.skip(`${title} (skipped: ${reason})`, fn);
      else it(title, fn);
    };
    let files: FixtureServer;
    let source: string;
    let agent: AgentProcess;
    // Every child of this suite carries it, so nothing of them can hide from pidsWithEnv (containers included).
    const marker = `conformance-${name}-${process.pid}-${Date.now()}`;
    let seq = 0;

    beforeAll(async () => {
      files = await startFixtureServer();
      source = files.set('/conformance.tar.gz', { body: await appArchive('conformance', 'tar.gz') });
      agent = await startAgentProcess({
        args: [...agentArgs, '--stop-timeout', '20s', '--inherit-env', 'PATH,FROM_AGENT*'],
        env: { FROM_AGENT: 'agent', FROM_AGENT_OVERRIDDEN: 'agent', AGENT_SECRET: 'must-not-leak' },
      });
      agents.push(agent);
    });

    const agents: AgentProcess[] = [];

    afterAll(async () => {
      await stopAllAgents();
      for (const started of agents) await hooks.cleanup?.(started);
      await files?.close();
    });

    function request(processType: string, more: Record<string, unknown> = {}): Record<string, unknown> {
      const { env, ...rest } = more;
      return {
        app: 'conformance',
        node: `${processType}-${++seq}`,
        process_type: processType,
        source_url: source,
        ...extraRequestFields,
        ...rest,
        env: { CONFORMANCE_MARKER: marker, ...(env as Record<string, string> | undefined) },
      };
    }

    async function create(on: AgentProcess, body: Record<string, unknown>) {
      const created = await on.api('/create-process', { json: body });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return created.body as Record<string, any>;
    }

    async function running(on: AgentProcess, doc: Record<string, any>) {
      return waitFor(async () => {
        const { body } = await on.api(doc.details);
        if (body.state !== 'running' && body.error) throw new Error(`${body.state}: ${body.error}`);
        return body.state === 'running' && body;
      }, { what: `${doc.slug} running` });
    }

    async function timedDelete(on: AgentProcess, doc: Record<string, any>): Promise<number> {
      const began = Date.now();
      const answer = await on.api(doc.delete, { json: {} });
      expect(answer.status).toBe(200);
      return Date.now() - began;
    }

    test('walk-through: create → pending → running → console lines → delete → gone', async () => {
      const doc = await create(agent, request('web', { env: { APP_NAME: 'conformance' } }));
      expect(doc.state).toBe('pending');
      expect(doc.executor).toBe(name);
      const console = attach(`${doc.attach}?format=json`);
      const up = await running(agent, doc);
      expect(up.pid).toBeTruthy();
      expect(typeof up.port).toBe('number');
      await waitFor(() => lines(console.frames).includes('to-err'), { what: 'both lines' });
      expect(lines(console.frames, 'stdout')).toContain(`hello from conformance on port ${up.port}`);
      expect(lines(console.frames, hooks.mergedOutput ? undefined : 'stderr')).toContain('to-err');
      const listed = await agent.api('/list-processes');
      expect(listed.body.processes.map((p: { slug: string }) => p.slug)).toContain(doc.slug);
      await timedDelete(agent, doc);
      expect(await console.closed).toBe(1000);
      expect((await agent.api(doc.details)).status).toBe(404);
      expect(pidsWithEnv('CONFORMANCE_MARKER', marker)).toEqual([]);
      if (hooks.leftovers) expect(await hooks.leftovers(agent)).toEqual([]);
    });

    test('environment: agent (--inherit-env) < .env < Procfile prefixes < request env < PORT', async () => {
      const doc = await create(agent, request('env', { env: { OVERRIDE_BY_REQUEST: 'request', PORT: '3' } }));
      const up = await running(agent, doc);
      const console = attach(`${doc.attach}?tail=1500`);
      await waitFor(() => console.frames.includes('env-done'), { what: 'env printed' });
      const env = console.frames;
      expect(env).toContain('FROM_AGENT=agent');
      expect(env).toContain('FROM_AGENT_OVERRIDDEN=dotenv');
      expect(env).toContain('FROM_DOTENV=dotenv');
      expect(env).toContain('OVERRIDE_BY_PROCFILE=procfile');
      expect(env).toContain('OVERRIDE_BY_REQUEST=request');
      expect(env).toContain(`PORT=${up.port}`);
      expect(env.filter((line) => line.startsWith('PORT='))).toHaveLength(1);
      expect(env.some((line) => line.startsWith('AGENT_SECRET'))).toBe(false);
      await timedDelete(agent, doc);
    });

    test('restart: a crashing child is restarted with growing backoff delays', async () => {
      const doc = await create(agent, request('crash'));
      const states = new Set<string>();
      const last = await waitFor(async () => {
        const { body } = await agent.api(doc.details);
        states.add(body.state);
        return body.restarts >= 4 && body;
      }, { what: '4 restarts', intervalMs: 5, timeoutMs: 30_000 });
      expect(states.has('backoff')).toBe(true);
      expect(last.exit_code).toBe(3);
      expect(last.error).toBeNull();
      const console = attach(`${doc.attach}?tail=1500&format=json`);
      await waitFor(() => lines(console.frames, 'agent').filter((l) => l.startsWith('restarting in')).length >= 4, { what: 'restart events' });
      expect(lines(console.frames, 'stdout').filter((l) => l === 'crash').length).toBeGreaterThanOrEqual(4);
      expect(lines(console.frames, 'agent')).toContain('exited with code 3');
      const delays = lines(console.frames, 'agent')
        .filter((l) => l.startsWith('restarting in'))
        .map((l) => Number(/restarting in (\d+) ms/.exec(l)![1]));
      // 100 ms × 2ⁿ ± 25 %: the windows are disjoint, so the delays must grow.
      expect(delays[0]).toBeGreaterThanOrEqual(75);
      expect(delays[0]).toBeLessThanOrEqual(125);
      for (let i = 1; i < 4; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1]!);
      await timedDelete(agent, doc);
    });

    test('graceful stop: a child without a SIGTERM handler ends at once', async () => {
      const doc = await create(agent, request('plain'));
      const console = attach(`${doc.attach}?format=json`);
      await running(agent, doc);
      await waitFor(() => lines(console.frames).includes('ready'), { what: 'ready' });
      const took = await timedDelete(agent, doc);
      // The grace is 20 s: anything near it would mean SIGTERM was lost (a PID-1 shell ignores it).
      expect(took).toBeLessThan(5000);
      await console.closed;
      const exit = lines(console.frames, 'agent').find((l) => l.startsWith('exited'));
      // Killed by SIGTERM: 128+15 as a shell or an engine reports it, or the signal itself.
      expect(exit).toMatch(/^exited (with code 143|on signal SIGTERM)$/);
    });

    test('graceful stop: a child with a SIGTERM handler gets to finish it', async () => {
      const doc = await create(agent, request('handler'));
      const console = attach(`${doc.attach}?format=json`);
      await running(agent, doc);
      await waitFor(() => lines(console.frames).includes('ready'), { what: 'ready' });
      const took = await timedDelete(agent, doc);
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(10_000);
      await console.closed;
      const seen = lines(console.frames);
      expect(seen.indexOf('got SIGTERM')).toBeGreaterThan(seen.indexOf('ready'));
      expect(seen.indexOf('bye')).toBeGreaterThan(seen.indexOf('got SIGTERM'));
      expect(lines(console.frames, 'agent')).toContain('exited with code 0');
    });

    test('graceful stop: a child that ignores SIGTERM is killed when the grace period ends', async () => {
      const quick = await startAgentProcess({ args: [...agentArgs, '--stop-timeout', '1s'] });
      agents.push(quick);
      const doc = await create(quick, request('stubborn'));
      const console = attach(`${doc.attach}?format=json`);
      await running(quick, doc);
      await waitFor(() => lines(console.frames).includes('ready'), { what: 'ready' });
      const took = await timedDelete(quick, doc);
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(8000);
      await console.closed;
      const exit = lines(console.frames, 'agent').find((l) => l.startsWith('exited'));
      expect(exit).toMatch(/^exited (with code 137|on signal SIGKILL)$/);
      expect((await quick.stop('SIGINT')).code).toBe(0);
      if (hooks.leftovers) expect(await hooks.leftovers(quick)).toEqual([]);
    });

    test('output: every line in order, the last one without a newline included', async () => {
      const doc = await create(agent, request('burst', { restart: 'never' }));
      // Attached while pending: every line arrives live, none from scrollback.
      const console = attach(doc.attach);
      await console.opened;
      await waitFor(() => console.frames.length >= 5001, { what: '5001 lines', timeoutMs: 30_000 });
      expect(console.frames).toHaveLength(5001);
      for (let i = 0; i < 5000; i++) {
        if (console.frames[i] !== `line ${i + 1}`) throw new Error(`frame ${i} is ${console.frames[i]}`);
      }
      expect(console.frames[5000]).toBe('last line without newline');
      const ended = await waitFor(async () => {
        const { body } = await agent.api(doc.details);
        return body.state === 'exited' && body;
      }, { what: 'exited' });
      expect(ended.exit_code).toBe(0);
      expect(ended.restarts).toBe(0);
      await timedDelete(agent, doc);
    });

    test('stdin: console text frames reach the child, one line each', async () => {
      const doc = await create(agent, request('echo'));
      await running(agent, doc);
      const console = attach(doc.attach);
      await console.opened;
      console.ws.send('hello');
      console.ws.send('two words');
      await waitFor(() => console.frames.includes('got: two words'), { what: 'echoed lines' });
      expect(console.frames.filter((f) => f.startsWith('got: '))).toEqual(['got: hello', 'got: two words']);
      await timedDelete(agent, doc);
    });

    test('agent SIGINT stops every child and leaves nothing behind', async () => {
      const docs = await Promise.all(['web', 'handler'].map(async (type) => create(agent, request(type, { env: { APP_NAME: 'last' } }))));
      await Promise.all(docs.map((doc) => running(agent, doc)));
      expect(pidsWithEnv('CONFORMANCE_MARKER', marker).length).toBeGreaterThan(0);
      const { code, signal } = await agent.stop('SIGINT');
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(pidsWithEnv('CONFORMANCE_MARKER', marker)).toEqual([]);
      if (hooks.leftovers) expect(await hooks.leftovers(agent)).toEqual([]);
    });
  });
}
