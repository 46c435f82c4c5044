import { AgentError } from '../errors.js';

/** Content errors are the app author's fault, not the agent's: 422 everywhere in this folder. */
export const CONTENT_ERROR = 422;

/** Reports a problem at a 1-based line; never returns. */
export type Fail = (line: number, problem: string) => never;

export interface LogicalLine {
  /** 1-based number of the first physical line, which is what an author looks for. */
  line: number;
  text: string;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Strict UTF-8 decoding: RFC 1/2 say invalid UTF-8 SHOULD be rejected, and a silently substituted U+FFFD
 * could end up inside a command. A leading BOM is dropped (RFC: "without BOM") rather than refused, because
 * Windows editors add one and it would otherwise become part of the first name.
 */
export function decodeText(input: string | Uint8Array, code: string, file: string): string {
  let text: string;
  if (typeof input === 'string') {
    if (LONE_SURROGATE.test(input)) throw new AgentError(code, `${file} is not valid Unicode`, CONTENT_ERROR);
    text = input;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw new AgentError(code, `${file} line ${firstBadLine(input)}: not valid UTF-8`, CONTENT_ERROR);
    }
  }
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

/** Only called on failure, so the line number costs nothing on the happy path. */
function firstBadLine(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let line = 1; ; line++) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl;
    try {
      decoder.decode(bytes.subarray(start, end));
    } catch {
      return line;
    }
    if (nl < 0) return line;
    start = nl + 1;
  }
}

/**
 * The line rules RFC 1 and RFC 2 share: CRLF or LF, surrounding whitespace ignored, blank and `#` lines
 * skipped, and a trailing `\` joins the next line with one space. A comment never continues, so a stray
 * `\` after a comment cannot swallow the declaration below it. A `\` on the last line joins nothing.
 */
export function logicalLines(text: string, fail: Fail): LogicalLine[] {
  const out: LogicalLine[] = [];
  let parts: string[] | undefined;
  let start = 0;
  const physical = text.split(/\r?\n/);
  for (let i = 0; i < physical.length; i++) {
    // NUL cannot be passed to exec() or an environment block; better to say so here than fail at spawn.
    if (physical[i].includes('\0')) fail(i + 1, 'NUL character');
    const line = physical[i].trim();
    if (!parts) {
      if (line === '' || line.startsWith('#')) continue;
      parts = [];
      start = i + 1;
    }
    const continued = line.endsWith('\\');
    parts.push(continued ? line.slice(0, -1).trimEnd() : line);
    if (!continued) {
      out.push({ line: start, text: join(parts) });
      parts = undefined;
    }
  }
  if (parts) out.push({ line: start, text: join(parts) });
  return out;
}

function join(parts: string[]): string {
  return parts.filter((p) => p !== '').join(' ');
}

/** Builds the `fail` callback for one file, so messages always read "<file> line N: problem". */
export function failer(code: string, file: string): Fail {
  return (line, problem) => {
    throw new AgentError(code, `${file} line ${line}: ${problem}`, CONTENT_ERROR);
  };
}
