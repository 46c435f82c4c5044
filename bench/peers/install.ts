/**
 * Installs the peers the side-by-side benchmarks compare with, outside the repository: PM2 and node-foreman with
 * `npm install --prefix <tmp>` (never into package.json), and Debian's `supervisor` with apt-get when missing and
 * running as root. Each install is bounded; a peer that cannot be installed is simply left out (and said so).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface PeerInstall {
  prefix: string;
  pm2Module: string | undefined;
  nf: string | undefined;
  supervisord: string | undefined;
}

const INSTALL_MS = 600_000;

function which(cmd: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', timeout: 10_000 });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

function run(cmd: string, args: string[]): boolean {
  const res = spawnSync(cmd, args, {
    stdio: 'inherit',
    timeout: INSTALL_MS,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return res.status === 0;
}

function installNpmPeers(prefix: string): void {
  console.log(`peers: npm install --prefix ${prefix} pm2 foreman`);
  if (!run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', 'pm2', 'foreman'])) {
    console.log('peers: npm install failed; the PM2 and foreman rows will be missing');
  }
}

function installSupervisor(): string | undefined {
  if (process.getuid?.() !== 0) {
    console.log('peers: supervisord missing and not root; its rows will be missing');
    return undefined;
  }
  console.log('peers: apt-get install supervisor');
  const aptInstall = () => run('apt-get', ['install', '-y', '-qq', 'supervisor']);
  if (!aptInstall()) {
    run('apt-get', ['update', '-qq']);
    aptInstall();
  }
  return which('supervisord');
}

let cached: PeerInstall | undefined;

export function installPeers(): PeerInstall {
  if (cached) return cached;
  const prefix = process.env.BENCH_PEERS_PREFIX ?? path.join(os.tmpdir(), 'pa-bench-peers');
  mkdirSync(prefix, { recursive: true });
  const pm2Dir = path.join(prefix, 'node_modules/pm2');
  const nfBin = path.join(prefix, 'node_modules/.bin/nf');
  if (!existsSync(pm2Dir) || !existsSync(nfBin)) installNpmPeers(prefix);
  cached = {
    prefix,
    pm2Module: existsSync(pm2Dir) ? pm2Dir : undefined,
    nf: existsSync(nfBin) ? nfBin : undefined,
    supervisord: which('supervisord') ?? installSupervisor(),
  };
  return cached;
}
