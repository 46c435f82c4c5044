/** Procfile (smartmob RFC 1), .env (RFC 2), environment layering and locating an app in an unpacked tree. */
export { parseProcfile, type ProcfileEntry } from './procfile.js';
export { parseDotenv } from './dotenv.js';
export { DEFAULT_INHERIT_ENV, filterInheritedEnv, mergeEnv } from './env.js';
export { loadApp, MAX_PROCFILE_BYTES, type LoadedApp } from './app.js';
export { AppCache } from './app-cache.js';
