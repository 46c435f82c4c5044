import type { WebSocket } from 'ws';
import { dropNotice, frameFor } from './frames.js';
import type { ConsoleFormat, ConsoleLine } from './types.js';

/**
 * Beyond this many bytes queued in the socket, lines are dropped for this attacher only (DESIGN §5 says ~1 MiB).
 * 2 MiB because with 1 MiB a healthy local attacher lost lines of a 100k-line burst: a fresh loopback connection's
 * kernel buffers start small, so a burst queues in the agent before the client has had a turn to read.
 */
export const ATTACHER_BUFFER_LIMIT = 2 * 1024 * 1024;
const DRAIN_POLL_MS = 25;

/** One WebSocket console: decides per line whether to send or drop, and tells the client what it missed. */
export class Attacher {
  private dropped = 0;
  private drainTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly format: ConsoleFormat,
    /** Lines up to this seq were already sent as scrollback. */
    public sentUpTo: number,
    private readonly limit = ATTACHER_BUFFER_LIMIT,
  ) {}

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  sendBatch(lines: readonly ConsoleLine[]): void {
    if (!this.open) return;
    const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    // Cork so a burst of frames leaves in few writes instead of one syscall per line.
    socket?.cork();
    try {
      for (const line of lines) this.sendLine(line);
    } finally {
      socket?.uncork();
    }
  }

  sendLine(line: ConsoleLine): void {
    if (line.seq <= this.sentUpTo) return;
    this.sentUpTo = line.seq;
    const frame = frameFor(line, this.format);
    if (frame === undefined) return;
    if (this.ws.bufferedAmount > this.limit) {
      this.dropped += 1;
      this.watchDrain();
      return;
    }
    this.flushNotice();
    this.ws.send(frame);
  }

  stop(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = undefined;
  }

  private flushNotice(): void {
    if (this.dropped === 0) return;
    this.ws.send(dropNotice(this.dropped, this.format));
    this.dropped = 0;
    this.stop();
  }

  /** A stalled client may never get another line to trigger the notice, so poll until it drains. */
  private watchDrain(): void {
    if (this.drainTimer) return;
    this.drainTimer = setInterval(() => {
      if (!this.open) return this.stop();
      if (this.ws.bufferedAmount <= this.limit) this.flushNotice();
    }, DRAIN_POLL_MS);
    this.drainTimer.unref();
  }
}
