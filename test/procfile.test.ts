import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentError } from '../src/errors.js';
import { loadApp, parseProcfile, type ProcfileEntry } from '../src/procfile/index.js';

type Simple = Record<string, { command: string; env?: Record<string, string>; line?: number }>;

/** Compact view of a parse result so tables stay readable. */
function simplify(map: Map<string, ProcfileEntry>): Simple {
  const out: Simple = {};
  for (const [name, e] of map) {
    expect(e.name).toBe(name);
    out[name] = { command: e.command, env: e.env, line: e.line };
  }
  return out;
}

function web(command: string, env: Record<string, string> = {}, line = 1): Simple {
  return { web: { command, env, line } };
}

function errorOf(fn: () => unknown): AgentError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return err as AgentError;
  }
  throw new Error('expected an AgentError');
}

describe('parseProcfile: valid input', () => {
  it.each<[string, string | Buffer, Simple]>([
    ['basic', 'web: gunicorn myapp:app', web('gunicorn myapp:app')],
    ['no space after colon', 'web:gunicorn', web('gunicorn')],
    ['colons in the command', 'web: run --bind 0.0.0.0:$PORT', web('run --bind 0.0.0.0:$PORT')],
    ['trailing whitespace trimmed', 'web: run   \t', web('run')],
    ['leading whitespace', '   \tweb: run', web('run')],
    ['comment and blank lines', '# top\n\n   # indented\n  \nweb: run\n', web('run', {}, 5)],
    ['inline # stays for the shell', 'web: run # note', web('run # note')],
    ['empty file', '', {}],
    ['only comments', '# a\n# b\n', {}],
    ['CRLF line endings', 'web: a\r\nworker: b\r\n', {
      web: { command: 'a', env: {}, line: 1 }, worker: { command: 'b', env: {}, line: 2 } }],
    ['leading BOM dropped', '\uFEFFweb: run', web('run')],
    ['BOM in a Buffer', Buffer.from('\uFEFFweb: run'), web('run')],
    ['Buffer input', Buffer.from('web: caf\u00e9'), web('caf\u00e9')],
    ['name chars _ - digits', 'A_b-9: run', { 'A_b-9': { command: 'run', env: {}, line: 1 } }],
    ['declaration order kept', 'b: 1\na: 2', { b: { command: '1', env: {}, line: 1 }, a: { command: '2', env: {}, line: 2 } }],
    // continuation
    ['continuation', 'web: gunicorn \\\n  myapp:app', web('gunicorn myapp:app')],
    ['continuation without space', 'web: a\\\nb', web('a b')],
    ['multiple continuations', 'web: \\\n  celery \\\n  -A tasks \\\n  worker', web('celery -A tasks worker')],
    ['whitespace after backslash', 'web: a \\  \nb', web('a b')],
    ['continuation CRLF', 'web: a \\\r\n  b\r\n', web('a b')],
    ['continued line looks like comment', 'web: a \\\n# b', web('a # b')],
    ['blank line ends continuation', 'web: a \\\n\nworker: b', {
      web: { command: 'a', env: {}, line: 1 }, worker: { command: 'b', env: {}, line: 3 } }],
    ['trailing backslash at EOF', 'web: a \\', web('a')],
    ['comment never continues', '# note \\\nweb: a', web('a', {}, 2)],
    ['line number is first physical line', '\n\nweb: a \\\n b\nworker: c', {
      web: { command: 'a b', env: {}, line: 3 }, worker: { command: 'c', env: {}, line: 5 } }],
    // env prefixes
    ['one prefix', 'web: FOO=bar run', web('run', { FOO: 'bar' })],
    ['several prefixes', 'web: A=1 B=2\tC=3 run x', web('run x', { A: '1', B: '2', C: '3' })],
    ['= inside value', 'web: URL=a=b=c run', web('run', { URL: 'a=b=c' })],
    ['empty value', 'web: EMPTY= run', web('run', { EMPTY: '' })],
    ['single quotes', "web: MSG='hello world' run", web('run', { MSG: 'hello world' })],
    ['double quotes', 'web: MSG="a \\"b\\" \\\\ c" run', web('run', { MSG: 'a "b" \\ c' })],
    ['escaped space', 'web: MSG=a\\ b run', web('run', { MSG: 'a b' })],
    ['mixed quoting', `web: X=a'b c'"d" run`, web('run', { X: 'ab cd' })],
    ['glob char is literal', 'worker: QUEUE=* rake work', { worker: { command: 'rake work', env: { QUEUE: '*' }, line: 1 } }],
    ['lowercase and _ names', 'web: _x=1 lower=2 run', web('run', { _x: '1', lower: '2' })],
    ['env form (Heroku)', 'web: env QUEUE=* FOO=meh rake', web('rake', { QUEUE: '*', FOO: 'meh' })],
    ['bare then env form', 'web: A=1 env B=2 run', web('run', { A: '1', B: '2' })],
    ['$ stops the scan', 'web: A=1 PATH=$PATH:/x run', web('PATH=$PATH:/x run', { A: '1' })],
    ['$ in double quotes stops', 'web: A="$HOME" run', web('A="$HOME" run')],
    ['$ in single quotes is literal', "web: A='$HOME' run", web('run', { A: '$HOME' })],
    ['backquote stops', 'web: A=`date` run', web('A=`date` run')],
    ['~ stops', 'web: A=~/x run', web('A=~/x run')],
    ['; stops', 'web: A=1;run', web('A=1;run')],
    ['not a name: digit first', 'web: 1A=x run', web('1A=x run')],
    ['not a name: dash', 'web: A-B=x run', web('A-B=x run')],
    ['= later in command is kept', 'web: run A=1', web('run A=1')],
    ['env with options untouched', 'web: env -i A=1 run', web('env -i A=1 run')],
    ['env option after assignments untouched', 'web: env A=1 -u B run', web('env A=1 -u B run')],
    ['bare env kept', 'web: env', web('env')],
    ['env A=1 alone kept (prints env)', 'web: env A=1', web('env A=1')],
    ['prefix across continuation', 'web: A=1 \\\n  run', web('run', { A: '1' })],
    ['1 MB command', `web: ${'x'.repeat(1_000_000)}`, web('x'.repeat(1_000_000))],
    ['1 MB env value', `web: V=${'y'.repeat(1_000_000)} run`, web('run', { V: 'y'.repeat(1_000_000) })],
  ])('%s', (_label, input, expected) => {
    expect(simplify(parseProcfile(input))).toEqual(expected);
  });

  it('a variable named __proto__ is an own property', () => {
    const env = parseProcfile('web: __proto__=x run').get('web')!.env;
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    expect(Object.keys(env)).toEqual(['__proto__']);
  });
});

