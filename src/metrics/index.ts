import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ConsoleHub } from '../console/index.js';
import type { ExitStatus } from '../executors/types.js';
import type { ManagedProcess, ProcessObserver } from '../supervisor/managed-process.js';
import { STATES, type ProcessState } from '../supervisor/states.js';

export interface MetricsOptions {
  /** The live processes, read at every scrape. */
  processes: () => readonly ManagedProcess[];
  version: string;
  /** Node/process default metrics (`process_*`, `nodejs_*`): RSS, open fds, event-loop lag, GC. */
  defaultMetrics?: boolean;
}

const PREFIX = 'procfile_agent_';

/**
 * The agent's Prometheus registry (its own, never prom-client's global one, so several agents in one process do
 * not collide). Gauges are computed from the supervisor at scrape time; counters are fed by the supervisor's
 * observer hooks and by the HTTP middleware. The supervisor itself never imports prom-client.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly observer: ProcessObserver;
  private readonly restarts: Counter;
  private readonly exits: Counter<'code' | 'signal'>;
  private readonly transitions: Counter<'state'>;
  private readonly downloaded: Counter;
  private readonly consoleLines: Counter;
  private readonly consoleDropped: Counter;
  private readonly http: Histogram<'method' | 'route' | 'status'>;
  /** What each console's running totals were when last added to the counters. */
  private readonly seen = new WeakMap<ConsoleHub, { lines: number; dropped: number }>();

  constructor(options: MetricsOptions) {
    const registers = [this.registry];
    const processes = options.processes;
    new Gauge({
      name: `${PREFIX}info`,
      help: 'Always 1; the labels describe the agent',
      labelNames: ['version'],
      registers,
    }).set({ version: options.version }, 1);
    new Gauge({
      name: `${PREFIX}processes`,
      help: 'Declared processes by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map<ProcessState, number>(STATES.map((s) => [s, 0]));
        for (const proc of processes()) {
          const state = proc.snapshot().state;
          counts.set(state, (counts.get(state) ?? 0) + 1);
        }
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: `${PREFIX}console_attachers`,
      help: 'WebSocket consoles attached right now',
      registers,
      collect() {
        this.set(processes().reduce((sum, proc) => sum + proc.console.attacherCount, 0));
      },
    });
    this.restarts = new Counter({ name: `${PREFIX}restarts_total`, help: 'Children started again after ending', registers });
    this.exits = new Counter({
      name: `${PREFIX}child_exits_total`,
      help: 'Children that ended, by exit code or signal (the other label is empty)',
      labelNames: ['code', 'signal'],
      registers,
    });
    this.transitions = new Counter({
      name: `${PREFIX}state_transitions_total`,
      help: 'Process state changes, by the state entered',
      labelNames: ['state'],
      registers,
    });
    this.downloaded = new Counter({ name: `${PREFIX}download_bytes_total`, help: 'Source archive bytes downloaded', registers });
    const sweep = (): void => {
      for (const proc of processes()) this.sweep(proc.console);
    };
    this.consoleLines = new Counter({
      name: `${PREFIX}console_lines_total`,
      help: 'Lines of child output (and agent events) framed by the consoles',
      registers,
      collect: sweep,
    });
    this.consoleDropped = new Counter({
      name: `${PREFIX}console_lines_dropped_total`,
      help: 'Lines not sent to a slow attacher (counted once per attacher)',
      registers,
      collect: sweep,
    });
    this.http = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'HTTP requests by route template, method and status (WebSocket upgrades included)',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.observer = {
      onState: (_slug, _from, to) => this.transitions.inc({ state: to }),
      onExit: (_slug, status: ExitStatus) =>
        this.exits.inc({ code: status.code === null ? '' : String(status.code), signal: status.signal ?? '' }),
      onRestart: () => this.restarts.inc(),
      onBytesDownloaded: (bytes) => this.downloaded.inc(bytes),
      onRemoved: (proc) => this.sweep(proc.console),
    };
  }

  /** Adds what a console framed and dropped since last time; called at scrape and when its process goes away. */
  private sweep(hub: ConsoleHub): void {
    const last = this.seen.get(hub) ?? { lines: 0, dropped: 0 };
    const lines = hub.linesTotal - last.lines;
    const dropped = hub.linesDropped - last.dropped;
    if (lines > 0) this.consoleLines.inc(lines);
    if (dropped > 0) this.consoleDropped.inc(dropped);
    this.seen.set(hub, { lines: hub.linesTotal, dropped: hub.linesDropped });
  }

  /** Times every HTTP request; the route label is the router's template (`/process-status/:slug`), never a raw path. */
  httpMiddleware(): Middleware {
    return async (ctx, next) => {
      const began = performance.now();
      try {
        await next();
      } finally {
        const route = (ctx as unknown as { _matchedRoute?: unknown })._matchedRoute;
        this.observeRequest(ctx.method, typeof route === 'string' ? route : 'unmatched', ctx.status, began);
      }
    };
  }

  observeRequest(method: string, route: string, status: number, began: number): void {
    this.http.observe({ method, route, status: String(status) }, (performance.now() - began) / 1000);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
