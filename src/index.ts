export { startAgent, DEFAULT_CONFIG, type Agent, type AgentConfig } from './agent.js';
export { AgentError } from './errors.js';
export type { Child, ChildSpec, Executor, ExitStatus, OutputChunk } from './executors/types.js';
export { STATES, FAILURE_STATES, type ProcessState, type CreateRequest } from './supervisor/index.js';
export * from './client/index.js';
