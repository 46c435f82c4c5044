import { z } from 'zod';
import type { ProcessState } from '../supervisor/states.js';

/**
 * What the client reads from the agent. Objects are loose: fields the client does not know are kept, so a newer
 * agent never breaks an older client. Links are optional here; using one that is absent is an AgentProtocolError.
 */

const nullableString = z.string().nullable().optional();

export const IndexDocumentSchema = z.looseObject({
  create: z.string().optional(),
  list: z.string().optional(),
  healthz: z.string().optional(),
  metrics: z.string().optional(),
});

export const ProgressSchema = z.looseObject({
  bytes: z.number(),
  total: z.number().nullable().optional(),
});

export const StatusDocumentSchema = z.looseObject({
  app: z.string(),
  node: z.string(),
  slug: z.string(),
  /** One of STATES for this agent version; typed open so that a new state is not a parse error. */
  state: z.string().transform((state) => state as ProcessState | (string & {})),
  attach: z.string().optional(),
  details: z.string().optional(),
  status: z.string().optional(),
  delete: z.string().optional(),
  /** The recent output as text/plain (`?tail=N`); newer agents. */
  output: z.string().optional(),
  process_type: z.string().optional(),
  source_url: z.string().optional(),
  executor: z.string().optional(),
  restart: z.string().optional(),
  pid: z.union([z.string(), z.number()]).nullable().optional(),
  port: z.number().nullable().optional(),
  restarts: z.number().optional(),
  exit_code: z.number().nullable().optional(),
  exit_signal: nullableString,
  started_at: nullableString,
  created_at: nullableString,
  error: nullableString,
  error_code: nullableString,
  progress: ProgressSchema.nullable().optional(),
});

export const ListDocumentSchema = z.looseObject({
  processes: z.array(StatusDocumentSchema),
});

export const ErrorBodySchema = z.looseObject({
  error: z.string(),
  code: z.string().optional(),
});

export const ConsoleFrameSchema = z.looseObject({
  line: z.string(),
  stream: z.string().optional(),
  ts: z.string().optional(),
});

export type IndexDocument = z.infer<typeof IndexDocumentSchema>;
export type StatusDocument = z.infer<typeof StatusDocumentSchema>;
export type ListDocument = z.infer<typeof ListDocumentSchema>;
export type Progress = z.infer<typeof ProgressSchema>;
/** One console line. In text mode only `line` is set; in JSON mode `stream` is stdout | stderr | agent. */
export type ConsoleFrame = z.infer<typeof ConsoleFrameSchema>;
