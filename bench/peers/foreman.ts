/**
 * foreman (node-foreman's `nf`), with its defaults: a Procfile and `nf start -j Procfile name=N,…` run in the
 * app's directory, as its users run it. nf has no API and no log files: "running" is its direct children in
 * /proc, output is what it prints on its stdout, and stopping is Ctrl-C (SIGINT to nf, which sends SIGINT to each
 * child and exits when they have).
 *
 * What nf does by itself, and is measured as such: every instance is `/bin/sh -c <command>` (nf's own shell,
 * so it counts as an nf helper); the first child to end makes nf stop all the others and exit (it never restarts);
 * it prints each read of a child's pipe as lines of its own, `<time> <name>.<N>` padded to 25 columns, ` | `, a
 * space, the text (colours only on a TTY; ANSI codes are stripped here anyway).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Peer, PrintedLines, Program } from './peer.js';
import { descendants, killTree } from './proc.js';
import { runDir } from './reaper.js';

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
/** ` | ` then the one space console.log puts between nf's prefix and the text. */
const DELIMITER = ' | ';

/** The text of one line nf printed for a child, or undefined for nf's own lines (`[OKAY] …`, `… Exited …`). */
export function foremanPayload(line: string): string | undefined {
  const plain = line.replace(ANSI, '');
  const at = plain.indexOf(DELIMITER);
  return at === -1 ? undefined : plain.slice(at + DELIMITER.length + 1);
}

/** Counts nf's stdout as it comes: lines for the children, and of those the ones matching `intact`. */
class LineCounter implements PrintedLines {
  lines = 0;
  intact = 0;
  chars = 0;
  closed: Promise<void>;
  private tail = '';

  constructor(
    stdout: NodeJS.ReadableStream,
    private readonly pattern: RegExp | undefined,
  ) {
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => this.take(chunk));
    this.closed = new Promise((resolve) => stdout.once('close', () => resolve()));
  }

  private take(chunk: string): void {
    const parts = (this.tail + chunk).split('\n');
    this.tail = parts.pop()!;
    for (const line of parts) {
      const payload = foremanPayload(line);
      if (payload === undefined) continue;
      this.lines += 1;
      this.chars += payload.length;
      if (this.pattern?.test(payload)) this.intact += 1;
    }
  }
}

export class Foreman implements Peer {
  readonly name = 'foreman';
  private readonly dir = runDir('foreman');
  private proc: ChildProcess | undefined;
  private programs: Program[] = [];
  private counter: LineCounter | undefined;

  constructor(private readonly bin: string) {}

  async prepare(programs: Program[]): Promise<void> {
    this.programs = programs;
    writeFileSync(path.join(this.dir, 'Procfile'), programs.map((p) => `${p.name}: ${p.command}\n`).join(''));
  }

  async startAll(): Promise<void> {
    const counts = this.programs.map((p) => `${p.name}=${p.count}`).join(',');
    const proc = spawn(this.bin, ['start', '-j', path.join(this.dir, 'Procfile'), counts], {
      cwd: this.programs[0]?.cwd ?? this.dir,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    this.proc = proc;
    this.counter = new LineCounter(proc.stdout!, this.programs[0]?.line);
  }

  /** Its direct children: one `/bin/sh -c` per instance. */
  async running(): Promise<number> {
    const pid = this.proc?.pid;
    return pid && this.proc!.exitCode === null ? descendants(pid).filter((p) => p.ppid === pid).length : 0;
  }

  /** Ctrl-C, as a foreman user would. */
  async stopAll(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGINT');
    await this.counter!.closed;
  }

  async restarts(): Promise<undefined> {
    return undefined;
  }

  printed(): PrintedLines {
    return this.counter!;
  }

  pid(): number {
    return this.proc!.pid!;
  }

  logFile(): undefined {
    return undefined;
  }

  markers(): string[] {
    return [this.dir];
  }

  async shutdown(): Promise<void> {
    if (this.proc?.pid && this.proc.exitCode === null) killTree(this.proc.pid);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
