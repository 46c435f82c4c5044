import http from 'node:http';
import Koa from 'koa';
import type { Logger } from 'pino';
import type { Supervisor } from '../supervisor/index.js';
import { consoleUpgrade } from './console-upgrade.js';
import { errorBodies } from './errors.js';
import { requestId } from './request-id.js';
import { routes } from './routes.js';
import { DEFAULT_BODY_LIMIT } from './body.js';

export interface ApiOptions {
  logger: Logger;
  /** Honour X-Forwarded-Proto / X-Forwarded-Host when building URLs. */
  trustProxy?: boolean;
  bodyLimit?: number;
}

export interface ApiServer {
  server: http.Server;
  /** Stops accepting connections and closes idle ones; attached consoles close with their processes. */
  stopAccepting(): void;
}

export function createApiServer(supervisor: Supervisor, options: ApiOptions): ApiServer {
  const app = new Koa({ proxy: options.trustProxy ?? false });
  const router = routes(supervisor, { bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT });
  app.use(requestId(options.logger));
  app.use(errorBodies(options.logger));
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  // Koa would print errors to stderr as plain text; ours are already answered and logged as JSON.
  app.silent = true;

  const server = http.createServer(app.callback());
  const consoles = consoleUpgrade(supervisor);
  server.on('upgrade', consoles.handle);
  return {
    server,
    stopAccepting() {
      server.close();
      server.closeIdleConnections();
    },
  };
}
