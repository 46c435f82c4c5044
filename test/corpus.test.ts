/**
 * The bad-input corpus (test/corpus/*.jsonl, format in test/corpus/README.md), run against the real agent.
 * Every case asserts the exact HTTP status or process state and its code, that the agent still answers, and
 * that nothing was written outside its data dir. Small caps (flags below) keep bombs and timeouts fast.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type ExpectStatic } from 'vitest';
import { startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { startArchiveServer, type ArchiveServer } from './helpers/archives.js';
import {
  buildArchive,
  expand,
  install,
  loadCorpus,
  rawRequest,
  rawUpgrade,
  type Expect,
  type RequestCase,
  type SourceCase,
  type Vars,
} from './helpers/corpus.js';
import { deadPort } from './helpers/net.js';
import { waitFor } from './helpers/wait.js';

const requests = loadCorpus<RequestCase>('requests.jsonl');
const archives = loadCorpus<SourceCase>('archives.jsonl');
const sources = loadCorpus<SourceCase>('sources.jsonl');

/** Caps small enough that every bomb and timeout trips in well under a second or two. */
const MAIN_FLAGS = [
  '--max-body', '64KiB',
  '--max-env-vars', '20',
  '--max-env-bytes', '4KiB',
  '--max-download', '512KiB',
  '--max-unpacked', '2MiB',
  '--max-entries', '64',
  '--max-path-length', '200',
  '--download-timeout', '1500ms',
  '--max-redirects', '3',
];

/** States a `restart: never` process does not leave on its own: reaching one that is not the expected one fails at once. */
const TERMINAL = new Set(['exited', 'download failure', 'unpack failure', 'no procfile', 'unknown process type']);

let main: AgentProcess;
let limits: AgentProcess;
let files: ArchiveServer;
let blocked: ArchiveServer;
const vars: Vars = {};
let counter = 0;

beforeAll(async () => {
  [files, blocked] = await Promise.all([startArchiveServer(), startArchiveServer()]);
  vars.origin = files.origin;
  vars.blocked = blocked.origin;
  vars.closedPort = String(await deadPort());
  vars.good = files.serve('/good.tar.gz', { body: await appArchive('hello', 'tar.gz'), type: 'application/gzip' });
  blocked.serve('/target.tar.gz', { body: await appArchive('hello', 'tar.gz') });
  [main, limits] = await Promise.all([
    startAgentProcess({ args: MAIN_FLAGS }),
    startAgentProcess({ args: ['--allow-source', `http://127.0.0.1:${new URL(files.origin).port}`, '--max-processes', '3'] }),
  ]);
});

afterAll(async () => {
  await stopAllAgents();
  await Promise.all([files?.close(), blocked?.close()]);
});

/** Names a hostile entry could have landed under, in every directory it could have climbed to. */
const ESCAPE_DIRS = (agent: AgentProcess) => ['/', os.tmpdir(), path.dirname(agent.home), agent.home, agent.dataDir, path.join(agent.dataDir, 'tmp')];

async function expectContained(agent: AgentProcess, e: ExpectStatic): Promise<void> {
  e(await readdir(agent.home)).toEqual(['data']);
  for (const dir of ESCAPE_DIRS(agent)) {
    const names = await readdir(dir).catch(() => [] as string[]);
    e(names.filter((n) => n.startsWith('PWNED')), `in ${dir}`).toEqual([]);
  }
}

async function expectUp(agent: AgentProcess, e: ExpectStatic): Promise<void> {
  e((await agent.api('/')).status).toBe(200);
}

function expectErrorBody(e: ExpectStatic, body: any, code: string): void {
  e(body?.code).toBe(code);
  e(typeof body?.error).toBe('string');
  e(body.error.length).toBeGreaterThan(5);
}

async function settle(agent: AgentProcess, details: string, wanted: string | undefined): Promise<any> {
  return waitFor(
    async () => {
      const { body } = await agent.api(details);
      return (body.state === wanted || TERMINAL.has(body.state)) && body;
    },
    { what: `state ${wanted ?? 'terminal'}`, timeoutMs: 20_000 },
  );
}

async function firstOutputLine(agent: AgentProcess, doc: any): Promise<string> {
  return waitFor(async () => {
    const { body } = await agent.api(doc.output ?? `/process-output/${doc.slug}`);
    return typeof body === 'string' && body !== '' ? body.split('\n')[0] : undefined;
  }, { what: 'output' });
}

