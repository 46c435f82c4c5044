import { spawnSync } from 'node:child_process';

/**
 * How the local executor makes sure no child outlives a SIGKILLed agent (DESIGN §4):
 * - `pidns`: `setpriv --pdeathsig KILL` on the direct child plus a PID namespace whose init dies with it, so the
 *   kernel kills the whole tree, `setsid` escapees included.
 * - `pidns-userns`: the same inside a user namespace, for agents not running as root.
 * - `pdeathsig`: only the direct child dies with the agent; grandchildren may survive.
 * - `none`: process groups only; children survive an agent SIGKILL.
 */
export type KillGuarantee = 'pidns' | 'pidns-userns' | 'pdeathsig' | 'none';

const PIDNS = ['unshare', '--pid', '--fork', '--kill-child'];
const PIDNS_USERNS = ['unshare', '--user', '--map-root-user', '--pid', '--fork', '--kill-child'];
const PDEATHSIG = ['setpriv', '--pdeathsig', 'KILL'];

/** The command prefix that puts a child under the given guarantee. */
export function wrapperFor(mode: KillGuarantee): string[] {
  switch (mode) {
    case 'pidns':
      return [...PDEATHSIG, '--', ...PIDNS, '--'];
    case 'pidns-userns':
      return [...PDEATHSIG, '--', ...PIDNS_USERNS, '--'];
    case 'pdeathsig':
      return [...PDEATHSIG, '--'];
    case 'none':
      return [];
  }
}

function works(argv: string[]): boolean {
  if (argv.length === 0) return true;
  const result = spawnSync(argv[0]!, [...argv.slice(1), '/bin/true'], { stdio: 'ignore', timeout: 5000 });
  return result.status === 0;
}

/** Tries the strongest mechanism first; the probe costs a few milliseconds once at start-up. */
export function detectKillGuarantee(): KillGuarantee {
  const order: KillGuarantee[] = ['pidns', 'pidns-userns', 'pdeathsig'];
  return order.find((mode) => works(wrapperFor(mode))) ?? 'none';
}
