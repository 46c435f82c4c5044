/**
 * PM2, driven through its programmatic API (`connect`, `start({apps})`, `list`, `stop`), the same RPC its CLI
 * uses, so no CLI start-up is counted. Each peer instance is its own PM2 (`new pm2.custom({pm2_home})` with a
 * PM2_HOME under the run's temp directory), so a daemon killed with -9 leaves nothing for the next one to trip on,
 * and the daemon's title (`PM2 v7…: God Daemon (<PM2_HOME>)`) carries the run's marker.
 *
 * Configuration, and why (everything else is PM2's default):
 * - one app per instance (`name_0`, `name_1`, …) in fork mode: what PM2 runs for a non-node command.
 * - `script: 'sleep', args: ['7700'], interpreter: 'none'` when the command has no shell syntax, as a PM2 user
 *   writes it (no shell of ours counted against PM2); `script: '/bin/sh', args: ['-c', command]` otherwise.
 * - `autorestart` on for programs that restart (PM2's default too), off otherwise.
 * - `max_restarts: 1e9`: the default (16 restarts within `min_uptime`) would give a crash loop up, and the crash
 *   scenario is about a supervisor that never does. The restart delay stays PM2's default (0 ms: at once);
 *   `exp_backoff_restart_delay` is opt-in and not set.
 * - `out_file`/`error_file` per app in our directory (PM2 7 honours them as given for a single fork-mode
 *   instance, no `-N` suffix, so `merge_logs` changes nothing; no combined `log_file` unless asked for).
 * - stopping is PM2's: SIGINT (`PM2_KILL_SIGNAL`'s default) to the whole process tree (`treekill`), SIGKILL after
 *   `kill_timeout` (1600 ms), at most `PM2_CONCURRENT_ACTIONS` (2) apps at a time.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { argvFor, type Peer, type Program } from './peer.js';
import { deadline, killTree } from './proc.js';
import { runDir } from './reaper.js';

interface Pm2Process {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time?: number };
}

type Callback<T> = (err: Error | null | undefined, value?: T) => void;

/** The part of PM2's API the benchmark uses. */
interface Pm2Api {
  connect(cb: Callback<unknown>): void;
  start(config: { apps: unknown[] }, cb: Callback<unknown>): void;
  list(cb: Callback<Pm2Process[]>): void;
  stop(name: string, cb: Callback<unknown>): void;
  disconnect(cb?: Callback<unknown>): void;
}

interface Pm2Module {
  custom: new (opts: { pm2_home: string; daemon_mode?: boolean }) => Pm2Api;
}

/** Deadline of one PM2 API call. */
const CALL_MS = { connect: 20_000, start: 60_000, list: 10_000, stop: 110_000 };

function pm2App(p: Program, index: number, logDir: string): Record<string, unknown> {
  const argv = argvFor(p.command);
  return {
    name: `${p.name}_${index}`,
    script: argv[0],
    args: argv.slice(1),
    interpreter: 'none',
    cwd: p.cwd,
    autorestart: p.restart,
    max_restarts: 1_000_000_000,
    out_file: path.join(logDir, `${p.name}_${index}.out.log`),
    error_file: path.join(logDir, `${p.name}_${index}.err.log`),
  };
}

export class Pm2 implements Peer {
  readonly name = 'pm2';
  private readonly dir = runDir('pm2');
  private readonly home = path.join(this.dir, 'home');
  private readonly logDir = path.join(this.dir, 'logs');
  private api: Pm2Api | undefined;
  private apps: unknown[] = [];

  constructor(private readonly modulePath: string) {}

  /** One PM2 API call, promised and bounded. */
  private call<T>(method: keyof typeof CALL_MS, invoke: (api: Pm2Api, cb: Callback<T>) => void): Promise<T> {
    const api = this.api!;
    const called = new Promise<T>((resolve, reject) =>
      invoke(api, (err, value) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(value as T))),
    );
    return deadline(called, CALL_MS[method], `pm2.${method}`);
  }

  async prepare(programs: Program[]): Promise<void> {
    mkdirSync(this.home, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    const pm2 = createRequire(path.join(this.modulePath, 'package.json'))(this.modulePath) as Pm2Module;
    this.api = new pm2.custom({ pm2_home: this.home, daemon_mode: true });
    this.apps = programs.flatMap((p) => Array.from({ length: p.count }, (_, i) => pm2App(p, i, this.logDir)));
    await this.call('connect', (api, cb) => api.connect(cb));
  }

  async startAll(): Promise<void> {
    await this.call('start', (api, cb) => api.start({ apps: this.apps }, cb));
  }

  private list(): Promise<Pm2Process[]> {
    return this.call('list', (api, cb) => api.list(cb));
  }

  async running(): Promise<number> {
    return (await this.list()).filter((p) => p.pm2_env.status === 'online' && p.pid > 0).length;
  }

  async stopAll(): Promise<void> {
    await this.call('stop', (api, cb) => api.stop('all', cb));
  }

  async restarts(): Promise<number> {
    return (await this.list()).reduce((n, p) => n + (p.pm2_env.restart_time ?? 0), 0);
  }

  pid(): number {
    return Number(readFileSync(path.join(this.home, 'pm2.pid'), 'utf8').trim());
  }

  logFile(name: string, index: number): string {
    return path.join(this.logDir, `${name}_${index}.out.log`);
  }

  markers(): string[] {
    return [this.dir];
  }

  async shutdown(): Promise<void> {
    try {
      this.api?.disconnect();
    } catch {
      // the daemon is gone already (kill -9 scenario)
    }
    let daemon: number | undefined;
    try {
      daemon = this.pid();
    } catch {
      // never started; the marker sweep finds anything else
    }
    if (daemon) killTree(daemon);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
