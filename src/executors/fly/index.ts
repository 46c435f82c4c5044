export { FlyClient, DEFAULT_FLY_API_URL, DEFAULT_FLY_LOGS_URL, flyError, type FlyGuest, type FlyMachine, type FlyMachineConfig, type FlyClientOptions, type FlyLogsPage } from './client.js';
export { FlyExecutor, machineNameFor, META_AGENT, META_APP, META_PROCESS_TYPE, META_SLUG, type FlyExecutorOptions } from './fly-executor.js';
export { FlyChild, exitStatusFromEvents, type FlyChildOptions } from './fly-child.js';
export { bootScript, shellQuote, MACHINE_APP_DIR } from './boot.js';
export { guestFor, guestProblem, FLY_CPUS, FLY_MEMORY_PER_CPU, FLY_MEMORY_STEP_MB } from './guest.js';
