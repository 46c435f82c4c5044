/**
 * 8. unpack: a 50 MB / 5,000-file tar.gz (random, incompressible content) served on loopback; ours: from the
 * create request to `starting` in a fresh agent each run (so the archive is never cached); limit: `curl | tar xz`
 * into the same disk. The peers are n/a: none of them fetches or unpacks sources.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import path from 'node:path';
import { median, startBenchAgent, timeIt, type Row } from '../lib.js';
import { runDir } from '../peers/reaper.js';
import { interleaved, ms, runs, RUNS, Table } from './common.js';
import { Api } from './ours.js';

const execFileAsync = promisify(execFile);

const DIRS = 50;
const FILES_PER_DIR = 100;
const FILE_BYTES = 10_000;

function bigArchive(): Buffer {
  const src = runDir('big');
  writeFileSync(path.join(src, 'Procfile'), 'web: sleep 7700\n');
  for (let d = 0; d < DIRS; d++) {
    mkdirSync(path.join(src, `d${d}`));
    for (let f = 0; f < FILES_PER_DIR; f++) writeFileSync(path.join(src, `d${d}`, `f${f}.bin`), randomBytes(FILE_BYTES));
  }
  const body = execFileSync('tar', ['-C', src, '-czf', '-', '.'], { maxBuffer: 1 << 30, timeout: 120_000 });
  rmSync(src, { recursive: true, force: true });
  return body;
}

async function serve(body: Buffer): Promise<{ url: string; close(): void }> {
  const server = http.createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.tar.gz`, close: () => server.close() };
}

/**
 * Writes back what earlier runs left dirty, so that no run pays for another's disk writes (on a small VM the
 * writeback of one 50 MB unpack otherwise throttles the next one, whichever side it is).
 */
const settleDisk = () => execFileAsync('sync', [], { timeout: 120_000 });

/** Asynchronous: the archive is served by this very process. */
async function curlTar(url: string): Promise<number> {
  const target = runDir('curl');
  await settleDisk();
  const took = await timeIt(() => execFileAsync('sh', ['-c', `curl -sf ${url} | tar xzf - -C ${target}`], { timeout: 120_000 }));
  rmSync(target, { recursive: true, force: true });
  return took;
}

/** A fresh agent (fresh data dir: nothing cached), create → `starting`. */
async function oursOnce(url: string): Promise<number> {
  const home = runDir('agent-unpack');
  const agent = await startBenchAgent(['--no-persist'], home);
  try {
    const api = new Api(agent.url);
    await settleDisk();
    const took = await timeIt(async () => {
      await api.create('big', 'n1', 'web', url);
      await api.waitFor('big', 1, ['starting', 'running'], 120_000);
    });
    await api.deleteApp('big');
    return took;
  } finally {
    await agent.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

export async function unpackScenario(): Promise<Row[]> {
  console.log(`side-by-side: unpack ${(DIRS * FILES_PER_DIR * FILE_BYTES) / 1e6} MB / ${DIRS * FILES_PER_DIR} files (${runs(RUNS)} each)…`);
  const body = bigArchive();
  console.log(`  archive: ${(body.length / 1e6).toFixed(1)} MB, ${DIRS * FILES_PER_DIR + 1} files`);
  const server = await serve(body);
  const { limit, ours } = await interleaved(() => curlTar(server.url), () => oursOnce(server.url)).finally(() => server.close());
  console.log(`  ours ${ms(ours)} ms; curl|tar ${ms(limit)} ms`);
  const o = median(ours);
  const l = median(limit);
  return new Table(`unpack ${(body.length / 1e6).toFixed(0)} MB / ${DIRS * FILES_PER_DIR}-file tar.gz → starting`, 'ms', 'ms', o)
    .goal('curl | tar xz', l, '≤ 1.2× limit', o <= 1.2 * l, `${runs(RUNS)}; supervisord, PM2, foreman: n/a (none fetches or unpacks sources)`)
    .rows;
}
