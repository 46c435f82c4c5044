import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { waitFor } from './helpers/wait.js';

let files: FixtureServer;
let source: string;
let agent: AgentProcess;
let dir: string;

beforeAll(async () => {
  files = await startFixtureServer();
  source = files.set('/walkthrough.tar.gz', { body: await appArchive('walkthrough', 'tar.gz') });
  dir = await mkdtemp(path.join(os.tmpdir(), 'pa-watch-'));
  agent = await startAgentProcess({ args: ['--watch-dir', dir] });
});

afterAll(async () => {
  await stopAllAgents();
  await files.close();
  await rm(dir, { recursive: true, force: true });
});

const spec = (node: string, greeting: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ app: 'w', node, process_type: 'greet', source_url: source, env: { GREETING: greeting }, ...extra });

async function statusOf(slug: string) {
  return (await agent.api(`/process-status/${slug}`)).body;
}

/** Waits until the process runs and its console shows `greeting`; returns its status document. */
async function greets(slug: string, greeting: string) {
  return waitFor(async () => {
    const doc = await statusOf(slug);
    if (doc.state !== 'running') return undefined;
    const text = await (await fetch(doc.output)).text();
    return text.includes(`${greeting} from walkthrough`) ? doc : undefined;
  }, { what: `${slug} greeting ${greeting}` });
}

describe('--watch-dir', () => {
  it('a new file creates; the API may not delete it', async () => {
    await writeFile(path.join(dir, 'w.add.json'), spec('add', 'added'));
    const doc = await greets('w.add', 'added');
    const refused = await agent.api(doc.delete, { method: 'POST', body: '{}' });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('managed_by_watch_dir');
    expect((await statusOf('w.add')).state).toBe('running');
  });

  it('an edited file stops the process and recreates it with the new spec', async () => {
    await writeFile(path.join(dir, 'w.edit.json'), spec('edit', 'first'));
    const before = await greets('w.edit', 'first');
    await writeFile(path.join(dir, 'w.edit.json'), spec('edit', 'second'));
    const after = await greets('w.edit', 'second');
    expect(after.pid).not.toBe(before.pid);
    expect(after.created_at > before.created_at).toBe(true);
  });

  it('a removed file deletes the process', async () => {
    await writeFile(path.join(dir, 'w.rm.json'), spec('rm', 'bye'));
    await greets('w.rm', 'bye');
    await rm(path.join(dir, 'w.rm.json'));
    await waitFor(async () => (await agent.api('/process-status/w.rm')).status === 404, { what: 'w.rm gone' });
  });

  it('an invalid file is listed in a failure state with its error, and retried when edited', async () => {
    await writeFile(path.join(dir, 'w.bad.json'), '{"app": "w", "node": ');
    const listed = await waitFor(async () => {
      const doc = await statusOf('w.bad');
      return doc.state === 'invalid spec' ? doc : undefined;
    }, { what: 'invalid spec listed' });
    expect(listed.error_code).toBe('invalid_spec');
    expect(listed.error).toMatch(/not valid JSON/);
    expect(agent.logs.some((entry) => entry.msg === 'watch-dir file is invalid' && entry.level === 50)).toBe(true);
    await writeFile(path.join(dir, 'w.bad.json'), spec('bad', 'fixed'));
    await greets('w.bad', 'fixed');
  });

  it('a file whose name is not its slug, or with unknown fields, is invalid', async () => {
    await writeFile(path.join(dir, 'w.name.json'), spec('other', 'x'));
    await writeFile(path.join(dir, 'w.typo.json'), spec('typo', 'x', { restrat: 'never' }));
    const name = await waitFor(async () => ((await statusOf('w.name')).state === 'invalid spec' ? statusOf('w.name') : undefined));
    expect(name.error).toMatch(/file name must be the slug/);
    const typo = await waitFor(async () => ((await statusOf('w.typo')).state === 'invalid spec' ? statusOf('w.typo') : undefined));
    expect(typo.error).toMatch(/restrat/);
    expect((await agent.api('/process-status/w.other')).status).toBe(404);
  });

  it('rapid successive edits end in the last version, one process', async () => {
    for (let i = 1; i <= 6; i++) await writeFile(path.join(dir, 'w.rapid.json'), spec('rapid', `v${i}`));
    await greets('w.rapid', 'v6');
    const slugs = (await agent.api('/list-processes')).body.processes.map((p: { slug: string }) => p.slug);
    expect(slugs.filter((slug: string) => slug === 'w.rapid')).toHaveLength(1);
  });

  it('ignores editor temp files and coexists with API processes', async () => {
    await writeFile(path.join(dir, '.w.tmp1.json.swp'), spec('tmp1', 'no'));
    await writeFile(path.join(dir, 'w.tmp2.json~'), spec('tmp2', 'no'));
    await writeFile(path.join(dir, '#w.tmp3.json#'), spec('tmp3', 'no'));
    const viaApi = await agent.api('/create-process', { method: 'POST', body: spec('api', 'api') });
    expect(viaApi.status).toBe(201);
    await writeFile(path.join(dir, 'w.marker.json'), spec('marker', 'marker'));
    await greets('w.marker', 'marker');
    await greets('w.api', 'api');
    const slugs = (await agent.api('/list-processes')).body.processes.map((p: { slug: string }) => p.slug);
    expect(slugs.some((slug: string) => slug.startsWith('w.tmp'))).toBe(false);
    expect((await agent.api(viaApi.body.delete, { method: 'POST', body: '{}' })).status).toBe(200);
  });

  it('a restarted agent runs the directory again', async () => {
    await writeFile(path.join(dir, 'w.again.json'), spec('again', 'again'));
    const before = await greets('w.again', 'again');
    await agent.stop();
    agent = await startAgentProcess({ home: agent.home, args: ['--watch-dir', dir] });
    const after = await greets('w.again', 'again');
    expect(after.pid).not.toBe(before.pid);
    // Declared by the directory, not by the agent's own state: no duplicate from persistence.
    const slugs = (await agent.api('/list-processes')).body.processes.map((p: { slug: string }) => p.slug);
    expect(slugs.filter((slug: string) => slug === 'w.again')).toHaveLength(1);
  });
});
