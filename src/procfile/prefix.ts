import type { Fail } from './text.js';

/**
 * Leading `VAR=VAL` words of a Procfile command (RFC 1: "a variable assignment as in popular UNIX shells"),
 * and Heroku's documented `env VAR=VAL cmd` form, which is the only form the original Python parser knew.
 *
 * We only lift a word out of the command when doing so cannot change what `/bin/sh -c` would have done:
 * a value that needs the shell (`$`, backquote, `~`, `;`, `&`, `|`, `<`, `>`, `(`, `)`) stops the scan and
 * that word and everything after it stay in the command, where the shell still evaluates them.
 */
export interface SplitCommand {
  env: Array<[string, string]>;
  command: string;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*=/y;
const NEEDS_SHELL = new Set(['$', '`', '~', ';', '&', '|', '<', '>', '(', ')']);
const ENV_WORD = /^env[ \t]+/;

export function splitEnvPrefix(command: string, line: number, fail: Fail): SplitCommand {
  const bare = takeAssignments(command, line, fail);
  const env = bare.pairs;
  let rest = bare.rest;
  const envWord = ENV_WORD.exec(rest);
  if (envWord) {
    const after = takeAssignments(rest.slice(envWord[0].length), line, fail);
    // `env -i A=1 cmd` or a bare `env A=1` (prints the environment) mean something else: leave them alone.
    if (after.pairs.length > 0 && after.rest !== '' && !after.rest.startsWith('-')) {
      env.push(...after.pairs);
      rest = after.rest;
    }
  }
  return { env, command: rest };
}

function takeAssignments(s: string, line: number, fail: Fail): { pairs: Array<[string, string]>; rest: string } {
  const pairs: Array<[string, string]> = [];
  let at = 0;
  for (let word = readAssignment(s, at, line, fail); word; word = readAssignment(s, at, line, fail)) {
    pairs.push([word.name, word.value]);
    at = word.end;
    while (s[at] === ' ' || s[at] === '\t') at++;
  }
  return { pairs, rest: s.slice(at) };
}

interface Assignment {
  name: string;
  value: string;
  end: number;
}

/** Reads one shell word `NAME=value` at `at`, undoing quoting the way sh does; null when it is not one we may lift. */
function readAssignment(s: string, at: number, line: number, fail: Fail): Assignment | null {
  NAME.lastIndex = at;
  const m = NAME.exec(s);
  if (!m) return null;
  let i = at + m[0].length;
  let value = '';
  while (i < s.length && s[i] !== ' ' && s[i] !== '\t') {
    const c = s[i];
    if (c === "'") {
      const close = s.indexOf("'", i + 1);
      if (close < 0) fail(line, 'unterminated single quote in environment assignment');
      value += s.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      const quoted = readDoubleQuoted(s, i + 1, line, fail);
      if (!quoted) return null;
      value += quoted.value;
      i = quoted.end;
    } else if (c === '\\') {
      value += s[i + 1] ?? '';
      i += 2;
    } else if (NEEDS_SHELL.has(c)) {
      return null;
    } else {
      value += c;
      i++;
    }
  }
  return { name: m[0].slice(0, -1), value, end: i };
}

/** Inside "…" sh only unescapes `$`, backquote, `"` and `\`; an unescaped `$` or backquote needs the shell. */
function readDoubleQuoted(s: string, at: number, line: number, fail: Fail): { value: string; end: number } | null {
  let value = '';
  for (let i = at; i < s.length; i++) {
    const c = s[i];
    if (c === '"') return { value, end: i + 1 };
    if (c === '$' || c === '`') return null;
    if (c === '\\' && i + 1 < s.length && '$`"\\'.includes(s[i + 1])) value += s[++i];
    else value += c;
  }
  return fail(line, 'unterminated double quote in environment assignment');
}
