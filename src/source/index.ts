export { SourceCache, type FetchedSource, type FetchOptions, type SourceCacheOptions, type SourcePhase } from './cache.js';
export type { Progress } from './download.js';
export { DEFAULT_SOURCE_LIMITS, type SourceLimits } from './limits.js';
export {
  SOURCE_ERROR_CODES,
  SOURCE_PHASE_OF_CODE,
  sourceFailureState,
  type SourceErrorCode,
  type SourceFailureState,
} from './errors.js';
export { parseSourceUrl, redactUrl } from './url.js';
export { appRoot } from './app-root.js';
export type { ArchiveFormat } from './format.js';
