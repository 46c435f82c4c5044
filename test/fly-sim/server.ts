import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { z } from 'zod';
import { guestProblem } from '../../src/executors/fly/guest.js';

/**
 * A Fly Machines API (and logs API) simulator for the tests: a koa server on 127.0.0.1 that really runs each
 * machine's `init` command as a local process group. See test/fly-sim/README.md for what it models.
 */
export interface FlySimOptions {
  token?: string;
  app?: string;
  /** Per machine and per action (start, wait, get, stop, destroy): a token bucket like Fly's (1 req/s, burst 3). */
  rateLimit?: { perSecond: number; burst: number } | null;
  /** Log entries per logs API page. */
  logsPageSize?: number;
}

export interface SimRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
  at: number;
}

export interface SimEvent {
  type: string;
  status: string;
  source: string;
  timestamp: number;
  request?: { exit_event: { exit_code: number; signal: number; oom_killed: boolean; requested_stop: boolean; exited_at: string } };
}

export interface SimMachine {
  id: string;
  name: string;
  state: 'created' | 'starting' | 'started' | 'stopping' | 'stopped' | 'destroying' | 'destroyed';
  region: string;
  instance_id: string;
  config: Record<string, any>;
  events: SimEvent[];
  /** The machine's filesystem root: `/app` and `/tmp` in its command are rewritten to `<root>/app`, `<root>/tmp`. */
  root: string;
  proc?: ChildProcess;
  requestedStop: boolean;
  waiters: Set<() => void>;
}

export interface FlySim {
  origin: string;
  /** `--fly-api-url` */
  apiUrl: string;
  /** `--fly-logs-url` */
  logsUrl: string;
  token: string;
  app: string;
  requests: SimRequest[];
  machines: Map<string, SimMachine>;
  options: Required<Pick<FlySimOptions, 'logsPageSize'>> & { rateLimit: FlySimOptions['rateLimit'] };
  close(): Promise<void>;
}

const GuestSchema = z.object({ cpu_kind: z.string().default('shared'), cpus: z.number().default(1), memory_mb: z.number().default(256) });
const CreateSchema = z.object({
  name: z.string().optional(),
  region: z.string().optional(),
  skip_launch: z.boolean().optional(),
  config: z.looseObject({
    image: z.string().min(1),
    init: z.object({ entrypoint: z.array(z.string()).optional(), cmd: z.array(z.string()).optional(), exec: z.array(z.string()).optional() }).optional(),
    env: z.record(z.string(), z.string()).optional(),
    guest: GuestSchema.optional(),
    restart: z.object({ policy: z.enum(['no', 'always', 'on-failure']), max_retries: z.number().optional() }).optional(),
    services: z.array(z.looseObject({ protocol: z.enum(['tcp', 'udp']), internal_port: z.number().int().min(1).max(65535) })).optional(),
    metadata: z.record(z.string(), z.string()).optional(),
    mounts: z.array(z.object({ volume: z.string(), path: z.string() })).optional(),
  }),
});
const StopSchema = z.object({ signal: z.string().optional(), timeout: z.union([z.string(), z.number()]).optional() });

/** Fly durations: "10s", "500ms", "1m", or a number of seconds. */
function durationMs(value: string | number | undefined, fallbackMs: number): number | null {
  if (value === undefined) return fallbackMs;
  if (typeof value === 'number') return value * 1000;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value.trim());
  if (!match) return null;
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}

