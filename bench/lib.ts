/** Small shared pieces of the benchmarks: timing, medians, RSS, the real agent binary. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

export interface BenchAgent {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** The real agent binary on an ephemeral port, as users run it. */
export async function startBenchAgent(args: string[] = [], home?: string): Promise<BenchAgent> {
  home ??= await mkdtemp(path.join(os.tmpdir(), 'pa-bench-'));
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', path.join(home, 'data'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    proc.stderr!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = /"url":"([^"]+)"[^\n]*"msg":"listening"/.exec(buffered);
      if (match) resolve(match[1]!);
      // The agent logs every request: keep only a tail for the error message.
      if (buffered.length > 1_000_000) buffered = buffered.slice(-10_000);
    });
    proc.once('exit', () => reject(new Error(`agent exited: ${buffered}`)));
  });
  return {
    url,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGINT');
      }),
  };
}

export function ratio(ours: number, other: number): string {
  return `${(ours / other).toFixed(2)}×`;
}

export interface Row {
  scenario: string;
  metric: string;
  ours: number;
  reference: number;
  referenceName: string;
  unit: string;
  goal: string;
  met: boolean;
}

export function printRows(rows: Row[]): void {
  console.table(
    rows.map((row) => ({
      scenario: row.scenario,
      metric: row.metric,
      ours: `${row.ours.toFixed(1)} ${row.unit}`,
      [`vs`]: `${row.reference.toFixed(1)} ${row.unit} (${row.referenceName})`,
      ratio: ratio(row.ours, row.reference),
      goal: row.goal,
      met: row.met ? 'yes' : 'NO',
    })),
  );
}
