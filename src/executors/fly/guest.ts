import { AgentError } from '../../errors.js';
import type { ResourceRequest } from '../types.js';
import type { FlyGuest } from './client.js';

/** Fly's presets: shared-cpu-{1,2,4,6,8}x and performance-{1,2,4,8,16}x (https://fly.io/docs/about/pricing/). */
export const FLY_CPUS: Readonly<Record<FlyGuest['cpu_kind'], readonly number[]>> = {
  shared: [1, 2, 4, 6, 8],
  performance: [1, 2, 4, 8, 16],
};

/** Memory per vCPU (https://fly.io/docs/machines/guides-examples/machine-sizing/), always a multiple of 256 MB. */
export const FLY_MEMORY_PER_CPU: Readonly<Record<FlyGuest['cpu_kind'], { min: number; max: number }>> = {
  shared: { min: 256, max: 2048 },
  performance: { min: 2048, max: 8192 },
};

export const FLY_MEMORY_STEP_MB = 256;

/** Why a guest size is refused, or null when Fly accepts it (the simulator uses the same rule). */
export function guestProblem(guest: FlyGuest): string | null {
  const { cpu_kind: kind, cpus, memory_mb: memory } = guest;
  if (kind !== 'shared' && kind !== 'performance') return `cpu_kind must be "shared" or "performance", not ${JSON.stringify(kind)}`;
  if (!Number.isInteger(cpus) || !FLY_CPUS[kind].includes(cpus)) return `${kind} machines have ${FLY_CPUS[kind].join(', ')} vCPUs, not ${cpus}`;
  if (!Number.isInteger(memory) || memory % FLY_MEMORY_STEP_MB !== 0) return `memory_mb must be a multiple of ${FLY_MEMORY_STEP_MB}, not ${memory}`;
  const { min, max } = FLY_MEMORY_PER_CPU[kind];
  if (memory < min * cpus || memory > max * cpus) {
    return `${cpus} ${kind} vCPU${cpus > 1 ? 's' : ''} take ${min * cpus}-${max * cpus} MB of memory, not ${memory}`;
  }
  return null;
}

/**
 * The guest for a request's `resources`: `cpus` (default 1) and `memory_mb` (default 256 MB per vCPU). The CPU kind
 * is `shared` unless the memory is beyond what shared vCPUs can have (over 2 GB per vCPU): then `performance`.
 * Throws a 400 `invalid_resources` AgentError for sizes Fly would refuse.
 */
export function guestFor(resources: ResourceRequest | undefined): FlyGuest {
  const cpus = resources?.cpus ?? 1;
  const memory = resources?.memory_mb ?? FLY_MEMORY_PER_CPU.shared.min * cpus;
  const kind: FlyGuest['cpu_kind'] = memory > FLY_MEMORY_PER_CPU.shared.max * cpus ? 'performance' : 'shared';
  const guest: FlyGuest = { cpu_kind: kind, cpus, memory_mb: memory };
  const problem = guestProblem(guest);
  if (problem) throw new AgentError('invalid_resources', `resources not possible on a Fly machine: ${problem}`, 400);
  return guest;
}
