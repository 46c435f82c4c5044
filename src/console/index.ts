export { ATTACHER_BUFFER_LIMIT } from './attacher.js';
export { ConsoleHub, DEFAULT_TAIL, parseTail, type AttachOptions } from './hub.js';
export { LineFramer, MAX_LINE_BYTES } from './line-framer.js';
export { Scrollback } from './scrollback.js';
export type { ConsoleFormat, ConsoleLine, StreamName } from './types.js';
