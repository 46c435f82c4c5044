/** State words are part of the API contract (DESIGN §1); failure states keep the original agent's words. */
export const STATES = [
  'pending',
  'downloading',
  'unpacking',
  'starting',
  'running',
  'backoff',
  'stopping',
  'exited',
  'download failure',
  'unpack failure',
  'no procfile',
  'unknown process type',
  'invalid spec',
] as const;

export type ProcessState = (typeof STATES)[number];

export const FAILURE_STATES: readonly ProcessState[] = [
  'download failure',
  'unpack failure',
  'no procfile',
  'unknown process type',
  'invalid spec',
];

/** Where an error code (see docs/api.md) leaves a process that failed before its first start. */
export function failureStateFor(code: string): ProcessState {
  if (code.startsWith('download_') || code === 'source_url_invalid') return 'download failure';
  if (code.startsWith('unpack_')) return 'unpack failure';
  if (code === 'unknown_process_type') return 'unknown process type';
  if (code === 'invalid_spec') return 'invalid spec';
  // Anything that went wrong reading the app (missing, unreadable or invalid Procfile).
  return 'no procfile';
}
