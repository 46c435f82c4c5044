import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import Koa from 'koa';
import type { Logger } from 'pino';
import type { Supervisor } from '../supervisor/index.js';
import { consoleUpgrade } from './console-upgrade.js';
import { errorBodies } from './errors.js';
import { requestId } from './request-id.js';
import { routes } from './routes.js';
import { DEFAULT_BODY_LIMIT } from './body.js';
import type { AgentMetrics } from '../metrics/index.js';
import type { SourceAllowList } from '../source/allow.js';
import { requireAuth, TokenAuth } from './auth.js';
import { registerOpsRoutes, type HealthInfo } from './ops-routes.js';
import type { ApiLimits } from './request-limits.js';

export interface ApiOptions {
  logger: Logger;
  /** Honour X-Forwarded-Proto / X-Forwarded-Host when building URLs. */
  trustProxy?: boolean;
  bodyLimit?: number;
  /** Bearer tokens; without any (or with none configured) every route is open. */
  auth?: TokenAuth;
  /** Create-request limits (docs/security.md#limits); `maxBodyBytes` wins over `bodyLimit`. */
  limits?: ApiLimits;
  /** `--allow-source`: create refuses other hosts with 400 source_not_allowed. */
  allowSource?: SourceAllowList | undefined;
  /** With `health`, enables /healthz and /metrics and times every request. */
  metrics?: AgentMetrics;
  health?: HealthInfo;
}

export interface ApiServer {
  server: http.Server;
  /** Stops accepting connections and closes idle ones; attached consoles close with their processes. */
  stopAccepting(): void;
}

export function createApiServer(supervisor: Supervisor, options: ApiOptions): ApiServer {
  const app = new Koa({ proxy: options.trustProxy ?? false });
  const router = routes(supervisor, {
    bodyLimit: options.limits?.maxBodyBytes ?? options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    limits: options.limits,
    allowSource: options.allowSource,
  });
  const auth = options.auth ?? new TokenAuth();
  if (options.metrics && options.health) registerOpsRoutes(router, { metrics: options.metrics, health: options.health });
  app.use(requestId(options.logger));
  if (options.metrics) app.use(options.metrics.httpMiddleware());
  app.use(errorBodies(options.logger));
  app.use(requireAuth(auth));
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  // Koa would print errors to stderr as plain text; ours are already answered and logged as JSON.
  app.silent = true;

  const server = http.createServer(app.callback());
  const metrics = options.metrics;
  const began = new WeakMap<http.IncomingMessage, number>();
  const consoles = consoleUpgrade(supervisor, {
    auth,
    onUpgrade: (status, req) => {
      const start = began.get(req) ?? performance.now();
      metrics?.observeRequest('GET', '/attach-console/:slug', status, start);
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
      const ms = Math.round((performance.now() - start) * 10) / 10;
      options.logger.info({ requestId: id, method: 'GET', path: req.url?.split('?')[0], status, ms, upgrade: 'websocket' }, 'request');
    },
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    began.set(req, performance.now());
    consoles.handle(req, socket, head);
  });
  return {
    server,
    stopAccepting() {
      server.close();
      server.closeIdleConnections();
    },
  };
}
