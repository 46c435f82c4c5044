import type { Context } from 'koa';
import { AgentError } from '../errors.js';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

async function readRaw(ctx: Context, limit: number): Promise<string> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(limit: number): AgentError {
  return new AgentError('body_too_large', `request body is larger than ${limit} bytes`, 413);
}

/**
 * The body as a JSON object, whatever the Content-Type: `curl -d` sends form-encoded headers with JSON bodies,
 * and the seed's clients do exactly that. An empty body reads as `{}` when `emptyOk`.
 */
export async function readJsonObject(ctx: Context, options: { limit?: number; emptyOk?: boolean } = {}): Promise<Record<string, unknown>> {
  const text = await readRaw(ctx, options.limit ?? DEFAULT_BODY_LIMIT);
  if (text.trim() === '' && options.emptyOk) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AgentError('invalid_json', `request body is not valid JSON: ${(err as Error).message}`, 400);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AgentError('invalid_body', 'request body must be a JSON object', 400);
  }
  return value as Record<string, unknown>;
}
