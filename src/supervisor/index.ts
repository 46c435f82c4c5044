export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { CreateRequestSchema, NAME_PATTERN, RESTART_POLICIES, slugOf, type CreateRequest, type RestartPolicy } from './create-request.js';
export { ManagedProcess, type ProcessSnapshot } from './managed-process.js';
export { PortAllocator, type PortRange } from './ports.js';
export { FAILURE_STATES, STATES, failureStateFor, type ProcessState } from './states.js';
export { Supervisor, type SupervisorOptions } from './supervisor.js';
export { StateStore, type DeclaredProcess } from './state-store.js';
