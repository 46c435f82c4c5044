import { describe, expect, it } from 'vitest';
import { AgentError } from '../src/errors.js';
import { DEFAULT_INHERIT_ENV, filterInheritedEnv, mergeEnv, parseDotenv } from '../src/procfile/index.js';

describe('parseDotenv: valid input', () => {
  it.each<[string, string | Buffer, Record<string, string>]>([
    ['RFC 2 example', 'REDIS_URL=redis+tcp://localhost:6379/0\nMYSQL_URL=mysql+tcp://root:pw@localhost:3306/S',
      { REDIS_URL: 'redis+tcp://localhost:6379/0', MYSQL_URL: 'mysql+tcp://root:pw@localhost:3306/S' }],
    ['whitespace around =', 'A = 1\nB\t=\t2\nC= 3\nD =4', { A: '1', B: '2', C: '3', D: '4' }],
    ['leading and trailing whitespace', '   A=1   \n\tB=two words\t', { A: '1', B: 'two words' }],
    ['= inside value', 'URL=a=b=c', { URL: 'a=b=c' }],
    ['empty value', 'EMPTY=\nSPACE=   ', { EMPTY: '', SPACE: '' }],
    ['comments and blank lines', '# c\n\n  # indented\nA=1\n\n', { A: '1' }],
    ['inline # is literal', 'A=1 # not a comment', { A: '1 # not a comment' }],
    ['no expansion', 'A=$HOME/${X}', { A: '$HOME/${X}' }],
    ['empty file', '', {}],
    ['CRLF', 'A=1\r\nB=2\r\n', { A: '1', B: '2' }],
    ['BOM dropped', '\uFEFFA=1', { A: '1' }],
    ['Buffer input', Buffer.from('A=caf\u00e9'), { A: 'caf\u00e9' }],
    ['continuation', 'A=one \\\n   two\nB=3', { A: 'one two', B: '3' }],
    ['continuation without space', 'A=one\\\ntwo', { A: 'one two' }],
    ['multiple continuations', 'A=a \\\n b \\\n c', { A: 'a b c' }],
    ['continuation at EOF', 'A=a \\', { A: 'a' }],
    ['comment never continues', '# x \\\nA=1', { A: '1' }],
    ['single quotes literal', `A='  x \\n $Y "z" '`, { A: '  x \\n $Y "z" ' }],
    ['double quotes with escapes', 'A="a\\nb \\"q\\" \\\\ \\x"', { A: 'a\nb "q" \\ x' }],
    ['quoted empty', `A=""\nB=''`, { A: '', B: '' }],
    ['quotes only at the start are not special mid-value', `A=it's "ok"`, { A: `it's "ok"` }],
    ['quoted value across continuation', 'A="a \\\n b"', { A: 'a b' }],
    ['export prefix', 'export A=1\nexport\tB = 2', { A: '1', B: '2' }],
    ['var named export', 'export=1', { export: '1' }],
    ['duplicate: later wins', 'A=1\nA=2', { A: '2' }],
    ['lowercase and underscore names', 'a=1\n_B9=2', { a: '1', _B9: '2' }],
    ['1 MB value', `A=${'v'.repeat(1_000_000)}`, { A: 'v'.repeat(1_000_000) }],
  ])('%s', (_label, input, expected) => {
    expect(parseDotenv(input)).toEqual(expected);
  });
});

