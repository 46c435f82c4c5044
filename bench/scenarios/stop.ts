/**
 * 5. graceful stop: 50 children whose SIGTERM/SIGINT handler takes 500 ms and then appends a line to a file; from
 * the stop request to all stopped, and how many handlers ran (the minimum over the runs). Ours: the 50 delete
 * requests at once (each answers once its child has ended). supervisord: `stopAllProcesses(wait)`; PM2:
 * `stop('all')`; foreman: Ctrl-C (SIGINT to nf) until nf has exited. The handler traps both signals, since PM2
 * and nf stop with SIGINT by default.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { median, type Row } from '../lib.js';
import type { Peer } from '../peers/peer.js';
import type { PeerMaker } from '../peers/peers.js';
import { sleep } from '../peers/proc.js';
import { appName, eachPeer, ms, peerRuns, runs, RUNS, SLOW_PEER, startAndWait, Table, type Ctx, type PeerResult } from './common.js';

const N = 50;
const HANDLER_MS = 500;
/** After all run, so that every shell has set its trap before the stop. */
const SETTLE_MS = 500;

interface Stop {
  ms: number;
  handled: number;
}

function handledCount(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

/** Times `stop` and counts the handlers that ran; the handler file is emptied first. */
async function timeStop(ctx: Ctx, stop: () => Promise<unknown>): Promise<Stop> {
  await sleep(SETTLE_MS);
  const began = performance.now();
  await stop();
  const took = performance.now() - began;
  return { ms: took, handled: handledCount(ctx.app.handled) };
}

async function oursOnce(ctx: Ctx): Promise<Stop> {
  rmSync(ctx.app.handled, { force: true });
  const app = appName('stop');
  const all = await ctx.api.createMany(app, N, 'handler', ctx.app.url);
  await ctx.api.waitFor(app, N, ['running']);
  return timeStop(ctx, () => Promise.all(all.map((s) => ctx.api.delete(s))));
}

async function peerOnce(ctx: Ctx, peer: Peer): Promise<Stop> {
  rmSync(ctx.app.handled, { force: true });
  await startAndWait(peer, { name: 'handler', command: ctx.app.commands.handler, count: N, restart: true, cwd: ctx.app.dir });
  return timeStop(ctx, () => peer.stopAll());
}

function summary(stops: Stop[]): { ms: number; handled: number; note: string } {
  const handled = Math.min(...stops.map((s) => s.handled));
  return { ms: median(stops.map((s) => s.ms)), handled, note: `${handled}/${N} handlers ran (fewest over ${runs(stops.length)})` };
}

async function peerStops(ctx: Ctx, maker: PeerMaker): Promise<PeerResult> {
  // PM2 stops two apps at a time: a run takes ~15 s.
  const stops = await peerRuns(maker, SLOW_PEER, (peer) => peerOnce(ctx, peer));
  const s = summary(stops);
  console.log(`  ${maker.name}: ${ms(stops.map((x) => x.ms))} ms; ${s.note}`);
  return { value: s.ms, note: s.note };
}

export async function stopScenario(ctx: Ctx): Promise<Row[]> {
  console.log(`side-by-side: graceful stop of ${N} (${HANDLER_MS} ms handlers, ${runs(RUNS)} each; slow peers at least 3)…`);
  const ours: Stop[] = [];
  for (let r = 0; r < RUNS; r++) ours.push(await oursOnce(ctx));
  const o = summary(ours);
  console.log(`  ours: ${ms(ours.map((x) => x.ms))} ms; ${o.note}`);
  const peers = await eachPeer(ctx, (maker) => peerStops(ctx, maker));
  const limit = HANDLER_MS + 300;
  return new Table(`graceful stop of ${N} (${HANDLER_MS} ms handlers)`, 'ms to all stopped', 'ms', o.ms)
    .goal(`handler + 300 ms`, limit, `≤ ${limit} ms, ${N}/${N} handlers`, o.ms <= limit && o.handled === N, o.note)
    .peers(peers).rows;
}
