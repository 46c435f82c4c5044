import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declare, StateStore } from '../src/supervisor/state-store.js';
import { startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { startArchiveServer, type ArchiveServer } from './helpers/archives.js';
import { waitFor } from './helpers/wait.js';

let files: ArchiveServer;
let source: string;

beforeAll(async () => {
  files = await startArchiveServer();
  source = files.serve('/hello.tar.gz', { body: await appArchive('counter', 'tar.gz') });
});

afterAll(async () => {
  await stopAllAgents();
  await files.close();
});

type Doc = { slug: string; state: string; pid: string | null; created_at: string; details: string; delete: string };

async function createThree(agent: AgentProcess, app: string): Promise<Doc[]> {
  const docs: Doc[] = [];
  for (const node of ['b', 'a', 'c']) {
    const created = await agent.api('/create-process', { method: 'POST', body: JSON.stringify({ app, node, process_type: 'web', source_url: source }) });
    expect(created.status).toBe(201);
    docs.push(created.body);
  }
  return Promise.all(docs.map((doc) => runningDoc(agent, doc.slug)));
}

async function runningDoc(agent: AgentProcess, slug: string): Promise<Doc> {
  return waitFor(async () => {
    const { body } = await agent.api(`/process-status/${slug}`);
    return body.state === 'running' && body.pid ? (body as Doc) : undefined;
  }, { what: `${slug} running` });
}

async function listed(agent: AgentProcess): Promise<Doc[]> {
  return (await agent.api('/list-processes')).body.processes;
}

describe.each([['SIGINT'], ['SIGKILL']] as const)('after %s the next agent brings its processes back', (signal) => {
  it('same slugs, same order and creation times, new pids, no second download', async () => {
    const first = await startAgentProcess();
    const before = await createThree(first, `p${signal.toLowerCase()}`);
    const downloads = files.hits('/hello.tar.gz');
    await first.stop(signal);

    const second = await startAgentProcess({ home: first.home });
    const after = await Promise.all(before.map((doc) => runningDoc(second, doc.slug)));
    expect((await listed(second)).map((doc) => doc.slug)).toEqual(before.map((doc) => doc.slug));
    for (const [i, doc] of after.entries()) {
      expect(doc.created_at).toBe(before[i]!.created_at);
      expect(doc.pid).not.toBe(before[i]!.pid);
    }
    // The archive's sha256 was kept: the unpacked tree is reused, nothing is fetched again.
    expect(files.hits('/hello.tar.gz')).toBe(downloads);
    expect(second.logs.some((entry) => entry.msg === 'processes restored' && entry.restored === 3)).toBe(true);
    await second.stop();
  });
});

describe('state files', () => {
  it('a deleted process does not come back; a corrupt file is reported and the others return', async () => {
    const first = await startAgentProcess();
    const docs = await createThree(first, 'files');
    expect((await first.api(docs[0]!.delete, { method: 'POST', body: '{}' })).status).toBe(200);
    await first.stop();
    const corrupt = path.join(first.dataDir, 'processes', 'broken.x.json');
    await writeFile(corrupt, '{"version": 1, "request": ');

    const second = await startAgentProcess({ home: first.home });
    await Promise.all(docs.slice(1).map((doc) => runningDoc(second, doc.slug)));
    expect((await listed(second)).map((doc) => doc.slug)).toEqual(docs.slice(1).map((doc) => doc.slug));
    const report = await waitFor(() => second.logs.find((entry) => entry.msg?.toString().startsWith('state file unreadable')));
    expect(report.file).toBe(corrupt);
    expect(report.level).toBe(50);
    await second.stop();
  });

  it('--no-persist agents forget everything', async () => {
    const first = await startAgentProcess({ args: ['--no-persist'] });
    await createThree(first, 'gone');
    await first.stop();
    const second = await startAgentProcess({ home: first.home });
    expect(await listed(second)).toEqual([]);
    await second.stop();
  });
});

describe('StateStore', () => {
  it('makes its directory on the first save and again if it was removed; removing a missing file is fine', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'state-store-'));
    try {
      const store = new StateStore(dataDir);
      const request = { app: 'a', node: 'n', process_type: 'web', source_url: 'http://127.0.0.1:1/a.tgz' };
      await store.save(declare(request, new Date('2026-01-01T00:00:00Z')));
      await rm(store.dir, { recursive: true });
      await store.save(declare({ ...request, node: 'm' }, new Date('2026-01-01T00:00:01Z')));
      expect((await store.load()).declared.map((d) => d.request.node)).toEqual(['m']);
      await store.remove('a.m');
      await store.remove('a.m');
      expect(await readdir(store.dir)).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
