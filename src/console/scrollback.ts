import type { ConsoleLine } from './types.js';

/** Fixed-size ring of the most recent lines of one process (DESIGN §5: 1,500). */
export class Scrollback {
  private readonly ring: Array<ConsoleLine | undefined>;
  private next = 0;
  private count = 0;

  constructor(readonly capacity = 1500) {
    this.ring = new Array(capacity);
  }

  push(line: ConsoleLine): void {
    this.ring[this.next] = line;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count += 1;
  }

  /** The last `n` lines, oldest first. */
  tail(n: number): ConsoleLine[] {
    const take = Math.max(0, Math.min(n, this.count));
    const out: ConsoleLine[] = new Array(take);
    let at = (this.next - take + this.capacity) % this.capacity;
    for (let i = 0; i < take; i += 1) {
      out[i] = this.ring[at]!;
      at = (at + 1) % this.capacity;
    }
    return out;
  }

  get size(): number {
    return this.count;
  }
}
