/**
 * Nothing the benchmark starts may outlive it. Every process it starts carries a marker in its command line: a
 * path under the run's own temp directory (agents' --data-dir, supervisord's -c, PM2's daemon title with its
 * PM2_HOME, nf's -j Procfile, the generator's and handler's state files) or one of the `sleep 77NN` durations the
 * bench commands use. After each scenario, and on exit or Ctrl-C, whatever still carries one of these markers is
 * SIGKILLed — and nothing else.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killPids, procTable, type ProcInfo } from './proc.js';

const markers = new Set<string>();
let root: string | undefined;

/** The run's temp directory (created on first use); everything the run writes lives under it. */
export function runRoot(): string {
  if (!root) {
    root = mkdtempSync(path.join(os.tmpdir(), 'pa-bench-run-'));
    markers.add(root);
  }
  return root;
}

/** A fresh directory under the run root. */
export function runDir(prefix: string): string {
  return mkdtempSync(path.join(runRoot(), `${prefix}-`));
}

/** Marks command lines that contain `marker` as the benchmark's own. */
export function addMarker(marker: string): void {
  markers.add(marker);
}

export function isMarked(p: ProcInfo, among: Iterable<string> = markers): boolean {
  if (p.pid === process.pid) return false;
  for (const m of among) if (p.cmdline.includes(m)) return true;
  return false;
}

/**
 * SIGKILLs every process carrying one of `among` (default: every marker of the run) except `spare` (the shared
 * agent between scenarios); returns what it found, for the log.
 */
export function sweep(among: Iterable<string> = markers, spare: number[] = []): ProcInfo[] {
  const list = [...among];
  const found = procTable().filter((p) => !spare.includes(p.pid) && isMarked(p, list));
  killPids(found.map((p) => p.pid));
  return found;
}

let installed = false;

/** Sweep on every way out: normal exit, an uncaught error, Ctrl-C, SIGTERM, SIGHUP. */
export function installReaper(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    sweep();
    if (root) rmSync(root, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.log(`\n${signal}: killing what the benchmark started, then exiting`);
      process.exit(130);
    });
  }
}
