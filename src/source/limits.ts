/**
 * Caps on what one source archive may cost. They exist so that a hostile or broken `source_url` trips an error
 * instead of filling the disk, the memory or the clock of the agent.
 */
export interface SourceLimits {
  /** Bytes of the archive as transferred (compressed). */
  maxDownloadBytes: number;
  /** Bytes of file content written while unpacking: a zip/tar bomb trips this, not the disk. */
  maxUnpackedBytes: number;
  /** Archive entries of any kind (files, directories, links). */
  maxEntries: number;
  /** UTF-8 bytes of an entry name or a link target. */
  maxPathLength: number;
  /** Whole download, first byte to last. The connect/idle timeout is min(30 s, this). */
  downloadTimeoutMs: number;
  maxRedirects: number;
}

export const DEFAULT_SOURCE_LIMITS: Readonly<SourceLimits> = Object.freeze({
  maxDownloadBytes: 1024 ** 3,
  maxUnpackedBytes: 4 * 1024 ** 3,
  maxEntries: 100_000,
  maxPathLength: 1024,
  downloadTimeoutMs: 10 * 60_000,
  maxRedirects: 5,
});

/** A connection that neither connects nor sends a byte for this long is dead, whatever the total budget says. */
export const IDLE_TIMEOUT_MS = 30_000;

/** Merges overrides onto the defaults; a nonsense cap is a configuration bug, so it throws at construction. */
export function resolveLimits(overrides: Partial<SourceLimits> = {}): SourceLimits {
  const limits: SourceLimits = { ...DEFAULT_SOURCE_LIMITS };
  for (const key of Object.keys(DEFAULT_SOURCE_LIMITS) as (keyof SourceLimits)[]) {
    const value = overrides[key];
    if (value === undefined) continue;
    const min = key === 'maxRedirects' ? 0 : 1;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      throw new RangeError(`source limit ${key} must be a number >= ${min}, got ${String(value)}`);
    }
    limits[key] = value;
  }
  return limits;
}

/** Downloads running at once; more wait their turn (state `downloading`, `progress: null`). */
export const DEFAULT_CONCURRENT_DOWNLOADS = 4;
