/**
 * Every error the agent reports carries a machine `code` (stable, snake_case, documented in docs/api.md)
 * and a human message. HTTP handlers map `status`; the supervisor maps codes to failure states.
 */
export class AgentError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentError';
    this.code = code;
    this.status = status;
  }
}

export function isAgentError(err: unknown): err is AgentError {
  return err instanceof AgentError;
}

/** Message of any thrown value, for logs and `error` fields. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
