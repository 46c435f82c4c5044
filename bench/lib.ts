/** Small shared pieces of the benchmarks: timing, medians, RSS, the bare-split limit, the real agent binary. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildSpec } from '../src/executors/types.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const began = performance.now();
  await fn();
  return performance.now() - began;
}

/** Resident set size of a pid in MiB, from /proc. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** The limit of log capture: a bare node reader of `sh -c command`'s stdout that splits lines and nothing else. */
export function bareSplit(command: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'ignore'] });
    let lines = 0;
    let tail = '';
    child.stdout.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        const line = start === 0 && tail ? tail + chunk.toString('utf8', 0, nl) : chunk.toString('utf8', start, nl);
        if (line.length > 0) lines += 1;
        tail = '';
        start = nl + 1;
      }
      tail = chunk.toString('utf8', start);
    });
    child.on('close', () => resolve(lines));
  });
}

export interface BenchAgent {
  url: string;
  proc: ChildProcess;
  /** SIGINT (graceful), then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** The real agent binary on an ephemeral port, as users run it. */
export async function startBenchAgent(args: string[] = [], home?: string): Promise<BenchAgent> {
  home ??= await mkdtemp(path.join(os.tmpdir(), 'pa-bench-'));
  // BENCH_AGENT_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): node flags for the agent alone, since
  // node refuses --cpu-prof in NODE_OPTIONS and the bench process must not be profiled with it.
  const nodeArgs = (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--port', '0', '--data-dir', path.join(home, 'data'), ...args], {
    // The agent logs to stderr; its stdout only carries what node flags print (--trace-gc): shown when given.
    stdio: ['ignore', nodeArgs.length > 0 ? 'inherit' : 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`agent did not listen within 30 s: ${buffered.slice(-2000)}`)), 30_000);
    proc.stderr!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = /"url":"([^"]+)"[^\n]*"msg":"listening"/.exec(buffered);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
      // The agent logs every request: keep only a tail for the error message.
      if (buffered.length > 1_000_000) buffered = buffered.slice(-10_000);
    });
    void exited.then(() => reject(new Error(`agent exited: ${buffered.slice(-2000)}`)));
  }).catch((err: unknown) => {
    proc.kill('SIGKILL');
    throw err;
  });
  return {
    url,
    proc,
    stop: async (graceMs = 20_000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGINT');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function ratio(ours: number, other: number): string {
  return Number.isFinite(other) && other !== 0 ? `${(ours / other).toFixed(2)}×` : 'n/a';
}

export interface Row {
  scenario: string;
  metric: string;
  ours: number;
  /** NaN when the compared system could not be measured (the note says why). */
  reference: number;
  referenceName: string;
  unit: string;
  goal: string;
  met: boolean;
  /** Anything the numbers alone do not say (what was counted, how many runs, why a peer is n/a). */
  note?: string;
}

/** A value for the table: whole numbers as such and from 1,000 up, one decimal otherwise. */
function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  const whole = Math.abs(value) >= 1000 || Number.isInteger(value);
  const text = whole ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
  return `${text} ${unit}`;
}

export function printRows(rows: Row[]): void {
  const withNotes = rows.some((r) => r.note);
  console.table(
    rows.map((row) => ({
      scenario: row.scenario,
      metric: row.metric,
      ours: formatValue(row.ours, row.unit),
      vs: `${formatValue(row.reference, row.unit)} (${row.referenceName})`,
      ratio: ratio(row.ours, row.reference),
      goal: row.goal,
      met: row.met ? 'yes' : 'NO',
      ...(withNotes ? { note: row.note ?? '' } : {}),
    })),
  );
}

/** What our executors need to run `command` directly, without an agent or an archive (`bench.<node>`). */
export function benchChildSpec(node: string, processType: string, command: string, cwd = process.cwd()): ChildSpec {
  return {
    slug: `bench.${node}`,
    app: 'bench',
    processType,
    command,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    cwd,
    port: null,
    sourceUrl: '',
  };
}
