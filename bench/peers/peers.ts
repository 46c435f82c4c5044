/** The peer supervisors the side-by-side scenarios compare with: supervisord, PM2, foreman (node-foreman `nf`). */
import { Foreman } from './foreman.js';
import { installPeers } from './install.js';
import { bounded, type Peer } from './peer.js';
import { Pm2 } from './pm2.js';
import { Supervisord } from './supervisord.js';

export interface PeerMaker {
  name: string;
  /** It prints its children's output on its stdout (foreman) instead of writing log files. */
  prints: boolean;
  /** A fresh instance (its own directory, daemon, configuration), every operation under a deadline. */
  make(): Peer;
}

/** The peers available on this machine (installing them first), supervisord and PM2 before foreman. */
export function availablePeers(): PeerMaker[] {
  const inst = installPeers();
  const out: PeerMaker[] = [];
  const add = (name: string, prints: boolean, make: () => Peer) => out.push({ name, prints, make: () => bounded(make()) });
  if (inst.supervisord) add('supervisord', false, () => new Supervisord(inst.supervisord!));
  if (inst.pm2Module) add('pm2', false, () => new Pm2(inst.pm2Module!));
  if (inst.nf) add('foreman', true, () => new Foreman(inst.nf!));
  return out;
}
