import type Router from '@koa/router';
import type { Executor } from '../executors/types.js';
import type { AgentMetrics } from '../metrics/index.js';

export interface HealthInfo {
  version: string;
  /** `Date.now()` when the agent started. */
  startedAt: number;
  executors: ReadonlyMap<string, Executor>;
  /** How strongly children die with the agent (local executor; docs/operations.md#kill-guarantee). */
  killGuarantee: string;
  processCount: () => number;
  /** True once SIGINT/SIGTERM began the graceful stop. */
  stopping: () => boolean;
}

export interface OpsOptions {
  health: HealthInfo;
  metrics: AgentMetrics;
}

/** The full /healthz document (what a token holder, or anyone when auth is off, sees). */
export function healthDoc(health: HealthInfo): Record<string, unknown> {
  const warnings: string[] = [];
  if (health.killGuarantee !== 'pidns') {
    warnings.push(`kill guarantee is ${health.killGuarantee}: children may outlive an agent killed with SIGKILL`);
  }
  return {
    status: health.stopping() ? 'stopping' : 'ok',
    version: health.version,
    executors: [...health.executors.values()].map((executor) => ({ name: executor.name, ...executor.describe?.() })),
    kill_guarantee: health.killGuarantee,
    uptime_s: Math.round((Date.now() - health.startedAt) / 100) / 10,
    processes: health.processCount(),
    warnings,
  };
}

/**
 * `GET /healthz` (liveness: never needs a token, but without a valid one says only `{"status"}`) and
 * `GET /metrics` (Prometheus text; needs the token like every other route). 503 while the agent is stopping.
 */
export function registerOpsRoutes(router: Router, options: OpsOptions): void {
  router.get('/healthz', (ctx) => {
    const doc = healthDoc(options.health);
    ctx.status = doc.status === 'ok' ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = ctx.state.authenticated === false ? { status: doc.status } : doc;
  });

  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = options.metrics.contentType;
    ctx.body = await options.metrics.text();
  });
}
