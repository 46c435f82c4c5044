import { frameFor } from './frames.js';
import type { ConsoleFormat, ConsoleLine } from './types.js';
import { encodeTextFrames, type EncodedBatch } from './ws-frames.js';

/** The frames one batch of lines makes in one format, encoded once and shared by every attacher of that format. */
export class FrameBatch {
  private encodedBytes: EncodedBatch | undefined;

  private constructor(
    readonly seqs: readonly number[],
    readonly payloads: readonly string[],
  ) {}

  static of(lines: readonly ConsoleLine[], format: ConsoleFormat): FrameBatch {
    const seqs: number[] = [];
    const payloads: string[] = [];
    for (const line of lines) {
      const payload = frameFor(line, format);
      if (payload === undefined) continue;
      seqs.push(line.seq);
      payloads.push(payload);
    }
    return new FrameBatch(seqs, payloads);
  }

  get encoded(): EncodedBatch {
    this.encodedBytes ??= encodeTextFrames(this.payloads);
    return this.encodedBytes;
  }

  /** Index of the first frame newer than `seq`, or the frame count when there is none. */
  firstAfter(seq: number): number {
    let i = 0;
    while (i < this.seqs.length && this.seqs[i]! <= seq) i += 1;
    return i;
  }
}
