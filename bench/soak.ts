/**
 * Soak test: runs the real agent for a while under churn and prints its RSS and open fds over time, so leaks show
 * up as a slope. Load: 20 crash-looping children, 2 chatty children with attach/detach churn on every process,
 * a create → running → delete loop, and periodic /metrics + /healthz scrapes.
 *
 *   npx tsc -p tsconfig.json && npx tsc -p bench/tsconfig.json && node dist-bench/bench/soak.js --minutes 10
 *
 * Options: --minutes N (default 2), --sample-seconds N (default: minutes×60/20, at least 5), --crashers N (20).
 * Writes bench/results/soak-latest.json. Exit code 0 unless the agent died or requests kept failing.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { serveProcfile } from './archive-server.js';
import { ROOT, startBenchAgent } from './lib.js';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

const minutes = flag('minutes', 2);
const sampleSeconds = flag('sample-seconds', Math.max(5, Math.round((minutes * 60) / 20)));
const crashers = flag('crashers', 20);

const PROCFILE = [
  'crash: echo "crash $$"; exit 3',
  'chatty: i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.02; done',
  'web: echo up; sleep 600',
].join('\n');

interface Sample {
  t_s: number;
  rss_mib: number;
  fds: number;
  direct_children: number;
  processes: number;
  restarts: number;
  attaches: number;
  creates: number;
  errors: number;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Processes whose parent is the agent (each local child's wrapper); a leak would make this climb. */
function directChildren(pid: number): number {
  let n = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) n += 1;
    } catch {
      // gone
    }
  }
  return n;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'pa-soak-'));
  const archive = await serveProcfile(PROCFILE);
  const agent = await startBenchAgent(['--port-range', '31000-31999'], home);
  const pid = agent.proc.pid!;
  const counters = { attaches: 0, creates: 0, errors: 0 };
  const errorKinds = new Map<string, number>();
  const failed = (err: unknown): void => {
    counters.errors += 1;
    const kind = String(err instanceof Error ? err.message : err).replace(/\d+/g, 'N').slice(0, 120);
    errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
  };
  let running = true;

  const api = async (pathOrUrl: string, init?: RequestInit): Promise<any> => {
    const response = await fetch(pathOrUrl.startsWith('http') ? pathOrUrl : `${agent.url}${pathOrUrl}`, init);
    const text = await response.text();
    if (response.status >= 400) throw new Error(`${init?.method ?? 'GET'} ${pathOrUrl}: ${response.status} ${text}`);
    return text.startsWith('{') ? JSON.parse(text) : text;
  };
  const create = (node: string, processType: string) =>
    api('/create-process', { method: 'POST', body: JSON.stringify({ app: 'soak', node, process_type: processType, source_url: archive.url }) });

  const steady: any[] = [];
  for (let i = 0; i < crashers; i++) steady.push(await create(`crash-${i}`, 'crash'));
  for (let i = 0; i < 2; i++) steady.push(await create(`chatty-${i}`, 'chatty'));

  // Attach/detach churn: 4 lanes, each attaching to a random process, reading a little, and leaving.
  const attachLane = async (): Promise<void> => {
    while (running) {
      const doc = steady[Math.floor(Math.random() * steady.length)];
      const format = Math.random() < 0.5 ? 'json' : 'text';
      try {
        await new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`${doc.attach}?tail=${Math.floor(Math.random() * 200)}&format=${format}`);
          const done = setTimeout(() => ws.close(), 100 + Math.random() * 400);
          ws.once('error', (err) => {
            clearTimeout(done);
            reject(err);
          });
          ws.once('close', () => {
            clearTimeout(done);
            resolve();
          });
        });
        counters.attaches += 1;
      } catch (err) {
        failed(err);
      }
      await sleep(20);
    }
  };

  // Create/delete churn: a fresh process each round, waited for until running, then deleted.
  const createLane = async (): Promise<void> => {
    let n = 0;
    while (running) {
      try {
        const doc = await create(`churn-${n++}`, 'web');
        for (let i = 0; i < 200; i++) {
          const status = await api(doc.details);
          if (status.state === 'running') break;
          await sleep(25);
        }
        await api(doc.delete, { method: 'POST', body: '{}' });
        counters.creates += 1;
      } catch (err) {
        failed(err);
      }
      await sleep(50);
    }
  };

  const scrapeLane = async (): Promise<void> => {
    while (running) {
      try {
        await api('/metrics');
        await api('/healthz');
      } catch (err) {
        failed(err);
      }
      await sleep(1000);
    }
  };

  const restartsTotal = async (): Promise<number> => {
    const text: string = await api('/metrics');
    return Number(/^procfile_agent_restarts_total (\d+)/m.exec(text)?.[1] ?? 0);
  };

  const lanes = [attachLane(), attachLane(), attachLane(), attachLane(), createLane(), scrapeLane()];
  const began = Date.now();
  const samples: Sample[] = [];
  console.log(`soak: ${minutes} min, ${crashers} crash-looping + 2 chatty children, agent pid ${pid}, sample every ${sampleSeconds} s`);
  console.log('  t(s)   rss(MiB)  fds  children  procs  restarts  attaches  creates  errors');
  const takeSample = async (): Promise<void> => {
    const sample: Sample = {
      t_s: Math.round((Date.now() - began) / 1000),
      rss_mib: Math.round(rssMiB(pid) * 10) / 10,
      fds: openFds(pid),
      direct_children: directChildren(pid),
      processes: (await api('/list-processes')).processes.length,
      restarts: await restartsTotal(),
      ...counters,
    };
    samples.push(sample);
    console.log(
      `${String(sample.t_s).padStart(6)} ${sample.rss_mib.toFixed(1).padStart(10)} ${String(sample.fds).padStart(4)} ${String(sample.direct_children).padStart(9)} ${String(sample.processes).padStart(6)} ${String(sample.restarts).padStart(9)} ${String(sample.attaches).padStart(9)} ${String(sample.creates).padStart(8)} ${String(sample.errors).padStart(7)}`,
    );
  };

  await takeSample();
  const deadline = began + minutes * 60_000;
  while (Date.now() < deadline) {
    await sleep(Math.min(sampleSeconds * 1000, deadline - Date.now()));
    if (agent.proc.exitCode !== null) throw new Error('the agent died');
    await takeSample();
  }
  running = false;
  await Promise.all(lanes);
  // Quiet period, then a last sample: what is still held once the churn stops.
  await sleep(2000);
  await takeSample();

  const first = samples[0]!;
  const last = samples.at(-1)!;
  const peak = samples.reduce((a, b) => (b.rss_mib > a.rss_mib ? b : a));
  console.log(`\nRSS ${first.rss_mib} → ${last.rss_mib} MiB (peak ${peak.rss_mib} at ${peak.t_s} s); fds ${first.fds} → ${last.fds}; ` +
    `${last.restarts} restarts, ${last.attaches} attaches, ${last.creates} create/delete rounds, ${last.errors} errors`);
  for (const [kind, n] of errorKinds) console.log(`  error ×${n}: ${kind}`);
  const out = path.join(ROOT, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    path.join(out, 'soak-latest.json'),
    JSON.stringify({ date: new Date().toISOString(), node: process.version, minutes, crashers, samples }, null, 2),
  );

  await new Promise<void>((resolve) => {
    agent.proc.once('exit', () => resolve());
    agent.proc.kill('SIGINT');
  });
  archive.close();
  await rm(home, { recursive: true, force: true });
  // Errors are expected to be rare (a console to a process that was just deleted); many mean something broke.
  process.exit(last.errors > Math.max(10, last.attaches / 100) ? 1 : 0);
}

await main();
