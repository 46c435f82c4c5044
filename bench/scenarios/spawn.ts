/**
 * 1. spawn: 100 children of one Procfile type, from the request to all running. Ours: 100 create requests at once
 * to the shared agent (archive cached), then the list polled every 10 ms until all are `running`. Peers: their
 * configuration written and daemon started untimed, then `startAll` and their status polled every 10 ms until
 * 100 run. Limit: bare node `spawn` ×100 (until every 'spawn' event).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { LocalExecutor } from '../../src/executors/local/index.js';
import { benchChildSpec, median, type Row } from '../lib.js';
import { killPids } from '../peers/proc.js';
import { appName, eachPeer, idleProgram, interleaved, ms, peerMedian, runs, RUNS, startAndWait, Table, type Ctx } from './common.js';
import { IDLE } from './ours.js';

const N = 100;

function bareSpawn(): Promise<number> {
  return new Promise((resolve) => {
    const began = performance.now();
    const kids: ChildProcess[] = [];
    let spawned = 0;
    const [cmd, ...args] = IDLE.split(' ');
    for (let i = 0; i < N; i++) {
      const child = spawn(cmd!, args, { stdio: 'ignore' });
      kids.push(child);
      child.once('spawn', () => {
        if (++spawned < N) return;
        const took = performance.now() - began;
        killPids(kids.map((k) => k.pid!));
        resolve(took);
      });
    }
  });
}

/**
 * Our local executor alone, in this process like the limit: 100 starts of the same command under the DESIGN §4
 * kill chain (setpriv → unshare → namespace-init sh), no API. Splits our time between the chain and the agent.
 */
async function executorOnce(executor: LocalExecutor): Promise<number> {
  const specs = Array.from({ length: N }, (_, i) => benchChildSpec(`n${i}`, 'idle', IDLE, '/'));
  const began = performance.now();
  const kids = await Promise.all(specs.map((spec) => executor.start(spec)));
  const took = performance.now() - began;
  executor.killAll();
  await Promise.all(kids.map((kid) => kid.exited));
  return took;
}

async function oursOnce(ctx: Ctx): Promise<number> {
  const app = appName('spawn');
  const began = performance.now();
  await ctx.api.createMany(app, N, 'idle', ctx.app.url);
  await ctx.api.waitFor(app, N, ['running']);
  const took = performance.now() - began;
  await ctx.api.deleteApp(app);
  return took;
}

export async function spawnScenario(ctx: Ctx): Promise<Row[]> {
  console.log(`side-by-side: spawn ${N} (${runs(RUNS)} each)…`);
  const { limit, ours } = await interleaved(bareSpawn, () => oursOnce(ctx));
  console.log(`  ours ${ms(ours)} ms; bare spawn ${ms(limit)} ms`);
  const executor = new LocalExecutor();
  const chain: number[] = [];
  for (let r = 0; r < RUNS; r++) chain.push(await executorOnce(executor));
  console.log(`  our executor alone (${executor.killGuarantee}) ${ms(chain)} ms`);
  const peers = await eachPeer(ctx, (maker) => peerMedian(maker, { runs: RUNS }, (peer) => startAndWait(peer, idleProgram(ctx, N))));
  const o = median(ours);
  const l = median(limit);
  return new Table(`spawn ${N} → all running`, 'ms', 'ms', o)
    .goal(`bare node spawn ×${N}`, l, '≤ 2× limit', o <= 2 * l, `${runs(RUNS)}; our executor alone (kill chain ${executor.killGuarantee}, no API) ${median(chain).toFixed(0)} ms = ${(median(chain) / l).toFixed(2)}× limit`)
    .peers(peers, (a, b) => a < b).rows;
}