/** Rewrites the machine's absolute `/app` and `/tmp` paths into its root directory. */
export function rootPaths(arg: string, root: string): string {
  return arg.replace(/(^|[\s'"=:;(])\/(app|tmp)(?=$|[/\s'";)])/g, `$1${root}/$2`);
}

export async function startFlySim(options: FlySimOptions = {}): Promise<FlySim> {
  const token = options.token ?? `sim-${randomBytes(8).toString('hex')}`;
  const app = options.app ?? 'sim-app';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fly-sim-'));
  const machines = new Map<string, SimMachine>();
  const requests: SimRequest[] = [];
  const logs: Array<{ seq: number; message: string; timestamp: string; instance: string; region: string }> = [];
  const buckets = new Map<string, { tokens: number; at: number }>();
  const simOptions: FlySim['options'] = { logsPageSize: options.logsPageSize ?? 1000, rateLimit: options.rateLimit === undefined ? { perSecond: 1, burst: 3 } : options.rateLimit };

  const koa = new Koa();
  const router = new Router();

  koa.use(async (ctx, next) => {
    let body: unknown;
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.req as AsyncIterable<Buffer>) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString();
    const record: SimRequest = { method: ctx.method, path: ctx.path, query: { ...(ctx.query as Record<string, string>) }, body: undefined, status: 0, at: Date.now() };
    requests.push(record);
    try {
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          ctx.status = 400;
          ctx.body = { error: 'invalid JSON body' };
          return;
        }
      }
      record.body = body;
      (ctx.state as { body?: unknown }).body = body;
      if (ctx.get('authorization') !== `Bearer ${token}`) {
        ctx.status = 401;
        ctx.body = { error: 'You must be authenticated to view this.' };
        return;
      }
      await next();
      if (ctx.status === 404 && ctx.body === undefined) ctx.body = { error: 'not found' };
    } finally {
      record.status = ctx.status;
    }
  });

  function appOk(ctx: Context): boolean {
    if (ctx.params.app === app) return true;
    ctx.status = 404;
    ctx.body = { error: `app not found: ${ctx.params.app}` };
    return false;
  }

  function machineOf(ctx: Context): SimMachine | undefined {
    if (!appOk(ctx)) return undefined;
    const machine = machines.get(ctx.params.id!);
    if (!machine) {
      ctx.status = 404;
      ctx.body = { error: 'machine not found' };
    }
    return machine;
  }

  /** Fly's per-machine, per-action token bucket; false (and a 429) when the request is over it. */
  function allowed(ctx: Context, machine: SimMachine, action: string): boolean {
    const limit = simOptions.rateLimit;
    if (!limit) return true;
    const key = `${machine.id}:${action}`;
    const now = Date.now();
    const bucket = buckets.get(key) ?? { tokens: limit.burst, at: now };
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * limit.perSecond);
    bucket.at = now;
    buckets.set(key, bucket);
    if (bucket.tokens < 1) {
      ctx.status = 429;
      ctx.body = { error: 'rate limit exceeded' };
      return false;
    }
    bucket.tokens -= 1;
    return true;
  }

  function setState(machine: SimMachine, state: SimMachine['state']): void {
    machine.state = state;
    for (const wake of machine.waiters) wake();
  }

  function event(machine: SimMachine, type: string, status: string, more: Partial<SimEvent> = {}): void {
    machine.events.unshift({ type, status, source: 'flyd', timestamp: Date.now(), ...more });
  }

  function log(machine: SimMachine, message: string): void {
    logs.push({ seq: logs.length + 1, message, timestamp: new Date().toISOString(), instance: machine.id, region: machine.region });
  }

  function signalGroup(machine: SimMachine, signal: NodeJS.Signals): void {
    const pid = machine.proc?.pid;
    if (pid === undefined || machine.proc?.exitCode !== null || machine.proc?.signalCode !== null) {
      // The main process has ended: whatever is left of its group still goes.
      if (pid !== undefined) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // nothing left
        }
      }
      return;
    }
    try {
      process.kill(-pid, signal);
    } catch {
      // gone
    }
  }

  function run(machine: SimMachine): void {
    const init = machine.config.init ?? {};
    const argv: string[] = init.exec ?? [...(init.entrypoint ?? []), ...(init.cmd ?? [])];
    mkdirSync(path.join(machine.root, 'app'), { recursive: true });
    mkdirSync(path.join(machine.root, 'tmp'), { recursive: true });
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...machine.config.env, FLY_APP_NAME: app, FLY_MACHINE_ID: machine.id, FLY_REGION: machine.region };
    const proc = spawn(argv[0]!, argv.slice(1).map((arg) => rootPaths(arg, machine.root)), { cwd: machine.root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    machine.proc = proc;
    event(machine, 'start', 'started');
    setState(machine, 'started');
    for (const stream of [proc.stdout!, proc.stderr!]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop()!;
        for (const line of lines) log(machine, line);
      });
      stream.on('end', () => {
        if (partial) log(machine, partial);
        partial = '';
      });
    }
    proc.once('error', (err) => log(machine, `[sim] could not run the machine command: ${err.message}`));
    // The VM stops with its main process: nothing of the group outlives it.
    proc.once('exit', () => signalGroup(machine, 'SIGKILL'));
    proc.once('close', (code, signal) => {
      const signum = signal ? os.constants.signals[signal] : -1;
      const exitCode = code ?? (signal ? 128 + signum : 1);
      event(machine, 'exit', 'stopped', {
        request: { exit_event: { exit_code: exitCode, signal: signum, oom_killed: false, requested_stop: machine.requestedStop, exited_at: new Date().toISOString() } },
      });
      if (machine.state === 'destroying') {
        event(machine, 'destroy', 'destroyed');
        setState(machine, 'destroyed');
      } else {
        setState(machine, 'stopped');
      }
    });
  }

  const machinesPath = '/v1/apps/:app/machines';

  router.post(machinesPath, (ctx) => {
    if (!appOk(ctx)) return;
    const parsed = CreateSchema.safeParse(ctx.state.body);
    if (!parsed.success) {
      ctx.status = 400;
      ctx.body = { error: `invalid machine config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
      return;
    }
    const { config } = parsed.data;
    const guest = GuestSchema.parse(config.guest ?? {});
    const problem = guestProblem(guest as never);
    if (problem) {
      ctx.status = 422;
      ctx.body = { error: `invalid guest: ${problem}` };
      return;
    }
    // Fly mounts volumes by id (vol_…) at an absolute path; one volume per machine.
    const badMount = (config.mounts ?? []).find((m) => !/^vol_[a-z0-9]+$/.test(m.volume) || !m.path.startsWith('/'));
    if (badMount || (config.mounts?.length ?? 0) > 1) {
      ctx.status = 422;
      ctx.body = { error: `invalid mounts: ${badMount ? `volume ${JSON.stringify(badMount.volume)} at ${JSON.stringify(badMount.path)}` : 'at most one volume per machine'}` };
      return;
    }
    const init = config.init ?? {};
    if (!init.exec?.length && !init.entrypoint?.length && !init.cmd?.length) {
      ctx.status = 422;
      ctx.body = { error: 'the simulator cannot run an image\'s own command: give init.exec, init.entrypoint or init.cmd' };
      return;
    }
    const id = randomBytes(7).toString('hex');
    const machine: SimMachine = {
      id,
      name: parsed.data.name ?? `machine-${id}`,
      state: 'created',
      region: parsed.data.region ?? 'sim',
      instance_id: randomBytes(13).toString('hex').toUpperCase(),
      config: { ...config, guest },
      events: [],
      root: path.join(dir, id),
      requestedStop: false,
      waiters: new Set(),
    };
    machines.set(id, machine);
    event(machine, 'launch', 'created');
    if (!parsed.data.skip_launch) run(machine);
    ctx.body = view(machine);
  });

  router.get(machinesPath, (ctx) => {
    if (!appOk(ctx)) return;
    ctx.body = [...machines.values()].filter((m) => m.state !== 'destroyed').map(view);
  });

  router.get(`${machinesPath}/:id`, (ctx) => {
    const machine = machineOf(ctx);
    if (machine && allowed(ctx, machine, 'get')) ctx.body = view(machine);
  });

  router.post(`${machinesPath}/:id/start`, (ctx) => {
    const machine = machineOf(ctx);
    if (!machine || !allowed(ctx, machine, 'start')) return;
    if (machine.state !== 'created' && machine.state !== 'stopped') {
      ctx.status = 412;
      ctx.body = { error: `machine is ${machine.state}, not stopped` };
      return;
    }
    const previous = machine.state;
    machine.requestedStop = false;
    run(machine);
    ctx.body = { previous_state: previous };
  });

  router.get(`${machinesPath}/:id/wait`, async (ctx) => {
    const machine = machineOf(ctx);
    if (!machine || !allowed(ctx, machine, 'wait')) return;
    const state = String(ctx.query.state ?? 'started');
    const timeout = Number(ctx.query.timeout ?? 60);
    if (!['started', 'stopped', 'destroyed', 'suspended'].includes(state) || !(timeout > 0 && timeout <= 60)) {
      ctx.status = 400;
      ctx.body = { error: 'invalid state or timeout (state: started|stopped|destroyed|suspended, timeout: 1-60 s)' };
      return;
    }
    if (ctx.query.instance_id && ctx.query.instance_id !== machine.instance_id) {
      ctx.status = 400;
      ctx.body = { error: 'instance_id does not match the machine' };
      return;
    }
    const reached = (): boolean => machine.state === state || (state === 'stopped' && machine.state === 'destroyed');
    if (!reached()) {
      const ok = await new Promise<boolean>((resolve) => {
        const wake = (): void => {
          if (!reached()) return;
          clearTimeout(timer);
          machine.waiters.delete(wake);
          resolve(true);
        };
        const timer = setTimeout(() => {
          machine.waiters.delete(wake);
          resolve(false);
        }, timeout * 1000);
        machine.waiters.add(wake);
      });
      if (!ok) {
        ctx.status = 408;
        ctx.body = { error: `deadline_exceeded: machine ${machine.id} did not reach state ${state} within ${timeout}s` };
        return;
      }
    }
    ctx.body = { ok: true };
  });

  router.post(`${machinesPath}/:id/stop`, (ctx) => {
    const machine = machineOf(ctx);
    if (!machine || !allowed(ctx, machine, 'stop')) return;
    const parsed = StopSchema.safeParse(ctx.state.body ?? {});
    const graceMs = parsed.success ? durationMs(parsed.data.timeout, 5000) : null;
    const signal = (parsed.success ? parsed.data.signal : undefined) ?? 'SIGINT';
    if (graceMs === null || !(signal in os.constants.signals)) {
      ctx.status = 400;
      ctx.body = { error: 'invalid stop request: {"signal": "SIGTERM", "timeout": "10s"}' };
      return;
    }
    if (machine.state === 'started') {
      machine.requestedStop = true;
      setState(machine, 'stopping');
      signalGroup(machine, signal as NodeJS.Signals);
      const kill = setTimeout(() => signalGroup(machine, 'SIGKILL'), graceMs);
      machine.proc!.once('close', () => clearTimeout(kill));
    } else if (machine.state === 'created') {
      setState(machine, 'stopped');
    }
    ctx.body = { ok: true };
  });

  router.delete(`${machinesPath}/:id`, (ctx) => {
    const machine = machineOf(ctx);
    if (!machine || !allowed(ctx, machine, 'destroy')) return;
    const running = machine.state === 'started' || machine.state === 'stopping' || machine.state === 'starting';
    if (running && ctx.query.force !== 'true') {
      ctx.status = 412;
      ctx.body = { error: 'unable to destroy machine, not currently stopped (use force=true)' };
      return;
    }
    if (running) {
      setState(machine, 'destroying');
      signalGroup(machine, 'SIGKILL');
    } else if (machine.state !== 'destroyed' && machine.state !== 'destroying') {
      event(machine, 'destroy', 'destroyed');
      setState(machine, 'destroyed');
    }
    ctx.body = { ok: true };
  });

  router.get('/api/v1/apps/:app/logs', (ctx) => {
    if (!appOk(ctx)) return;
    const instance = ctx.query.instance ? String(ctx.query.instance) : undefined;
    const after = Number(ctx.query.next_token ?? 0) || 0;
    const data = logs.filter((entry) => entry.seq > after && (!instance || entry.instance === instance)).slice(0, simOptions.logsPageSize);
    ctx.body = {
      data: data.map((entry) => ({ id: String(entry.seq), type: 'logs', attributes: { message: entry.message, timestamp: entry.timestamp, instance: entry.instance, level: 'info', region: entry.region, meta: {} } })),
      meta: { next_token: data.length > 0 ? String(data[data.length - 1]!.seq) : String(ctx.query.next_token ?? '') },
    };
  });

  koa.use(router.routes());
  koa.use(router.allowedMethods());

  const server: Server = await new Promise((resolve) => {
    const s = koa.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  function view(machine: SimMachine): Record<string, unknown> {
    return {
      id: machine.id,
      name: machine.name,
      state: machine.state,
      region: machine.region,
      instance_id: machine.instance_id,
      config: machine.config,
      events: machine.events,
    };
  }

  return {
    origin,
    apiUrl: `${origin}/v1`,
    logsUrl: `${origin}/api/v1`,
    token,
    app,
    requests,
    machines,
    options: simOptions,
    async close() {
      for (const machine of machines.values()) signalGroup(machine, 'SIGKILL');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
