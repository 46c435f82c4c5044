/** Constants of the fly executor that the CLI needs without loading the executor. */
export const DEFAULT_FLY_API_URL = 'https://api.machines.dev/v1';
export const DEFAULT_FLY_LOGS_URL = 'https://api.fly.io/api/v1';
