/**
 * 2. memory: what a supervisor costs with 100 idle children, 2 s after all run: the supervisor plus its helpers,
 * i.e. every descendant that is not the user's command. The idle command (`sleep 7700`) has no shell syntax, so
 * no peer has a shell of the harness around it; what is left are the supervisor's own helpers: for ours one
 * `unshare` and one `sh` namespace init per child, for foreman its `/bin/sh -c` per child, for supervisord and
 * PM2 none. Sums of RSS (the measure; shared pages counted once per process), PSS (shared pages divided
 * between sharers) and USS (Private_Clean + Private_Dirty: what ending them would give back), from
 * /proc/PID/smaps_rollup; the median of each over the runs.
 */
import { median, type Row } from '../lib.js';
import type { PeerMaker } from '../peers/peers.js';
import { commandOf, sleep, supervisorMemory, type ProcInfo, type SupervisorMemory } from '../peers/proc.js';
import { appName, eachPeer, idleProgram, peerRuns, runs, RUNS, startAndWait, Table, type Ctx, type PeerResult } from './common.js';

const N = 100;
const SETTLE_MS = 2000;

const isUser = (ctx: Ctx) => (p: ProcInfo) => commandOf(p) === ctx.app.commands.idle;

function describe(m: SupervisorMemory): string {
  return `RSS ${m.rss.toFixed(1)} MiB, PSS ${m.pss.toFixed(1)} MiB, USS ${m.uss.toFixed(1)} MiB`;
}

/** The median of each measure over the runs, and the helpers of the last one. */
function medianMemory(samples: SupervisorMemory[]): SupervisorMemory {
  const of = (key: 'rss' | 'pss' | 'uss') => median(samples.map((s) => s[key]));
  const last = samples.at(-1)!;
  return { rss: of('rss'), pss: of('pss'), uss: of('uss'), helpers: last.helpers, users: last.users };
}

function note(m: SupervisorMemory, count: number): string {
  return `PSS ${m.pss.toFixed(1)} MiB, USS ${m.uss.toFixed(1)} MiB; helpers ${JSON.stringify(m.helpers)}; ${runs(count)}`;
}

async function oursOnce(ctx: Ctx): Promise<SupervisorMemory> {
  const app = appName('mem');
  await ctx.api.createMany(app, N, 'idle', ctx.app.url);
  await ctx.api.waitFor(app, N, ['running']);
  await sleep(SETTLE_MS);
  const m = supervisorMemory(ctx.agent.proc.pid!, isUser(ctx));
  await ctx.api.deleteApp(app);
  return m;
}

async function peerMemory(ctx: Ctx, maker: PeerMaker): Promise<PeerResult> {
  const samples = await peerRuns(maker, { runs: RUNS }, async (peer) => {
    await startAndWait(peer, idleProgram(ctx, N));
    await sleep(SETTLE_MS);
    return supervisorMemory(peer.pid(), isUser(ctx));
  });
  const m = medianMemory(samples);
  console.log(`  ${maker.name}: ${describe(m)}; helpers ${JSON.stringify(m.helpers)}, user commands ${m.users}`);
  return { value: m.rss, note: note(m, samples.length) };
}

export async function memoryScenario(ctx: Ctx): Promise<Row[]> {
  console.log(`side-by-side: memory with ${N} idle children (${runs(RUNS)} each)…`);
  const samples: SupervisorMemory[] = [];
  for (let r = 0; r < RUNS; r++) samples.push(await oursOnce(ctx));
  const ours = medianMemory(samples);
  const alone = supervisorMemory(ctx.agent.proc.pid!, () => true);
  console.log(`  ours: ${describe(ours)}; helpers ${JSON.stringify(ours.helpers)}, user commands ${ours.users}`);
  console.log(`  ours, the agent process alone (now idle): ${describe(alone)}`);
  const peers = await eachPeer(ctx, (maker) => peerMemory(ctx, maker));
  return new Table(`RSS with ${N} idle children`, 'supervisor + helpers, RSS sum', 'MiB', ours.rss)
    .goal('goal', 45, '≤ 45 MiB', ours.rss <= 45, note(ours, RUNS))
    .peers(peers).rows;
}
