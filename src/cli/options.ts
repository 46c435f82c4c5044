import { InvalidArgumentError } from 'commander';
import type { PortRange } from '../supervisor/index.js';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `10s`, `500ms`, `2m`, or a bare number of seconds (like supervisord's stopwaitsecs). */
export function parseDuration(value: string): number {
  const match = DURATION.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`'${value}' is not a duration (e.g. 10s, 500ms, 2m)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 's']!);
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`'${value}' is not a TCP port (0-65535)`);
  }
  return port;
}

export function parsePortRange(value: string): PortRange {
  const match = /^(\d+)-(\d+)$/.exec(value.trim());
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (!match || first < 1 || last > 65535 || first > last) {
    throw new InvalidArgumentError(`'${value}' is not a port range like 5000-5999`);
  }
  return { first, last };
}

const SIZE = /^(\d+)(B|KiB|MiB|GiB)?$/;
const UNIT_BYTES: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** `2MiB`, `512KiB`, or a bare number of bytes. */
export function parseSize(value: string): number {
  const match = SIZE.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`'${value}' is not a size (e.g. 2MiB, 512KiB, 1048576)`);
  return Number(match[1]) * UNIT_BYTES[match[2] ?? 'B']!;
}

export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}
