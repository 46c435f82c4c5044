import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/supervisor/backoff.js';

describe('Backoff', () => {
  it('doubles from 100 ms and caps at 30 s without jitter', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 30_000, jitter: 0.25, resetAfterMs: 10_000 }, () => 0.5);
    const delays = Array.from({ length: 12 }, () => backoff.next(0));
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]);
  });

  it('stays within ±25 % jitter', () => {
    const low = new Backoff(undefined, () => 0);
    const high = new Backoff(undefined, () => 0.999999);
    expect(low.next(0)).toBe(75);
    expect(high.next(0)).toBe(125);
    expect(low.next(0)).toBe(150);
  });

  it('starts again from 100 ms after 10 s of uptime', () => {
    const backoff = new Backoff(undefined, () => 0.5);
    backoff.next(0);
    backoff.next(0);
    expect(backoff.next(0)).toBe(400);
    expect(backoff.next(10_000)).toBe(100);
    expect(backoff.next(9_999)).toBe(200);
  });
});
