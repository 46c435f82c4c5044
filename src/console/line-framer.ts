/** Longest line delivered as one frame; longer lines are split (DESIGN §5). */
export const MAX_LINE_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines. Searches with Buffer#indexOf (native memchr) instead of a per-byte JS loop,
 * keeps the partial tail across chunks, trims a trailing `\r`, and splits lines longer than MAX_LINE_BYTES.
 */
export class LineFramer {
  private partial: Buffer[] = [];
  private partialBytes = 0;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineBytes = MAX_LINE_BYTES,
  ) {}

  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let nl = buf.indexOf(LF, start); nl !== -1; nl = buf.indexOf(LF, start)) {
      this.completeLine(buf, start, nl);
      start = nl + 1;
    }
    if (start < buf.length) this.keepPartial(buf.subarray(start));
  }

  /** Delivers a last line that had no newline (the child exited mid-line). */
  flush(): void {
    if (this.partialBytes === 0) return;
    const rest = this.takePartial();
    this.emit(rest, 0, rest.length);
  }

  private completeLine(buf: Buffer, start: number, end: number): void {
    if (this.partialBytes === 0) {
      this.emit(buf, start, end);
      return;
    }
    this.partial.push(buf.subarray(start, end));
    this.partialBytes += end - start;
    const whole = this.takePartial();
    this.emit(whole, 0, whole.length);
  }

  private keepPartial(rest: Buffer): void {
    // Copy: the chunk's memory belongs to the stream and may be reused.
    this.partial.push(Buffer.from(rest));
    this.partialBytes += rest.length;
    while (this.partialBytes >= this.maxLineBytes) {
      const whole = this.takePartial();
      this.onLine(whole.toString('utf8', 0, this.maxLineBytes));
      if (whole.length > this.maxLineBytes) {
        this.partial.push(whole.subarray(this.maxLineBytes));
        this.partialBytes = whole.length - this.maxLineBytes;
      }
    }
  }

  private takePartial(): Buffer {
    const whole = this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial, this.partialBytes);
    this.partial = [];
    this.partialBytes = 0;
    return whole;
  }

  private emit(buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === CR) end -= 1;
    while (end - start > this.maxLineBytes) {
      this.onLine(buf.toString('utf8', start, start + this.maxLineBytes));
      start += this.maxLineBytes;
    }
    this.onLine(buf.toString('utf8', start, end));
  }
}
