import type { OutputChunk } from './types.js';

/**
 * Push-to-pull bridge: executors receive output as events and hand it to the supervisor as an AsyncIterable
 * (DESIGN §6). Never bounded: the supervisor consumes synchronously into the console, so the child always drains.
 */
export class OutputQueue implements AsyncIterable<OutputChunk> {
  private items: OutputChunk[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(chunk: OutputChunk): void {
    if (this.ended) return;
    this.items.push(chunk);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<OutputChunk> {
    for (;;) {
      if (this.items.length > 0) {
        const batch = this.items;
        this.items = [];
        yield* batch;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
