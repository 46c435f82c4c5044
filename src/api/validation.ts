import type { z } from 'zod';
import { AgentError } from '../errors.js';

/** Turns the first zod issue into our `{error, code}` vocabulary (docs/api.md lists the codes). */
export function validationError(error: z.ZodError): AgentError {
  const issue = error.issues[0]!;
  const field = issue.path.join('.');
  const message = field && !issue.message.startsWith(String(issue.path[0])) ? `${field}: ${issue.message}` : issue.message;
  return new AgentError(codeOf(issue), message, 400);
}

function codeOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return 'unknown_field';
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'missing_field';
  const top = issue.path[0];
  if ((top === 'app' || top === 'node') && issue.code !== 'invalid_type') return 'invalid_name';
  return 'invalid_field';
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) throw validationError(result.error);
  return result.data;
}