describe('parseProcfile: errors', () => {
  it.each<[string, string | Buffer, string, RegExp]>([
    ['missing colon', 'web run', 'procfile_invalid', /line 1: .*no colon/],
    ['missing colon later', '# c\nweb: a\nbogus', 'procfile_invalid', /line 3: /],
    ['empty name', ': run', 'procfile_invalid', /line 1: invalid process type name ""/],
    ['space in name', 'my web: run', 'procfile_invalid', /invalid process type name "my web"/],
    ['space before colon', 'web : run', 'procfile_invalid', /invalid process type name "web "/],
    ['dot in name', 'web.1: run', 'procfile_invalid', /invalid process type name/],
    ['non-ASCII name', 'w\u00e9b: run', 'procfile_invalid', /invalid process type name/],
    ['empty command', 'web:', 'procfile_invalid', /line 1: empty command for process type "web"/],
    ['blank command', 'web:   \t', 'procfile_invalid', /empty command/],
    ['continued into nothing', 'web: \\\n', 'procfile_invalid', /empty command/],
    ['prefix only', 'web: FOO=bar', 'procfile_invalid', /environment assignments but no command/],
    ['prefixes only', 'web: A=1 B=2  ', 'procfile_invalid', /no command/],
    ['duplicate name', 'web: a\nweb: b', 'procfile_invalid', /line 2: duplicate process type "web" \(first declared on line 1\)/],
    ['duplicate after continuation', 'web: a \\\n b\nweb: c', 'procfile_invalid', /line 3: .*line 1/],
    ['duplicate variable', 'web: A=1 A=2 run', 'procfile_invalid', /line 1: duplicate variable "A" for process type "web"/],
    ['duplicate variable env form', 'web: A=1 env A=2 run', 'procfile_invalid', /duplicate variable "A"/],
    ['unterminated single quote', "web: A='x run", 'procfile_invalid', /line 1: unterminated single quote/],
    ['unterminated double quote', 'web: A="x run', 'procfile_invalid', /line 1: unterminated double quote/],
    ['NUL character', 'web: a\nworker: b\0c', 'procfile_invalid', /line 2: NUL/],
    ['invalid UTF-8', Buffer.from([0x77, 0x3a, 0x20, 0xff, 0x0a]), 'procfile_invalid_utf8', /line 1: not valid UTF-8/],
    ['invalid UTF-8 on line 3', Buffer.concat([Buffer.from('a: 1\nb: 2\nc: '), Buffer.from([0xc3, 0x28])]), 'procfile_invalid_utf8', /line 3/],
    ['overlong encoding', Buffer.from([0x77, 0x3a, 0x20, 0xc0, 0xaf]), 'procfile_invalid_utf8', /UTF-8/],
    ['lone surrogate string', 'web: \uD800', 'procfile_invalid_utf8', /not valid Unicode/],
  ])('%s', (_label, input, code, message) => {
    const err = errorOf(() => parseProcfile(input));
    expect(err.code).toBe(code);
    expect(err.status).toBe(422);
    expect(err.message).toMatch(/^Procfile/);
    expect(err.message).toMatch(message);
  });
});

