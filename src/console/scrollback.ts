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

  /** The last `n` lines that `keep` accepts, oldest first. */
  tail(n: number, keep: (line: ConsoleLine) => boolean = () => true): ConsoleLine[] {
    const out: ConsoleLine[] = [];
    for (let i = 1; i <= this.count && out.length < n; i += 1) {
      const line = this.ring[(this.next - i + this.capacity) % this.capacity]!;
      if (keep(line)) out.push(line);
    }
    return out.reverse();
  }

  get size(): number {
    return this.count;
  }
}