async function treeFileMode(agent: AgentProcess, relative: string): Promise<number | undefined> {
  for (const tree of await readdir(path.join(agent.dataDir, 'trees'))) {
    const file = path.join(agent.dataDir, 'trees', tree, relative);
    try {
      if ((await readFile(file, 'utf8')).includes('echo ran')) return (await stat(file)).mode & 0o7777;
    } catch {
      // not this tree
    }
  }
  return undefined;
}

/** Runs one source or archive case: serve it, create a process from it, check where it ends. */
async function runSourceCase(c: SourceCase, e: ExpectStatic): Promise<void> {
  const agent = c.agent === 'limits' ? limits : main;
  const n = ++counter;
  const pathname = `/case-${n}`;
  const caseVars: Vars = {
    ...vars,
    self: `${files.origin}${pathname}`,
    selfWithCredentials: `http://corpus:hunter2-secret@${new URL(files.origin).host}${pathname}`,
  };
  const archive = c.archive ? await buildArchive(c.archive, caseVars) : undefined;
  install(files, pathname, c, archive, caseVars);
  const source = String(expand(c.source_url ?? '{{self}}', caseVars));
  const want: Expect = c.expect;
  const created = await agent.api('/create-process', {
    method: 'POST',
    body: JSON.stringify({ app: 'corpus', node: `s${n}`, process_type: c.process_type ?? 'web', source_url: source, restart: 'never' }),
  });
  e(created.status).toBe(want.status ?? 201);
  if (created.status !== 201) {
    expectErrorBody(e, created.body, want.code!);
  } else {
    const doc = await settle(agent, created.body.details, want.state);
    e(doc.state).toBe(want.state);
    if (want.code !== undefined) e(doc.error_code).toBe(want.code);
    if (want.error !== undefined) e(doc.error).toMatch(new RegExp(want.error));
    if (want.output !== undefined) e(await firstOutputLine(agent, doc)).toBe(want.output);
    if (want.sourceUrlShown !== undefined) e(doc.source_url).toMatch(new RegExp(want.sourceUrlShown));
    if (want.treeMode !== undefined) e(await treeFileMode(agent, want.treeMode.path)).toBe(want.treeMode.mode);
    if (c.secret !== undefined) {
      e(JSON.stringify(doc)).not.toContain(c.secret);
      e(JSON.stringify((await agent.api('/list-processes')).body)).not.toContain(c.secret);
      e(JSON.stringify(agent.logs)).not.toContain(c.secret);
    }
    const deleted = await agent.api(doc.delete, { method: 'POST', body: '{}' });
    e(deleted.status).toBe(200);
  }
  if (want.fetched !== undefined) e(files.hits(pathname)).toBe(want.fetched);
  if (want.blockedFetched !== undefined) e(blocked.hits('/target.tar.gz')).toBe(want.blockedFetched);
  await expectUp(agent, e);
  await expectContained(agent, e);
}

describe('corpus', () => {
  it('has at least 60 cases', () => {
    expect(requests.length + archives.length + sources.length).toBeGreaterThanOrEqual(60);
  });
});

describe('corpus: requests', () => {
  it.concurrent.for(requests.map((c) => [c.name, c] as const))('%s', async ([, c], { expect: e }) => {
    const caseVars = { ...vars, node: `r${++counter}` };
    const want = c.expect;
    const target = String(expand(c.path ?? '/create-process', caseVars));
    let answer;
    if (c.ws) {
      answer = await rawUpgrade(main.url, target);
    } else {
      let body: Buffer | undefined;
      if (c.rawBase64 !== undefined) body = Buffer.from(c.rawBase64, 'base64');
      else if (c.raw !== undefined) body = Buffer.from(String(expand(c.raw, caseVars)));
      else if (c.body !== undefined) body = Buffer.from(JSON.stringify(expand(c.body, caseVars)));
      answer = await rawRequest(main.url, {
        method: c.method ?? 'POST',
        path: target,
        ...(c.headers ? { headers: c.headers } : {}),
        ...(body !== undefined ? { body } : {}),
        ...(c.chunked ? { chunked: true } : {}),
        ...(c.noBody ? { noBody: true } : {}),
      });
    }
    e(answer.status, answer.text.slice(0, 300)).toBe(want.status);
    if (want.code === null) {
      e(answer.json).toBeUndefined();
    } else if (want.code !== undefined) {
      expectErrorBody(e, answer.json, want.code);
    }
    if (answer.status === 201) {
      const doc = await settle(main, answer.json.details, want.state);
      e(doc.state).toBe(want.state);
      e((await main.api(doc.delete, { method: 'POST', body: '{}' })).status).toBe(200);
    }
    await expectUp(main, e);
  });
});

