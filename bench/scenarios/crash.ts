/**
 * 4. crash loop: 20 children that exit at once (`exit 1`), restarted forever, for BENCH_CRASH_S (30) s; the CPU
 * the supervisor process itself spends (utime + stime of its pid over wall time, one run each: the scenario is
 * inherently long). The note adds the restarts in the window and the CPU including the children the supervisor
 * reaped (cutime + cstime: for ours the `unshare` wrappers, for the peers the `sh -c exit 1` shells).
 * foreman is n/a: it never restarts (the first child to end stops the others and nf exits).
 */
import type { Row } from '../lib.js';
import type { PeerMaker } from '../peers/peers.js';
import { CLK_TCK, cpuTicks, sleep } from '../peers/proc.js';
import { appName, eachPeer, Table, withPeer, type Ctx, type PeerResult } from './common.js';

const N = 20;
const CRASH_S = Number(process.env.BENCH_CRASH_S ?? 30);

interface Cpu {
  /** The supervisor's own CPU, % of one core. */
  own: number;
  /** Plus the children it reaped in the window. */
  withReaped: number;
}

async function cpuOver(pid: number, seconds: number): Promise<Cpu> {
  const t0 = cpuTicks(pid);
  const began = performance.now();
  await sleep(seconds * 1000);
  const t1 = cpuTicks(pid);
  const percent = (ticks: number) => (100 * ticks) / CLK_TCK / ((performance.now() - began) / 1000);
  return { own: percent(t1.own - t0.own), withReaped: percent(t1.own + t1.reaped - t0.own - t0.reaped) };
}

function note(cpu: Cpu, restarts: number | undefined): string {
  const counted = restarts === undefined ? 'restarts not reported' : `${restarts} restarts`;
  return `${counted}; with reaped children ${cpu.withReaped.toFixed(2)} %; 1 run of ${CRASH_S} s`;
}

async function ours(ctx: Ctx): Promise<{ cpu: Cpu; restarts: number }> {
  const app = appName('crash');
  const restarts0 = await ctx.api.metric('procfile_agent_restarts_total');
  try {
    await ctx.api.createMany(app, N, 'crash', ctx.app.url);
    const cpu = await cpuOver(ctx.agent.proc.pid!, CRASH_S);
    return { cpu, restarts: (await ctx.api.metric('procfile_agent_restarts_total')) - restarts0 };
  } finally {
    await ctx.api.deleteApp(app);
  }
}

async function peerCrash(ctx: Ctx, maker: PeerMaker): Promise<PeerResult> {
  if (maker.name === 'foreman') return { na: 'nf never restarts: the first child to end stops the others and nf exits' };
  return withPeer(maker, async (peer) => {
    await peer.prepare([{ name: 'crash', command: ctx.app.commands.crash, count: N, restart: true, cwd: ctx.app.dir }]);
    await peer.startAll();
    const cpu = await cpuOver(peer.pid(), CRASH_S);
    const restarts = await peer.restarts();
    console.log(`  ${peer.name}: ${cpu.own.toFixed(2)} % CPU (${cpu.withReaped.toFixed(2)} % with reaped children), ${restarts} restarts`);
    return { value: cpu.own, note: note(cpu, restarts) };
  });
}

export async function crashScenario(ctx: Ctx): Promise<Row[]> {
  console.log(`side-by-side: crash loop, ${N} children, ${CRASH_S} s each…`);
  const o = await ours(ctx);
  console.log(`  ours: ${o.cpu.own.toFixed(2)} % CPU (${o.cpu.withReaped.toFixed(2)} % with reaped children), ${o.restarts} restarts`);
  const peers = await eachPeer(ctx, (maker) => peerCrash(ctx, maker));
  return new Table(`crash loop, ${N} children, ${CRASH_S} s`, 'supervisor CPU', '%', o.cpu.own)
    .goal('goal', 3, '≤ 3 %', o.cpu.own <= 3, note(o.cpu, o.restarts))
    .peers(peers).rows;
}
