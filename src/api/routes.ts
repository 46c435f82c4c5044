import Router from '@koa/router';
import type { Context } from 'koa';
import { parseTail } from '../console/index.js';
import { AgentError } from '../errors.js';
import { CreateRequestSchema, type Supervisor } from '../supervisor/index.js';
import { readJsonObject } from './body.js';
import { baseUrls, indexDoc, statusDoc } from './links.js';
import { checkCreateRequest, DEFAULT_API_LIMITS, ProcessCap, type ApiLimits } from './request-limits.js';
import { parseWith } from './validation.js';
import type { SourceAllowList } from '../source/allow.js';

function base(ctx: Context) {
  return baseUrls(ctx.protocol, ctx.host);
}

function find(supervisor: Supervisor, slug: string) {
  const proc = supervisor.get(slug);
  if (!proc) throw new AgentError('not_found', `no process ${slug}`, 404);
  return proc;
}

/** Thin handlers: parse, call the supervisor, render links (DESIGN §1). */
export function routes(
  supervisor: Supervisor,
  options: { bodyLimit: number; limits?: ApiLimits | undefined; allowSource?: SourceAllowList | undefined },
): Router {
  const router = new Router();
  const limits = options.limits ?? DEFAULT_API_LIMITS;
  const cap = new ProcessCap(limits.maxProcesses, () => supervisor.list().length);

  router.get('/', (ctx) => {
    ctx.body = indexDoc(base(ctx));
  });

  router.get('/list-processes', (ctx) => {
    const urls = base(ctx);
    ctx.body = { processes: supervisor.list().map((proc) => statusDoc(proc.snapshot(), urls)) };
  });

  router.post('/create-process', async (ctx) => {
    const body = await readJsonObject(ctx, { limit: options.bodyLimit });
    const request = parseWith(CreateRequestSchema, body);
    checkCreateRequest(request, limits, options.allowSource);
    const proc = await cap.run(() => supervisor.create(request));
    const doc = statusDoc(proc.snapshot(), base(ctx));
    ctx.status = 201;
    ctx.set('Location', doc.details);
    ctx.body = doc;
  });

  router.get('/process-status/:slug', (ctx) => {
    ctx.body = statusDoc(find(supervisor, ctx.params.slug!).snapshot(), base(ctx));
  });

  // The scrollback as text, for clients without WebSocket (curl, scripts, health checks).
  router.get('/process-output/:slug', (ctx) => {
    const proc = find(supervisor, ctx.params.slug!);
    const text = proc.console.text(parseTail(ctx.query.tail));
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = text;
  });

  router.post('/delete-process/:slug', async (ctx) => {
    await readJsonObject(ctx, { limit: options.bodyLimit, emptyOk: true });
    await supervisor.delete(ctx.params.slug!);
    ctx.body = {};
  });

  return router;
}
