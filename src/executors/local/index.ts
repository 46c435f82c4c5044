export { LocalExecutor, type LocalExecutorOptions } from './local-executor.js';
export { detectKillGuarantee, type KillGuarantee } from './kill-guarantee.js';
