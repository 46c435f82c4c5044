import type { WebSocket } from 'ws';
import { ATTACHER_BUFFER_LIMIT, Attacher } from './attacher.js';
import { FrameBatch } from './frame-batch.js';
import { frameFor } from './frames.js';
import { LineFramer } from './line-framer.js';
import { Scrollback } from './scrollback.js';
import type { ConsoleFormat, ConsoleLine, StreamName } from './types.js';

export const DEFAULT_TAIL = 100;

/** `?tail=N` as given by a client: a whole number ≥ 0, else the default. */
export function parseTail(value: unknown): number {
  const tail = typeof value === 'string' ? Number.parseInt(value, 10) : Number.NaN;
  return Number.isFinite(tail) && tail >= 0 ? tail : DEFAULT_TAIL;
}

export interface AttachOptions {
  tail?: number;
  format?: ConsoleFormat;
}

/**
 * A line as the scrollback keeps it. A class, not an object literal: V8 tracks literal allocation sites and,
 * once the few lines of quiet processes (which outlive many scavenges in their scrollback) made the site look
 * long-lived, allocated every later line straight in the old generation — a 1M-line burst then ran a full GC
 * every ~40 ms and captured at 0.6× the speed of a fresh agent (docs/performance.md). `new` has no such site.
 */
class CapturedLine implements ConsoleLine {
  constructor(
    readonly seq: number,
    readonly ts: number,
    readonly stream: StreamName,
    readonly line: string,
  ) {}
}

/**
 * The console of one process: frames the child's bytes into lines, keeps the scrollback ring and fans every
 * line out to all attachers. Sends are batched per event-loop turn so a burst costs few syscalls.
 */
export class ConsoleHub {
  private readonly scrollback: Scrollback;
  private readonly attacherBufferBytes: number;
  private readonly framers: Record<'stdout' | 'stderr', LineFramer>;
  private readonly attachers = new Set<Attacher>();
  private pending: ConsoleLine[] = [];
  private flushScheduled = false;
  private seq = 0;
  private closed = false;
  /** Where attacher input goes (the current child's stdin); set by the supervisor. */
  onInput: ((data: Uint8Array) => void) | undefined;
  /** Total lines framed, for metrics and tests. */
  linesTotal = 0;
  /** Lines dropped for slow attachers, summed over attachers, for metrics. */
  linesDropped = 0;

  constructor(options: { scrollbackLines?: number; attacherBufferBytes?: number } = {}) {
    this.scrollback = new Scrollback(options.scrollbackLines ?? 1500);
    this.attacherBufferBytes = options.attacherBufferBytes ?? ATTACHER_BUFFER_LIMIT;
    this.framers = {
      stdout: new LineFramer((line) => this.add('stdout', line)),
      stderr: new LineFramer((line) => this.add('stderr', line)),
    };
  }

  write(stream: 'stdout' | 'stderr', chunk: Uint8Array): void {
    this.framers[stream].push(chunk);
  }

  /** The child ended: deliver partial last lines. */
  endOfOutput(): void {
    this.framers.stdout.flush();
    this.framers.stderr.flush();
  }

  event(text: string): void {
    this.add('agent', text);
  }

  attach(ws: WebSocket, options: AttachOptions = {}): Attacher {
    const format = options.format ?? 'text';
    const tail = options.tail ?? DEFAULT_TAIL;
    const attacher = new Attacher(ws, format, this.attacherBufferBytes, (count) => {
      this.linesDropped += count;
    });
    const history = this.scrollback.tail(tail, (line) => frameFor(line, format) !== undefined);
    attacher.send(FrameBatch.of(history, format));
    attacher.skipUpTo(this.seq);
    if (this.closed) {
      ws.close(1000, 'process deleted');
      return attacher;
    }
    this.attachers.add(attacher);
    ws.on('message', (data, isBinary) => this.input(data as Buffer | Buffer[] | ArrayBuffer, isBinary));
    ws.once('close', () => this.detach(attacher));
    return attacher;
  }

  get attacherCount(): number {
    return this.attachers.size;
  }

  tail(n: number): ConsoleLine[] {
    return this.scrollback.tail(n);
  }

  /** The last `n` lines of the child's own output as text, one per line (agent events left out, as in text mode). */
  text(n: number): string {
    return this.scrollback
      .tail(n, (line) => line.stream !== 'agent')
      .map((line) => `${line.line}\n`)
      .join('');
  }

  /** Closes every console with 1000 after the last line has been queued (DESIGN §5). */
  close(): void {
    if (this.closed) return;
    this.endOfOutput();
    this.flush();
    this.closed = true;
    for (const attacher of this.attachers) {
      attacher.stop();
      attacher.ws.close(1000, 'process deleted');
    }
    this.attachers.clear();
  }

  private detach(attacher: Attacher): void {
    attacher.stop();
    this.attachers.delete(attacher);
  }

  private input(data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    this.onInput?.(isBinary ? bytes : Buffer.concat([bytes, NEWLINE]));
  }

  private add(stream: StreamName, line: string): void {
    this.seq += 1;
    this.linesTotal += 1;
    const entry = new CapturedLine(this.seq, Date.now(), stream, line);
    this.scrollback.push(entry);
    if (this.attachers.size === 0) return;
    this.pending.push(entry);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    const batches: Partial<Record<ConsoleFormat, FrameBatch>> = {};
    for (const attacher of this.attachers) {
      const batch = (batches[attacher.format] ??= FrameBatch.of(lines, attacher.format));
      attacher.send(batch);
    }
  }
}

const NEWLINE = Buffer.from('\n');
