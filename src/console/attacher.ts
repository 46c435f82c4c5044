import type { WebSocket } from 'ws';
import type { FrameBatch } from './frame-batch.js';
import { dropNotice } from './frames.js';
import type { ConsoleFormat } from './types.js';

/**
 * Beyond this many bytes queued in the socket, lines are dropped for this attacher only. DESIGN §5 says ~1 MiB;
 * we allow 8 MiB because the queued bytes are shared: each batch is encoded once and every attacher's socket holds
 * a view of the same Buffer, so the agent's extra memory is bounded by the most-lagging attacher (≈ this figure per
 * format), not by this figure × attachers. With 1–2 MiB, healthy attachers lost lines in 1M-line bursts (a fresh
 * loopback connection's kernel buffers start small); see docs/performance.md.
 */
export const ATTACHER_BUFFER_LIMIT = 8 * 1024 * 1024;
const DRAIN_POLL_MS = 25;

interface RawSocket {
  write(data: Uint8Array): boolean;
}

/** One WebSocket console: decides per batch whether to send or drop, and tells the client what it missed. */
export class Attacher {
  private dropped = 0;
  private drainTimer: NodeJS.Timeout | undefined;
  /** Lines up to this seq were sent (or dropped); later batches skip them, so joining mid-batch never repeats. */
  private sentUpTo = 0;

  constructor(
    readonly ws: WebSocket,
    readonly format: ConsoleFormat,
    private readonly limit = ATTACHER_BUFFER_LIMIT,
    /** Told how many lines were dropped, for metrics. */
    private readonly onDrop?: (count: number) => void,
  ) {}

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Lines up to `seq` need not be sent (the scrollback already covered them). */
  skipUpTo(seq: number): void {
    this.sentUpTo = Math.max(this.sentUpTo, seq);
  }

  send(batch: FrameBatch): void {
    if (!this.open) return;
    const first = batch.firstAfter(this.sentUpTo);
    const count = batch.seqs.length - first;
    if (count === 0) return;
    this.sentUpTo = batch.seqs[batch.seqs.length - 1]!;
    if (this.ws.bufferedAmount > this.limit) {
      this.dropped += count;
      this.onDrop?.(count);
      this.watchDrain();
      return;
    }
    this.flushNotice();
    const socket = this.rawSocket();
    if (socket) {
      // Frames encoded once for every attacher; the subarray shares their memory.
      const { bytes, offsets } = batch.encoded;
      socket.write(bytes.subarray(offsets[first]));
    } else {
      for (let i = first; i < batch.payloads.length; i += 1) this.ws.send(batch.payloads[i]!);
    }
  }

  stop(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = undefined;
  }

  /**
   * ws writes each frame synchronously to its socket, so frames we write to the same socket in between can never
   * interleave with its own. Without compression (never negotiated here) the bytes are exactly what ws would send.
   */
  private rawSocket(): RawSocket | undefined {
    const socket = (this.ws as unknown as { _socket?: RawSocket })._socket;
    return this.ws.extensions === '' && socket && typeof socket.write === 'function' ? socket : undefined;
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