describe('corpus: archives', () => {
  it.concurrent.for(archives.map((c) => [c.name, c] as const))('%s', async ([, c], { expect: e }) => {
    await runSourceCase(c, e);
  });
});

describe('corpus: source URLs and servers', () => {
  const mainCases = sources.filter((c) => c.agent !== 'limits');
  it.concurrent.for(mainCases.map((c) => [c.name, c] as const))('%s', async ([, c], { expect: e }) => {
    await runSourceCase(c, e);
  });
});

// The limits agent allows only 3 processes, so its cases run one at a time.
describe('corpus: limits agent (--allow-source, --max-processes 3)', () => {
  const limitCases = sources.filter((c) => c.agent === 'limits');
  it.each(limitCases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await runSourceCase(c, expect);
  });

  it('--max-processes: the 4th create answers 409 too_many_processes; a delete makes room', async () => {
    const body = (node: string) => JSON.stringify({ app: 'cap', node, process_type: 'web', source_url: vars.good, restart: 'never' });
    const made = await Promise.all(['a', 'b', 'c'].map((node) => limits.api('/create-process', { method: 'POST', body: body(node) })));
    expect(made.map((m) => m.status)).toEqual([201, 201, 201]);
    const refused = await limits.api('/create-process', { method: 'POST', body: body('d') });
    expect(refused.status).toBe(409);
    expectErrorBody(expect, refused.body, 'too_many_processes');
    // Processes in failure or exited states count too: they stay listed until deleted.
    await settle(limits, made[0]!.body.details, 'exited');
    expect((await limits.api('/create-process', { method: 'POST', body: body('e') })).status).toBe(409);
    expect((await limits.api(made[0]!.body.delete, { method: 'POST', body: '{}' })).status).toBe(200);
    const after = await limits.api('/create-process', { method: 'POST', body: body('d') });
    expect(after.status).toBe(201);
    for (const doc of [made[1]!.body, made[2]!.body, after.body]) await limits.api(doc.delete, { method: 'POST', body: '{}' });
    await expectUp(limits, expect);
  });

  it('--max-processes holds under concurrent creates', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        limits.api('/create-process', {
          method: 'POST',
          body: JSON.stringify({ app: 'burst', node: `n${i}`, process_type: 'web', source_url: vars.good, restart: 'never' }),
        }),
      ),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(3);
    expect(answers.filter((a) => a.status === 409).every((a) => a.body.code === 'too_many_processes')).toBe(true);
    for (const a of answers.filter((a) => a.status === 201)) await limits.api(a.body.delete, { method: 'POST', body: '{}' });
  });
});

describe('corpus: afterwards', () => {
  it('left no scratch files and nothing named PWNED anywhere in the agents\' homes', async () => {
    for (const agent of [main, limits]) {
      await expectContained(agent, expect);
      await waitFor(async () => (await readdir(path.join(agent.dataDir, 'tmp')).catch(() => [])).length === 0, { what: 'empty tmp' });
      const walk = async (dir: string): Promise<string[]> => {
        const found: string[] = [];
        for (const name of await readdir(dir)) {
          const full = path.join(dir, name);
          if (name.startsWith('PWNED')) found.push(full);
          if ((await lstat(full)).isDirectory()) found.push(...(await walk(full)));
        }
        return found;
      };
      expect(await walk(agent.home)).toEqual([]);
    }
  });

  it('logged every request with its request id', () => {
    const requestLines = main.logs.filter((l) => l.msg === 'request');
    expect(requestLines.length).toBeGreaterThan(requests.length);
    expect(requestLines.every((l) => typeof l.requestId === 'string' && l.requestId.length > 0)).toBe(true);
  });
});
