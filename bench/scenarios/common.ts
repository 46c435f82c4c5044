/** What every side-by-side scenario shares: its context, running a peer safely, and building its table rows. */
import type { BenchAgent, Row } from '../lib.js';
import { median } from '../lib.js';
import type { Peer, Program } from '../peers/peer.js';
import type { PeerMaker } from '../peers/peers.js';
import { until } from '../peers/proc.js';
import { sweep } from '../peers/reaper.js';
import type { Api, BenchApp } from './ours.js';

export const RUNS = Number(process.env.BENCH_RUNS ?? 5);

export interface Ctx {
  app: BenchApp;
  /** The agent shared by the scenarios (started once, archive cached). */
  agent: BenchAgent;
  api: Api;
  peers: PeerMaker[];
}

/** A measured peer, or why it could not be. */
export type PeerResult = { value: number; note?: string } | { na: string };

let seq = 0;
/** A fresh app name in the shared agent, so runs never see each other's processes. */
export const appName = (what: string) => `${what}${++seq}`;

/** `5 runs`, `1 run`. */
export const runs = (n: number) => `${n} run${n === 1 ? '' : 's'}`;

export const ms = (values: number[]) => values.map((v) => v.toFixed(0)).join(', ');

/**
 * Runs `fn` against a fresh instance of the peer, then always tears it down and kills whatever still carries its
 * markers; a failure (including any deadline) is thrown on.
 */
export async function withPeer<T>(maker: PeerMaker, fn: (peer: Peer) => Promise<T>): Promise<T> {
  const peer = maker.make();
  try {
    return await fn(peer);
  } finally {
    await peer.shutdown().catch((err: Error) => console.log(`  ${peer.name}: shutdown: ${err.message}`));
    sweep(peer.markers());
  }
}

export interface Repeat {
  runs: number;
  /** Stop after `minRuns` once the runs so far took longer than `budgetMs` (inherently slow peers). */
  minRuns?: number;
  budgetMs?: number;
}

/** `once` repeated on fresh peer instances, as `repeat` says; a failure is thrown on. */
export async function peerRuns<T>(maker: PeerMaker, repeat: Repeat, once: (peer: Peer) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  const began = performance.now();
  for (let r = 0; r < repeat.runs; r++) {
    results.push(await withPeer(maker, once));
    const overBudget = repeat.budgetMs !== undefined && performance.now() - began > repeat.budgetMs;
    if (overBudget && results.length >= (repeat.minRuns ?? repeat.runs)) break;
  }
  return results;
}

/** The median of `once` over fresh peer instances, noting how many runs it took. */
export async function peerMedian(maker: PeerMaker, repeat: Repeat, once: (peer: Peer) => Promise<number>): Promise<PeerResult> {
  const values = await peerRuns(maker, repeat, once);
  console.log(`  ${maker.name}: ${ms(values)}`);
  return { value: median(values), note: runs(values.length) };
}

/** Slow peers (a PM2 graceful stop, a foreman log capture) may stop after 3 runs once a minute has gone by. */
export const SLOW_PEER: Repeat = { runs: RUNS, minRuns: 3, budgetMs: 60_000 };

/** Thrown when a peer cannot do what a scenario measures (not a failure of the run): its n/a reason. */
export class NotComparable extends Error {}

/** A peer run that threw, as an n/a result (and a log line). */
export function failed(name: string, err: unknown): PeerResult {
  const message = err instanceof Error ? err.message : String(err);
  console.log(`  ${name}: n/a: ${message}`);
  return { na: err instanceof NotComparable ? message : `failed: ${message.slice(0, 200)}` };
}

/** The limit and ours, `RUNS` times each, interleaved so that drift in machine load hits both alike. */
export async function interleaved(limitOnce: () => Promise<number>, oursOnce: () => Promise<number>): Promise<{ limit: number[]; ours: number[] }> {
  const limit: number[] = [];
  const ours: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    limit.push(await limitOnce());
    ours.push(await oursOnce());
  }
  return { limit, ours };
}

/** `count` instances of the idle command (restarted when they end, like ours by default). */
export function idleProgram(ctx: Ctx, count: number): Program {
  return { name: 'idle', command: ctx.app.commands.idle, count, restart: true, cwd: ctx.app.dir };
}

/**
 * Configures the peer and starts its daemon (untimed), then asks it to start everything and polls its status every
 * 10 ms until every instance runs; returns the ms from the request to all running.
 */
export async function startAndWait(peer: Peer, ...programs: Program[]): Promise<number> {
  await peer.prepare(programs);
  const want = programs.reduce((n, p) => n + p.count, 0);
  const began = performance.now();
  await peer.startAll();
  let running = 0;
  await until(async () => (running = await peer.running()) >= want, 60_000, () => `${peer.name}: ${running}/${want} running`);
  return performance.now() - began;
}

/** Each peer in turn, never letting one peer's failure stop the others. */
export async function eachPeer(ctx: Ctx, measure: (maker: PeerMaker) => Promise<PeerResult>): Promise<Array<[string, PeerResult]>> {
  const out: Array<[string, PeerResult]> = [];
  for (const maker of ctx.peers) out.push([maker.name, await measure(maker).catch((err: unknown) => failed(maker.name, err))]);
  return out;
}

/** The rows of one scenario: ours against its goal or limit, then ours against each peer. */
export class Table {
  readonly rows: Row[] = [];

  constructor(
    private readonly scenario: string,
    private readonly metric: string,
    private readonly unit: string,
    private readonly ours: number,
  ) {}

  /** Ours against the goal or limit of the issue. */
  goal(referenceName: string, reference: number, goal: string, met: boolean, note?: string): this {
    this.rows.push(this.row(referenceName, reference, goal, met, note));
    return this;
  }

  /**
   * Ours against each peer. `beat` says whether ours beats a peer's value, when the issue asks us to (spawn);
   * otherwise the row is information and always met. An n/a peer is never a failure of ours.
   */
  peers(results: Array<[string, PeerResult]>, beat?: (ours: number, peer: number) => boolean): this {
    for (const [name, result] of results) {
      if ('na' in result) this.rows.push(this.row(name, NaN, 'n/a', true, result.na));
      else if (beat) this.rows.push(this.row(name, result.value, `better than ${name}`, beat(this.ours, result.value), result.note));
      else this.rows.push(this.row(name, result.value, 'info', true, result.note));
    }
    return this;
  }

  private row(referenceName: string, reference: number, goal: string, met: boolean, note?: string): Row {
    const { scenario, metric, unit, ours } = this;
    return { scenario, metric, ours, reference, referenceName, unit, goal, met, ...(note ? { note } : {}) };
  }
}