describe('loadApp', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  /** Writes `files` (relative path → content) into a fresh temp dir. */
  async function tree(files: Record<string, string | Buffer>): Promise<string> {
    const root = await mkdtemp(path.join(tmpdir(), 'procfile-test-'));
    dirs.push(root);
    for (const [rel, content] of Object.entries(files)) {
      const file = path.join(root, rel);
      if (rel.endsWith('/')) {
        await mkdir(file, { recursive: true });
      } else {
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, content);
      }
    }
    return root;
  }

  it.each<[string, Record<string, string | Buffer>, string, Record<string, string>]>([
    ['Procfile at the root', { Procfile: 'web: run' }, '.', {}],
    ['root with .env', { Procfile: 'web: run', '.env': 'A=1\nB = two' }, '.', { A: '1', B: 'two' }],
    ['single top-level dir (GitHub tarball)', { 'repo-abc123/Procfile': 'web: run' }, 'repo-abc123', {}],
    ['single dir with .env', { 'repo/Procfile': 'web: run', 'repo/.env': 'X=y' }, 'repo', { X: 'y' }],
    ['.env at root is not used for a nested Procfile', { 'repo/Procfile': 'web: run', 'repo/x': '' }, 'repo', {}],
    ['archive noise ignored', {
      'repo/Procfile': 'web: run', '__MACOSX/._repo': '', pax_global_header: '', '.DS_Store': '' }, 'repo', {}],
    ['root wins over single dir', { Procfile: 'web: root', 'sub/Procfile': 'web: sub' }, '.', {}],
  ])('%s', async (_label, files, where, dotenv) => {
    const root = await tree(files);
    const app = await loadApp(root);
    expect(app.appDir).toBe(path.resolve(root, where));
    expect(app.procfile.get('web')?.command).toMatch(/^(run|root)$/);
    expect(app.dotenv).toEqual(dotenv);
  });

  it.each<[string, string, Record<string, string | Buffer>]>([
    ['empty tree', 'no_procfile', {}],
    ['missing Procfile', 'no_procfile', { 'README.md': 'hi' }],
    ['two top-level dirs', 'no_procfile', { 'a/Procfile': 'web: a', 'b/Procfile': 'web: b' }],
    ['dir plus a file', 'no_procfile', { 'a/Procfile': 'web: a', 'README.md': '' }],
    ['only two levels down', 'no_procfile', { 'a/b/Procfile': 'web: a' }],
    ['lowercase procfile', 'no_procfile', { procfile: 'web: a' }],
    ['Procfile is a directory', 'no_procfile', { 'Procfile/': '' }],
    ['invalid Procfile', 'procfile_invalid', { Procfile: 'web' }],
    ['invalid .env', 'dotenv_invalid', { Procfile: 'web: a', '.env': 'nope' }],
    ['.env is a directory', 'dotenv_invalid', { Procfile: 'web: a', '.env/': '' }],
    ['Procfile over 1 MiB', 'procfile_too_large', { Procfile: `web: ${'x'.repeat(1024 * 1024)}` }],
    ['.env over 1 MiB', 'procfile_too_large', { Procfile: 'web: a', '.env': `A=${'x'.repeat(1024 * 1024)}` }],
  ])('%s → %s', async (_label, code, files) => {
    const root = await tree(files);
    const err = await loadApp(root).then(
      () => { throw new Error('expected a rejection'); },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe(code);
    expect((err as AgentError).status).toBe(422);
  });

  it('accepts a Procfile of exactly 1 MiB', async () => {
    const body = 'web: ' + 'x'.repeat(1024 * 1024 - 5);
    const root = await tree({ Procfile: body });
    expect((await loadApp(root)).procfile.get('web')?.command.length).toBe(1024 * 1024 - 5);
  });
});
