import { splitEnvPrefix } from './prefix.js';
import { decodeText, failer, logicalLines } from './text.js';

export interface ProcfileEntry {
  name: string;
  /** Run through `/bin/sh -c`, with the leading assignments already removed. */
  command: string;
  env: Record<string, string>;
  /** 1-based line of the declaration (its first physical line). */
  line: number;
}

/** Heroku documents letters, digits and `_`; foreman and honcho also accept `-`, so we do too. */
const PROCESS_TYPE = /^[A-Za-z0-9_-]+$/;

/** Parses a Procfile (smartmob RFC 1). Entries keep declaration order. */
export function parseProcfile(text: string | Uint8Array): Map<string, ProcfileEntry> {
  const fail = failer('procfile_invalid', 'Procfile');
  const source = decodeText(text, 'procfile_invalid_utf8', 'Procfile');
  const entries = new Map<string, ProcfileEntry>();
  for (const { line, text: decl } of logicalLines(source, fail)) {
    const colon = decl.indexOf(':');
    if (colon < 0) fail(line, 'expected "name: command" (no colon)');
    const name = decl.slice(0, colon);
    if (!PROCESS_TYPE.test(name)) {
      fail(line, `invalid process type name ${JSON.stringify(name)} (letters, digits, "_" and "-" only)`);
    }
    // RFC 1 has no sane default for a repeated name; the original parser refuses it too.
    const first = entries.get(name);
    if (first) fail(line, `duplicate process type "${name}" (first declared on line ${first.line})`);
    const rest = decl.slice(colon + 1).trim();
    if (rest === '') fail(line, `empty command for process type "${name}"`);
    const { env, command } = splitEnvPrefix(rest, line, fail);
    if (command === '') fail(line, `process type "${name}" has environment assignments but no command`);
    entries.set(name, { name, command, env: toRecord(env, name, line, fail), line });
  }
  return entries;
}

/** A repeated variable is refused like in the original parser: which one the author meant is a guess. */
function toRecord(
  pairs: Array<[string, string]>,
  name: string,
  line: number,
  fail: (line: number, problem: string) => never,
): Record<string, string> {
  const seen = new Map<string, string>();
  for (const [key, value] of pairs) {
    if (seen.has(key)) fail(line, `duplicate variable "${key}" for process type "${name}"`);
    seen.set(key, value);
  }
  // fromEntries defines own properties, so a variable named __proto__ cannot touch the prototype.
  return Object.fromEntries(seen);
}
