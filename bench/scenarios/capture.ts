/**
 * 3. log capture: one child prints LOG_LINES (1M) numbered 100-byte lines; the time from releasing it (it waits
 * for a `go` file, so starting is not timed) until the supervisor has captured the last line:
 * - ours: the `output` link of the status document polled every 10 ms with `?tail=1` until it answers the last
 *   line (captured into the scrollback — not delivery to a WebSocket attacher);
 * - supervisord, PM2: until the instance's log file holds every byte (polled every 10 ms);
 * - foreman: until nf has printed every line on its stdout, intact (prefix stripped, payload whole).
 * Limit: a bare node reader of the same pipe that splits lines (lib.ts bareSplit).
 */
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { bareSplit, median, timeIt, type Row } from '../lib.js';
import type { Peer, Program } from '../peers/peer.js';
import { until } from '../peers/proc.js';
import type { PeerMaker } from '../peers/peers.js';
import { appName, eachPeer, interleaved, ms, NotComparable, peerRuns, runs, RUNS, SLOW_PEER, startAndWait, Table, type Ctx, type PeerResult } from './common.js';
import { lastGenLine, LOG_LINES } from './ours.js';

const LINE_BYTES = 100;
const CAPTURE_MS = 180_000;

const rate = (took: number) => LOG_LINES / (took / 1000);

async function limitOnce(): Promise<number> {
  return timeIt(async () => {
    const lines = await bareSplit(`seq -f %099.0f 1 ${LOG_LINES}`);
    if (lines !== LOG_LINES) throw new Error(`bare split: ${lines} lines`);
  });
}

/** Removes the `go` file, runs `setup` (which starts the generator), then times `go` → `captured`. */
async function timeRelease(ctx: Ctx, setup: () => Promise<void>, captured: () => Promise<void>): Promise<number> {
  rmSync(ctx.app.go, { force: true });
  await setup();
  const began = performance.now();
  writeFileSync(ctx.app.go, '');
  await captured();
  return performance.now() - began;
}

async function oursOnce(ctx: Ctx): Promise<number> {
  const app = appName('log');
  let output = '';
  const setup = async () => {
    const created = await ctx.api.create(app, 'n1', 'gen', ctx.app.url, 'never');
    output = (await ctx.api.status(created.details)).output;
    await ctx.api.waitFor(app, 1, ['running']);
  };
  const last = lastGenLine();
  let seen = '';
  const captured = () =>
    until(
      async () => (seen = (await ctx.api.output(output, 1)).trimEnd()) === last,
      CAPTURE_MS,
      () => `ours: last line captured ${seen.slice(-12) || '(none)'}`,
    );
  try {
    return await timeRelease(ctx, setup, captured);
  } finally {
    await ctx.api.deleteApp(app);
  }
}

function genProgram(ctx: Ctx): Program {
  return { name: 'gen', command: ctx.app.commands.gen, count: 1, restart: false, cwd: ctx.app.dir, line: /^\d{99}$/ };
}

const n = (x: number) => x.toLocaleString('en-US');

/** How long a log file may stand still, once the generator has ended, before its missing bytes count as lost. */
const STALL_MS = 3000;

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * supervisord, PM2: until the log file holds every byte. If it stops growing after the generator has ended, the
 * rest is lost (PM2 closes an app's log stream when the app exits, sometimes before writing what it read).
 */
async function fileCaptured(peer: Peer): Promise<void> {
  const file = peer.logFile('gen', 0)!;
  const want = LOG_LINES * LINE_BYTES;
  let size = 0;
  let grewAt = performance.now();
  const doneOrStalled = async () => {
    const now = fileSize(file);
    if (now !== size) grewAt = performance.now();
    size = now;
    return size >= want || (performance.now() - grewAt > STALL_MS && (await peer.running()) === 0);
  };
  await until(doneOrStalled, CAPTURE_MS, () => `${peer.name}: ${file} has ${size} of ${want} bytes`);
  if (size < want) {
    throw new NotComparable(`${peer.name} lost output: its log file has ${n(size)} of ${n(want)} bytes after the generator ended`);
  }
}

/** foreman: until every line is printed intact; if nf exits first, it has split or lost some. */
async function printedCaptured(peer: Peer): Promise<void> {
  const printed = peer.printed!();
  const began = performance.now();
  let closed = false;
  void printed.closed.then(() => (closed = true));
  await until(() => printed.intact >= LOG_LINES || closed, CAPTURE_MS, () => `${peer.name}: ${printed.intact} lines printed intact`);
  if (printed.intact < LOG_LINES) {
    throw new NotComparable(
      `nf printed ${n(printed.intact)} of ${n(LOG_LINES)} lines intact, ${n((printed.lines - printed.intact) / 2)} cut in two ` +
        `(it prints each pipe read on its own); its output ended after ${(performance.now() - began).toFixed(0)} ms`,
    );
  }
}

function peerOnce(ctx: Ctx, peer: Peer): Promise<number> {
  const captured = peer.printed ? () => printedCaptured(peer) : () => fileCaptured(peer);
  return timeRelease(ctx, async () => void (await startAndWait(peer, genProgram(ctx))), captured);
}

/** A run that lost or mangled output, as its reason (any other failure is thrown on). */
const lossOf = (err: unknown) => (err instanceof NotComparable ? err : Promise.reject(err));

/** The median rate of the runs that captured everything; the runs that did not, in the note (all of them: n/a). */
async function peerCapture(ctx: Ctx, maker: PeerMaker): Promise<PeerResult> {
  const outcomes = await peerRuns(maker, SLOW_PEER, (peer) => peerOnce(ctx, peer).catch(lossOf));
  const times = outcomes.filter((o): o is number => typeof o === 'number');
  const losses = outcomes.filter((o): o is NotComparable => o instanceof NotComparable);
  const bad = losses.length ? `${runs(losses.length)} without every line intact: ${losses[0]!.message}` : '';
  console.log(`  ${maker.name}: ${times.length ? `${ms(times)} ms` : 'no complete run'}${bad ? `; ${bad}` : ''}`);
  if (times.length === 0) return { na: bad };
  const lost = bad ? `; ${bad}` : '';
  return { value: rate(median(times)), note: `${runs(times.length)}${lost}` };
}

export async function captureScenario(ctx: Ctx): Promise<Row[]> {
  console.log(`side-by-side: log capture ${LOG_LINES} × ${LINE_BYTES} B (${runs(RUNS)} each; slow peers at least 3)…`);
  const { limit, ours } = await interleaved(limitOnce, () => oursOnce(ctx));
  console.log(`  ours ${ms(ours)} ms; bare split ${ms(limit)} ms`);
  const peers = await eachPeer(ctx, (maker) => peerCapture(ctx, maker));
  const o = rate(median(ours));
  const l = rate(median(limit));
  return new Table(`log capture ${LOG_LINES.toLocaleString('en-US')} × ${LINE_BYTES} B`, 'lines/s until the last is captured', 'lines/s', o)
    .goal('bare node split', l, '≥ 0.8× limit', o >= 0.8 * l, runs(RUNS))
    .peers(peers).rows;
}
