import { decodeText, failer, logicalLines, type Fail } from './text.js';

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const EXPORT = /^export[ \t]+/;

/**
 * Parses a `.env` file (smartmob RFC 2). A repeated variable takes the later value, as foreman and a
 * shell `source` would. Values are literal: no `${VAR}` expansion and no inline `# comments`.
 */
export function parseDotenv(text: string | Uint8Array): Record<string, string> {
  const fail = failer('dotenv_invalid', '.env');
  const source = decodeText(text, 'dotenv_invalid', '.env');
  const vars = new Map<string, string>();
  for (const { line, text: decl } of logicalLines(source, fail)) {
    // `export` lets the same file be `source`d by a shell; foreman-era tools accept it.
    const body = decl.replace(EXPORT, '');
    const eq = body.indexOf('=');
    if (eq < 0) fail(line, 'expected VAR=VAL (no "=")');
    const name = body.slice(0, eq).trim();
    if (!VAR_NAME.test(name)) fail(line, `invalid variable name ${JSON.stringify(name)}`);
    vars.set(name, unquote(body.slice(eq + 1).trim(), line, fail));
  }
  return Object.fromEntries(vars);
}

/**
 * RFC 2 is silent on quotes; we follow foreman: '…' is literal, "…" turns `\n` into a newline and `\x` into
 * `x`. A quote must wrap the whole value, so a half-quoted value is an error rather than a surprise.
 */
function unquote(value: string, line: number, fail: Fail): string {
  const q = value[0];
  if (q !== "'" && q !== '"') return value;
  if (q === "'") {
    const close = value.indexOf("'", 1);
    if (close !== value.length - 1) fail(line, 'single-quoted value must end with its closing quote');
    return value.slice(1, -1);
  }
  let out = '';
  for (let i = 1; i < value.length; i++) {
    const c = value[i];
    if (c === '"') {
      if (i !== value.length - 1) break;
      return out;
    }
    if (c === '\\' && i + 1 < value.length) {
      const next = value[++i];
      out += next === 'n' ? '\n' : next;
    } else {
      out += c;
    }
  }
  return fail(line, 'double-quoted value must end with its closing quote');
}