describe('parseDotenv: errors', () => {
  it.each<[string, string | Buffer, RegExp]>([
    ['no =', 'A=1\nJUSTAWORD', /line 2: expected VAR=VAL/],
    ['empty name', '=value', /line 1: invalid variable name ""/],
    ['digit first', '1A=x', /invalid variable name "1A"/],
    ['dash in name', 'MY-VAR=x', /invalid variable name "MY-VAR"/],
    ['dot in name', 'my.var=x', /invalid variable name/],
    ['space in name', 'MY VAR=x', /invalid variable name "MY VAR"/],
    ['unterminated double quote', 'A="abc', /line 1: double-quoted value must end/],
    ['text after double quote', 'A="a"b', /double-quoted/],
    ['unterminated single quote', "A='abc", /single-quoted value must end/],
    ['text after single quote', "A='a'b", /single-quoted/],
    ['NUL', 'A=1\0', /line 1: NUL/],
    ['invalid UTF-8', Buffer.from([0x41, 0x3d, 0x0a, 0x42, 0x3d, 0xfe]), /line 2: not valid UTF-8/],
  ])('%s', (_label, input, message) => {
    let err: unknown;
    try {
      parseDotenv(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('dotenv_invalid');
    expect((err as AgentError).status).toBe(422);
    expect((err as AgentError).message).toMatch(/^\.env/);
    expect((err as AgentError).message).toMatch(message);
  });
});

describe('mergeEnv', () => {
  it('applies DESIGN §3 precedence: agent < .env < Procfile prefix < request < PORT', () => {
    const agent = { PATH: '/bin', A: 'agent', B: 'agent', C: 'agent', D: 'agent', PORT: 'agent' };
    const dotenv = { B: 'dotenv', C: 'dotenv', D: 'dotenv', PORT: 'dotenv' };
    const prefix = { C: 'prefix', D: 'prefix', PORT: 'prefix' };
    const request = { D: 'request', PORT: 'request' };
    expect(mergeEnv(agent, dotenv, prefix, request, { PORT: '5001' })).toEqual({
      PATH: '/bin', A: 'agent', B: 'dotenv', C: 'prefix', D: 'request', PORT: '5001',
    });
  });

  it.each<[string, Array<Record<string, string> | undefined>, Record<string, string>]>([
    ['no layers', [], {}],
    ['undefined layers skipped', [undefined, { A: '1' }, undefined], { A: '1' }],
    ['later empty string wins', [{ A: '1' }, { A: '' }], { A: '' }],
    ['__proto__ stays a variable', [JSON.parse('{"__proto__":"x"}') as Record<string, string>], JSON.parse('{"__proto__":"x"}')],
  ])('%s', (_label, layers, expected) => {
    const merged = mergeEnv(...layers);
    expect(merged).toEqual(expected);
    expect(Object.keys(merged)).toEqual(Object.keys(expected));
  });

  it('does not mutate its inputs', () => {
    const a = { A: '1' };
    mergeEnv(a, { A: '2' });
    expect(a).toEqual({ A: '1' });
  });
});

describe('filterInheritedEnv', () => {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/bin', HOME: '/home/u', LANG: 'C.UTF-8', LC_ALL: 'C', LC_TIME: 'C', TZ: 'UTC',
    FLY_API_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'secret', path: 'lower', XLC_X: 'no', UNDEF: undefined,
  };

  it.each<[string, string[], Record<string, string>]>([
    ['exact names', ['PATH', 'TZ'], { PATH: '/usr/bin', TZ: 'UTC' }],
    ['prefix glob', ['LC_*'], { LC_ALL: 'C', LC_TIME: 'C' }],
    ['? matches one char', ['T?'], { TZ: 'UTC' }],
    ['case-sensitive', ['path'], { path: 'lower' }],
    ['anchored: no substring match', ['LC'], {}],
    ['regex chars are literal', ['P.TH', 'PA+TH'], {}],
    ['everything', ['*'], {
      PATH: '/usr/bin', HOME: '/home/u', LANG: 'C.UTF-8', LC_ALL: 'C', LC_TIME: 'C', TZ: 'UTC',
      FLY_API_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'secret', path: 'lower', XLC_X: 'no' }],
    ['nothing', [], {}],
    ['undefined values dropped', ['UNDEF'], {}],
    ['defaults keep secrets out', [...DEFAULT_INHERIT_ENV], {
      PATH: '/usr/bin', HOME: '/home/u', LANG: 'C.UTF-8', LC_ALL: 'C', LC_TIME: 'C', TZ: 'UTC' }],
  ])('%s', (_label, patterns, expected) => {
    expect(filterInheritedEnv(env, patterns)).toEqual(expected);
  });

  it('default list is the documented one', () => {
    expect(DEFAULT_INHERIT_ENV).toEqual(['PATH', 'HOME', 'LANG', 'LC_*', 'TZ', 'TMPDIR', 'USER', 'SHELL', 'TERM']);
  });
});
