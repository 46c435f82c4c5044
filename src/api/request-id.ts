import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';

const SAFE_ID = /^[\w.:-]{1,128}$/;

/** Echoes X-Request-Id (or makes one) and logs each request with it. */
export function requestId(logger: Logger): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('x-request-id');
    const id = SAFE_ID.test(given) ? given : randomUUID();
    ctx.state.requestId = id;
    // Every line logged while handling this request carries its id (docs/operations.md#logs).
    ctx.state.log = logger.child({ requestId: id });
    ctx.set('X-Request-Id', id);
    const began = performance.now();
    try {
      await next();
    } finally {
      const ms = Math.round((performance.now() - began) * 10) / 10;
      (ctx.state.log as Logger).info({ method: ctx.method, path: ctx.path, status: ctx.status, ms }, 'request');
    }
  };
}
