/**
 * 7. immediate-exit output: a child prints 1,000 numbered lines and ends at once; 30 trials; a trial loses if the
 * supervisor did not keep exactly those lines, in order. Ours: 30 processes (restart never) at once, then each
 * one's `output?tail=2000` once all have exited. supervisord, PM2: 30 instances at once, then each log file once
 * all are complete or 15 s have passed. foreman: 30 runs of `nf start burst=1` (its first ending child stops nf),
 * each counted on nf's stdout.
 */
import { readFileSync } from 'node:fs';
import type { Row } from '../lib.js';
import type { Peer, Program } from '../peers/peer.js';
import type { PeerMaker } from '../peers/peers.js';
import { deadline, sleep, TimeoutError, until } from '../peers/proc.js';
import { appName, eachPeer, peerRuns, Table, type Ctx, type PeerResult } from './common.js';

const TRIALS = 30;
const LINES = 1000;
const WAIT_MS = 15_000;
/** What every trial must have kept. */
const EXPECTED = Array.from({ length: LINES }, (_, i) => String(i + 1).padStart(9, '0')).join('\n') + '\n';

const lost = (kept: string[]) => kept.filter((text) => text !== EXPECTED).length;

function burstProgram(ctx: Ctx, count: number): Program {
  return { name: 'burst', command: ctx.app.commands.burst, count, restart: false, cwd: ctx.app.dir, line: /^\d{9}$/ };
}

async function ours(ctx: Ctx): Promise<number> {
  const app = appName('burst');
  try {
    const made = await ctx.api.createMany(app, TRIALS, 'burst', ctx.app.url, 'never');
    await ctx.api.waitFor(app, TRIALS, ['exited']);
    const kept = await Promise.all(made.map(async (s) => ctx.api.output((await ctx.api.status(s.details)).output, 2 * LINES)));
    return lost(kept);
  } finally {
    await ctx.api.deleteApp(app);
  }
}

const readOrEmpty = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** supervisord, PM2: all instances at once; each log file once all are complete (or WAIT_MS passed). */
async function fileTrials(ctx: Ctx, peer: Peer): Promise<number> {
  await peer.prepare([burstProgram(ctx, TRIALS)]);
  await peer.startAll();
  const files = Array.from({ length: TRIALS }, (_, i) => peer.logFile('burst', i)!);
  const kept = () => files.map(readOrEmpty);
  await until(() => lost(kept()) === 0, WAIT_MS, () => 'all complete').catch((err: unknown) => {
    if (!(err instanceof TimeoutError)) throw err;
  });
  await sleep(100);
  const counts = kept().map((text) => text.split('\n').length - 1);
  console.log(`  ${peer.name}: lines kept per instance ${counts.join(' ')}`);
  return lost(kept());
}

interface Trials {
  /** Trials that did not keep every line. */
  lost: number;
  /** Trials where lines were kept but some cut in two (foreman). */
  cut: number;
}

/** foreman: one `nf start burst=1`, counted on nf's stdout. */
async function foremanTrial(ctx: Ctx, peer: Peer): Promise<Trials> {
  await peer.prepare([burstProgram(ctx, 1)]);
  await peer.startAll();
  const printed = peer.printed!();
  await deadline(printed.closed, WAIT_MS, 'nf to exit');
  const lost = printed.chars < LINES * 9 ? 1 : 0;
  return { lost, cut: !lost && printed.intact < LINES ? 1 : 0 };
}

async function peerBurst(ctx: Ctx, maker: PeerMaker): Promise<PeerResult> {
  const perRun = maker.prints
    ? await peerRuns(maker, { runs: TRIALS }, (peer) => foremanTrial(ctx, peer))
    : await peerRuns(maker, { runs: 1 }, async (peer): Promise<Trials> => ({ lost: await fileTrials(ctx, peer), cut: 0 }));
  const lost = perRun.reduce((n, t) => n + t.lost, 0);
  const cut = perRun.reduce((n, t) => n + t.cut, 0);
  const how = maker.prints ? `${TRIALS} runs of 1 instance` : `1 run of ${TRIALS} instances`;
  const note = cut ? `${how}; ${cut}/${TRIALS} trials had lines cut in two (no text lost)` : how;
  console.log(`  ${maker.name}: ${lost}/${TRIALS} trials lost lines; ${note}`);
  return { value: lost, note };
}

export async function burstScenario(ctx: Ctx): Promise<Row[]> {
  console.log(`side-by-side: immediate-exit output, ${TRIALS} trials of ${LINES} lines…`);
  const o = await ours(ctx);
  console.log(`  ours: ${o}/${TRIALS} trials lost lines`);
  const peers = await eachPeer(ctx, (maker) => peerBurst(ctx, maker));
  return new Table(`immediate exit after ${LINES} lines, ${TRIALS} trials`, 'trials with lost lines', 'trials', o)
    .goal('goal', 0, `0/${TRIALS}`, o === 0, `1 run, ${TRIALS} processes`)
    .peers(peers).rows;
}
