import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { AgentError, isAgentError } from '../errors.js';

/** Every error answer is `{error, code}` (DESIGN §1); anything unexpected is logged and answered 500. */
export function errorBodies(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new AgentError('not_found', `no route ${ctx.method} ${ctx.path}`, 404);
      }
    } catch (err) {
      const agentError = toAgentError(err);
      if (agentError.status >= 500) {
        const log = (ctx.state.log as Logger | undefined) ?? logger.child({ requestId: ctx.state.requestId });
        log.error({ err }, 'request failed');
      }
      ctx.status = agentError.status;
      ctx.body = { error: agentError.message, code: agentError.code };
    }
  };
}

function toAgentError(err: unknown): AgentError {
  if (isAgentError(err)) return err;
  const status = (err as { status?: number }).status;
  if (status === 405) return new AgentError('method_not_allowed', (err as Error).message, 405);
  if (status === 501) return new AgentError('not_implemented', (err as Error).message, 501);
  return new AgentError('internal_error', 'internal error', 500);
}
