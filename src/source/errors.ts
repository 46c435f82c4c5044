import { AgentError } from '../errors.js';

/** Every code a SourceCache rejects with. */
export const SOURCE_ERROR_CODES = [
  'source_url_invalid',
  'download_failed',
  'download_too_large',
  'download_timeout',
  'unpack_failed',
  'unpack_refused_entry',
  'unpack_too_large',
  'unpack_too_many_entries',
  'aborted',
] as const;
export type SourceErrorCode = (typeof SOURCE_ERROR_CODES)[number];

export type SourceFailureState = 'download failure' | 'unpack failure';

/**
 * The process state (DESIGN §1) each code lands a process in. `aborted` has none: it only happens when the
 * caller gave up (e.g. the process was deleted), so there is no process left to show a state for.
 */
export const SOURCE_PHASE_OF_CODE: Readonly<Record<SourceErrorCode, SourceFailureState | null>> = Object.freeze({
  source_url_invalid: 'download failure',
  download_failed: 'download failure',
  download_too_large: 'download failure',
  download_timeout: 'download failure',
  unpack_failed: 'unpack failure',
  unpack_refused_entry: 'unpack failure',
  unpack_too_large: 'unpack failure',
  unpack_too_many_entries: 'unpack failure',
  aborted: null,
});

/** Failure state for an error code; null for `aborted` and for codes that are not the source module's. */
export function sourceFailureState(code: string): SourceFailureState | null {
  return Object.hasOwn(SOURCE_PHASE_OF_CODE, code) ? SOURCE_PHASE_OF_CODE[code as SourceErrorCode] : null;
}

// HTTP statuses only matter if an API handler surfaces these directly (e.g. validating source_url at create).
const STATUS: Record<SourceErrorCode, number> = {
  source_url_invalid: 400,
  download_failed: 502,
  download_too_large: 502,
  download_timeout: 504,
  unpack_failed: 422,
  unpack_refused_entry: 422,
  unpack_too_large: 422,
  unpack_too_many_entries: 422,
  aborted: 499,
};

export function sourceError(code: SourceErrorCode, message: string, cause?: unknown): AgentError {
  return new AgentError(code, message, STATUS[code], cause === undefined ? undefined : { cause });
}

export function abortedError(): AgentError {
  return sourceError('aborted', 'source fetch aborted');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError();
}
