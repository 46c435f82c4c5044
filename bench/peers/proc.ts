/** The process table from /proc (descendants, memory, CPU ticks), killing by pid, and waiting with a deadline. */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  /** argv joined by spaces. */
  cmdline: string;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The fields of /proc/PID/stat after `(comm)`: index 0 is the state, 1 the ppid, 11/12 utime/stime. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

export function procTable(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = read(`/proc/${name}/stat`);
    if (!stat) continue;
    const fields = statFields(stat);
    if (fields[0] === 'Z') continue; // a zombie is already dead; its parent has just not reaped it
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const cmdline = (read(`/proc/${name}/cmdline`) ?? '').replace(/\0/g, ' ').trim();
    out.push({ pid: Number(name), ppid: Number(fields[1]), comm, cmdline });
  }
  return out;
}

/** The command line with the directory of its program left out (`/usr/bin/sleep 7700` → `sleep 7700`). */
export function commandOf(p: ProcInfo): string {
  return p.cmdline.replace(/^\S*\//, '');
}

/** Every descendant of `root` (not `root` itself), breadth first. */
export function descendants(root: number, table = procTable()): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of table) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

export interface Memory {
  /** Resident pages, shared ones (libc, the node or python binary) counted in full by every process. */
  rss: number;
  /** Shared pages divided between their sharers. */
  pss: number;
  /** Pages of this process alone (Private_Clean + Private_Dirty): what ending it would give back. */
  uss: number;
}

const NO_MEMORY: Memory = { rss: 0, pss: 0, uss: 0 };

/** Memory of one pid in MiB, from /proc/PID/smaps_rollup (zeros when it is gone). */
export function memMiB(pid: number): Memory {
  const text = read(`/proc/${pid}/smaps_rollup`);
  if (!text) return NO_MEMORY;
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024, uss: (kb('Private_Clean') + kb('Private_Dirty')) / 1024 };
}

export function addMemory(a: Memory, b: Memory): Memory {
  return { rss: a.rss + b.rss, pss: a.pss + b.pss, uss: a.uss + b.uss };
}

export interface SupervisorMemory extends Memory {
  /** How many helper processes were summed with the supervisor, by command name. */
  helpers: Record<string, number>;
  /** Descendants left out: the user's commands (and shells the harness put around them). */
  users: number;
}

/** Memory a supervisor costs: itself plus every descendant that is not the user's (`isUser`), summed. */
export function supervisorMemory(pid: number, isUser: (p: ProcInfo) => boolean): SupervisorMemory {
  const desc = descendants(pid);
  const helpers = desc.filter((p) => !isUser(p));
  const kinds: Record<string, number> = {};
  for (const h of helpers) kinds[h.comm] = (kinds[h.comm] ?? 0) + 1;
  const sum = helpers.reduce((acc, h) => addMemory(acc, memMiB(h.pid)), memMiB(pid));
  return { ...sum, helpers: kinds, users: desc.length - helpers.length };
}

/** Clock ticks (USER_HZ) a pid has spent: its own, and those of the children it has reaped. */
export function cpuTicks(pid: number): { own: number; reaped: number } {
  const fields = statFields(read(`/proc/${pid}/stat`) ?? '');
  const at = (i: number) => Number(fields[i] ?? 0);
  return { own: at(11) + at(12), reaped: at(13) + at(14) };
}

export const CLK_TCK = 100;

/** SIGKILL these pids; returns how many were still there. */
export function killPids(pids: number[]): number {
  let killed = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      killed += 1;
    } catch {
      // already gone
    }
  }
  return killed;
}

/**
 * SIGKILL a supervisor and everything below it: the descendants are listed first, then the supervisor is killed
 * (so it restarts nothing more), then them (they may have been re-parented by then).
 */
export function killTree(pid: number): void {
  const below = descendants(pid).map((p) => p.pid);
  killPids([pid]);
  killPids(below);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class TimeoutError extends Error {}

/** `promise`, or a TimeoutError after `ms` (the promise itself is left to settle on its own). */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what}: no answer within ${(ms / 1000).toFixed(0)} s`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Polls `check` every `everyMs` until it is true; throws after `timeoutMs`. `describe` is called then, so the
 * message says where things stood when time ran out.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
  everyMs = 10,
): Promise<void> {
  const began = Date.now();
  while (!(await check())) {
    if (Date.now() - began > timeoutMs) throw new TimeoutError(`timed out after ${timeoutMs / 1000} s: ${describe()}`);
    await sleep(everyMs);
  }
}
