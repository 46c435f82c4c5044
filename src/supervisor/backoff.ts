export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  jitter: number;
  /** A child that stayed up this long is considered healthy: the next crash starts from initialMs again. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 30_000, jitter: 0.25, resetAfterMs: 10_000 };

/** Exponential restart delay, 100 ms × 2ⁿ capped at 30 s with ±25 % jitter (DESIGN §4). */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next start, given how long the child that just ended had been up. */
  next(uptimeMs: number): number {
    if (uptimeMs >= this.options.resetAfterMs) this.attempt = 0;
    const base = Math.min(this.options.maxMs, this.options.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    const spread = base * this.options.jitter * (this.random() * 2 - 1);
    return Math.max(0, Math.round(base + spread));
  }
}
