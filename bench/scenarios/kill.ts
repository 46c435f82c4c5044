/**
 * 6. kill -9 of the supervisor with 15 children, each a shell with three `sleep 7771` (one of them in a session of
 * its own, `setsid`): how many of the 45 sleeps are still alive 2 s after the supervisor got SIGKILL. Ours runs
 * in an agent of its own (the shared one must live on). One run each: the count is deterministic.
 */
import { startBenchAgent, type Row } from '../lib.js';
import type { Peer } from '../peers/peer.js';
import { commandOf, procTable, sleep } from '../peers/proc.js';
import { runDir, sweep } from '../peers/reaper.js';
import { eachPeer, startAndWait, Table, withPeer, type Ctx, type PeerResult } from './common.js';
import { Api, TREE_SLEEP } from './ours.js';

const N = 15;
const AFTER_MS = 2000;

/** The user's sleeps alive now (not the helpers whose command line merely contains the command). */
const treeSleeps = () => procTable().filter((p) => commandOf(p) === TREE_SLEEP).length;

/** Kills `pid` with -9 after things settle; the sleeps before, and after AFTER_MS. */
async function killAndCount(pid: number): Promise<{ before: number; after: number }> {
  await sleep(500);
  const before = treeSleeps();
  process.kill(pid, 'SIGKILL');
  await sleep(AFTER_MS);
  const after = treeSleeps();
  sweep([TREE_SLEEP]);
  return { before, after };
}

async function ours(ctx: Ctx): Promise<{ before: number; after: number }> {
  const agent = await startBenchAgent(['--no-persist'], runDir('agent-kill'));
  try {
    const api = new Api(agent.url);
    await api.createMany('kill', N, 'tree', ctx.app.url);
    await api.waitFor('kill', N, ['running']);
    return await killAndCount(agent.proc.pid!);
  } finally {
    await agent.stop();
  }
}

async function peerOnce(ctx: Ctx, peer: Peer): Promise<PeerResult> {
  await startAndWait(peer, { name: 'tree', command: ctx.app.commands.tree, count: N, restart: true, cwd: ctx.app.dir });
  const { before, after } = await killAndCount(peer.pid());
  console.log(`  ${peer.name}: ${before} sleeps before, ${after} alive ${AFTER_MS / 1000} s after kill -9`);
  return { value: after, note: `of ${before}; 1 run` };
}

export async function killScenario(ctx: Ctx): Promise<Row[]> {
  console.log(`side-by-side: kill -9 of the supervisor with ${N} children (and grandchildren)…`);
  const o = await ours(ctx);
  console.log(`  ours: ${o.before} sleeps before, ${o.after} alive ${AFTER_MS / 1000} s after kill -9`);
  const peers = await eachPeer(ctx, (maker) => withPeer(maker, (peer) => peerOnce(ctx, peer)));
  return new Table(`kill -9 of the supervisor, ${N} children × 3 sleeps`, `alive after ${AFTER_MS / 1000} s`, 'processes', o.after)
    .goal('goal', 0, '0', o.after === 0, `of ${o.before}; 1 run`)
    .peers(peers).rows;
}
