/**
 * Issue #10: the agent side by side with supervisord, PM2 and foreman, and with the limit (what bare node or
 * curl+tar do). Ours always goes through the real agent binary and its HTTP API, from one cached archive; the
 * peers through their own configuration files and control interfaces (bench/peers/). See bench/README.md.
 */
import { startBenchAgent, type Row } from '../lib.js';
import { availablePeers } from '../peers/peers.js';
import { installReaper, runDir, sweep } from '../peers/reaper.js';
import { burstScenario } from './burst.js';
import { captureScenario } from './capture.js';
import type { Ctx } from './common.js';
import { crashScenario } from './crash.js';
import { killScenario } from './kill.js';
import { memoryScenario } from './memory.js';
import { Api, benchApp, warm } from './ours.js';
import { spawnScenario } from './spawn.js';
import { stopScenario } from './stop.js';
import { unpackScenario } from './unpack.js';

/** The scenarios, in the order; each name also works as `--only NAME`. */
export const SCENARIOS: Record<string, (ctx: Ctx) => Promise<Row[]>> = {
  spawn: spawnScenario,
  memory: memoryScenario,
  capture: captureScenario,
  crash: crashScenario,
  stop: stopScenario,
  kill: killScenario,
  burst: burstScenario,
  unpack: () => unpackScenario(),
};

function failedRow(name: string, err: unknown): Row {
  const message = err instanceof Error ? err.message : String(err);
  console.log(`  ${name} failed: ${err instanceof Error ? err.stack : message}`);
  return { scenario: name, metric: 'failed', ours: NaN, reference: NaN, referenceName: 'error', unit: '', goal: 'runs', met: false, note: message };
}

/** Kills what a scenario left behind (never the shared agent), and says so: a leftover is worth knowing about. */
function reapLeftovers(name: string, agentPid: number): void {
  const left = sweep(undefined, [agentPid]);
  if (left.length === 0) return;
  const kinds = [...new Set(left.map((p) => p.cmdline.slice(0, 60)))].slice(0, 4).join(' | ');
  console.log(`  after ${name}: killed ${left.length} leftover processes (${kinds})`);
}

/** Runs the named scenarios (all by default) with one shared agent; `withPeers` false = ours and limits only. */
export async function sideBySideBenchmarks(names = Object.keys(SCENARIOS), withPeers = true): Promise<Row[]> {
  installReaper();
  const peers = withPeers ? availablePeers() : [];
  console.log(`side-by-side: peers ${peers.map((p) => p.name).join(', ') || 'none'}`);
  const app = await benchApp();
  const agent = await startBenchAgent(['--no-persist'], runDir('agent'));
  const ctx: Ctx = { app, agent, api: new Api(agent.url), peers };
  const rows: Row[] = [];
  try {
    await warm(ctx.api, app);
    for (const name of names) {
      rows.push(...(await SCENARIOS[name]!(ctx).catch((err: unknown) => [failedRow(name, err)])));
      reapLeftovers(name, agent.proc.pid!);
    }
  } finally {
    await agent.stop();
    app.close();
    sweep();
  }
  return rows;
}
