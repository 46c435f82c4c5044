import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { deadPort, runCli, spawnCli, startPrefixProxy, tempConfigHome, type CliResult } from './helpers/cli.js';
import { startFixtureServer, type FixtureServer } from './helpers/http-fixture.js';
import { pidsWithEnv, waitFor } from './helpers/wait.js';
import { formatDuration, styleFor, table } from '../src/cli/format.js';

let agent: AgentProcess;
let files: FixtureServer;
let source: string;
let configHome: string;

beforeAll(async () => {
  [agent, files, configHome] = await Promise.all([startAgentProcess(), startFixtureServer(), tempConfigHome()]);
  source = files.set('/cli.tar.gz', { body: await appArchive('cli', 'tar.gz'), type: 'application/gzip' });
});

afterAll(async () => {
  await stopAllAgents();
  await files?.close();
});

/** The CLI against our agent (through PROCFILE_AGENT_URL), with a private config dir. */
function cli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return runCli(args, { ...options, env: { XDG_CONFIG_HOME: configHome, PROCFILE_AGENT_URL: agent.url, ...options.env } });
}

const node = () => `n${Math.random().toString(36).slice(2, 8)}`;

async function stateOf(slug: string): Promise<string | undefined> {
  const { body } = await agent.api('/list-processes');
  return body.processes.find((p: { slug: string }) => p.slug === slug)?.state;
}

async function createRunning(type: string, app = 'cli'): Promise<string> {
  const n = node();
  const result = await cli(['create', '--app', app, '--node', n, '--type', type, '--source', source, '--wait']);
  expect(result.code, result.stderr).toBe(0);
  return `${app}.${n}`;
}

describe('create, ps, status, delete', () => {
  it('create --wait shows progress on stderr and ends when running', async () => {
    const n = node();
    const result = await cli(['create', '--app', 'cli', '--node', n, '--type', 'greet', '--source', source, '-e', 'WHO=cli', '--wait']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^cli\\.${n} running \\(pid \\d+, port \\d+\\)\\n$`));
    expect(result.stderr).toContain(`cli.${n}: running`);
    expect(await stateOf(`cli.${n}`)).toBe('running');

    const ps = await cli(['ps']);
    expect(ps.code).toBe(0);
    const [header, ...rows] = ps.stdout.trimEnd().split('\n');
    expect(header!.split(/\s+/)).toEqual(['SLUG', 'TYPE', 'STATE', 'PID', 'PORT', 'RESTARTS', 'UPTIME']);
    const row = rows.find((line) => line.startsWith(`cli.${n} `))!.split(/\s+/);
    expect(row).toEqual([`cli.${n}`, 'greet', 'running', expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d+$/), '0', expect.stringMatching(/^\d+s$/)]);
    expect(ps.stdout).not.toContain('\u001b[');

    const json = JSON.parse((await cli(['ps', '--json'])).stdout);
    expect(json.find((doc: { slug: string }) => doc.slug === `cli.${n}`)).toMatchObject({ state: 'running', process_type: 'greet' });

    const status = await cli(['status', `cli.${n}`]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^slug: +cli\./);
    expect(status.stdout).toMatch(/^state: +running$/m);
    expect(status.stdout).toMatch(/^type: +greet$/m);
    const statusJson = JSON.parse((await cli(['status', `cli.${n}`, '--json'])).stdout);
    expect(statusJson).toMatchObject({ slug: `cli.${n}`, state: 'running', details: `${agent.url}/process-status/cli.${n}` });

    await waitFor(async () => (await cli(['logs', `cli.${n}`])).stdout === 'hello cli\n', { what: '--env in the output' });

    const deleted = await cli(['delete', `cli.${n}`]);
    expect(deleted).toMatchObject({ code: 0, stdout: `deleted cli.${n}\n` });
    expect(await stateOf(`cli.${n}`)).toBeUndefined();

    const gone = await cli(['status', `cli.${n}`]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`procfile-agent: no process cli.${n} (not_found)\n`);
  });

  it('create without --wait prints the slug; a duplicate is an API error (exit 1)', async () => {
    const n = node();
    const args = ['create', '--app', 'cli', '--node', n, '--type', 'nope', '--source', source];
    expect(await cli(args)).toMatchObject({ code: 0, stdout: `created cli.${n} (pending)\n` });
    const again = await cli(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^procfile-agent: .*cli\..* \(slug_exists\)\n$/);
    expect((await cli(['delete', `cli.${n}`])).code).toBe(0);
  });

  it('create --wait exits 1 with the error on a failure state', async () => {
    const n = node();
    const result = await cli(['create', '--app', 'cli', '--node', n, '--type', 'nope', '--source', source, '--wait']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`procfile-agent: cli.${n}: unknown process type: the Procfile has no process type 'nope'`);
    expect(result.stderr.trimEnd().split('\n').at(-1)).toMatch(/\(unknown_process_type\)$/);
    expect(result.stdout).toBe('');
    // Failure states stay listed until deleted.
    expect(await stateOf(`cli.${n}`)).toBe('unknown process type');
    expect((await cli(['delete', `cli.${n}`])).code).toBe(0);
  });

  it('refuses bad flags before talking to the agent', async () => {
    const missing = await cli(['create', '--app', 'cli', '--type', 'greet', '--source', source]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("required option '--node <name>' not specified");
    const badEnv = await cli(['create', '--app', 'cli', '--node', 'x', '--type', 'greet', '--source', source, '-e', 'NOEQUALS']);
    expect(badEnv.code).toBe(1);
    expect(badEnv.stderr).toContain("'NOEQUALS' is not KEY=VALUE");
  });
});

describe('run (one-off)', () => {
  it('streams output and exits 0', async () => {
    const result = await cli(['run', '--app', 'oneoff', '--type', 'ok', '--source', source]);
    expect(result).toMatchObject({ code: 0, stdout: 'hi\n', stderr: 'to-err\n' });
  });

  it("exits with the child's exit code", async () => {
    const result = await cli(['run', '--app', 'oneoff', '--type', 'three', '--source', source]);
    expect(result).toMatchObject({ code: 3, stdout: 'bye\n' });
  });

  it('a command killed by signal N exits 128+N (as the agent reports it on Linux)', async () => {
    const result = await cli(['run', '--app', 'oneoff', '--type', 'killed', '--source', source]);
    expect(result.code, result.stderr).toBe(128 + 9);
    expect(result.stdout).toBe('dying\n');
  });

  it('a child the agent sees die of SIGKILL exits 137', async () => {
    const mark = `m${Math.random().toString(36).slice(2)}`;
    const run = spawnCli(['run', '--app', 'oneoff', '--type', 'sleeper', '--source', source, '-e', `MARK=${mark}`, '-v'], {
      env: { XDG_CONFIG_HOME: configHome, PROCFILE_AGENT_URL: agent.url },
    });
    await waitFor(() => run.stdout() === 'sleeping\n', { what: 'sleeper output' }).catch((err: Error) => {
      throw new Error(`${err.message}; stdout ${JSON.stringify(run.stdout())}, stderr ${JSON.stringify(run.stderr())}`);
    });
    // Every process of the child's tree (the executor's wrapper included) has MARK in its environment.
    const pids = await waitFor(() => pidsWithEnv('MARK', mark).filter((pid) => pid !== run.proc.pid), { what: 'child pids' });
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone with the first one (the namespace dies with its init)
      }
    }
    const result = await run.done;
    expect(result.code, result.stderr).toBe(137);
  });

  it('Ctrl-C stops and deletes the one-off, exit 130', async () => {
    const n = node();
    const run = spawnCli(['run', '--app', 'oneoff', '--node', n, '--type', 'sleeper', '--source', source], {
      env: { XDG_CONFIG_HOME: configHome, PROCFILE_AGENT_URL: agent.url },
    });
    await waitFor(() => run.stdout() === 'sleeping\n', { what: 'sleeper output' });
    run.proc.kill('SIGINT');
    const result = await run.done;
    expect(result.code).toBe(130);
    // (The child may print its own last words, e.g. the shell's "Terminated".)
    expect(result.stderr.startsWith(`procfile-agent: stopping oneoff.${n}…\n`)).toBe(true);
    expect(await stateOf(`oneoff.${n}`)).toBeUndefined();
  });

  it('passes --env to the child', async () => {
    const result = await cli(['run', '--app', 'oneoff', '--type', 'who', '--source', source, '-e', 'WHO=there', 'OTHER=1', '--env', 'X=2']);
    expect(result).toMatchObject({ code: 0, stdout: 'hello there 1 2\n' });
  });

  it('waits for a slow child; --node names it; -v shows states, agent events and requests', async () => {
    const n = node();
    const result = await cli(['run', '--app', 'oneoff', '--node', n, '--type', 'slow', '--source', source, '-v']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('done\n');
    expect(result.stderr).toContain(`oneoff.${n}: exited`);
    expect(result.stderr).toMatch(/\[agent\] exited with code 0/);
    expect(result.stderr).toContain(`POST ${agent.url}/delete-process/oneoff.${n} → 200`);
  });

  it('a failure state exits 1 with the message', async () => {
    const result = await cli(['run', '--app', 'oneoff', '--type', 'nope', '--source', source]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^procfile-agent: oneoff\.run\.\d+: unknown process type: .* \(unknown_process_type\)\n$/);
  });

  it('leaves nothing behind', async () => {
    const { body } = await agent.api('/list-processes');
    expect(body.processes.filter((p: { app: string }) => p.app === 'oneoff')).toEqual([]);
  });
});

describe('attach and logs', () => {
  it('attach prints lines and sends stdin lines (--stdin); Ctrl-C detaches without killing', async () => {
    const slug = await createRunning('echoer');
    const attach = spawnCli(['attach', slug, '--stdin'], { env: { XDG_CONFIG_HOME: configHome, PROCFILE_AGENT_URL: agent.url }, stdin: 'pipe' });
    attach.proc.stdin!.write('first line\nsecond line\n');
    await waitFor(() => attach.stdout().includes('first line\nsecond line\n'), { what: 'echoed lines' });
    expect(attach.stderr()).toMatch(/\[agent\] started pid \d+/);
    attach.proc.kill('SIGINT');
    expect((await attach.done).code).toBe(0);
    expect(await stateOf(slug)).toBe('running');

    // The lines are in the scrollback for the next attacher; deleting the process ends its consoles (exit 0).
    const again = spawnCli(['attach', slug], { env: { XDG_CONFIG_HOME: configHome, PROCFILE_AGENT_URL: agent.url } });
    await waitFor(() => again.stdout().includes('second line'), { what: 'scrollback' });
    expect((await cli(['delete', slug])).code).toBe(0);
    const ended = await again.done;
    expect(ended.code).toBe(0);
    expect(ended.stderr).toContain('[agent] console closed');
  });

  it('logs prints the last N lines and returns; -f follows until Ctrl-C', async () => {
    const slug = await createRunning('lines');
    await waitFor(async () => (await cli(['logs', slug])).stdout.includes('line-5'), { what: 'line-5' });

    // Plain logs read the `output` link: the child's lines only.
    const all = await cli(['logs', slug]);
    expect(all).toMatchObject({ code: 0, stdout: 'line-1\nline-2\nline-3\nline-4\nline-5\n', stderr: '' });

    const last = await cli(['logs', slug, '--tail', '2']);
    expect(last).toMatchObject({ code: 0, stdout: 'line-4\nline-5\n', stderr: '' });

    // --json reads the console: agent events are frames too.
    const json = await cli(['logs', slug, '-n', '6', '--json']);
    const frames = json.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(frames[0]).toMatchObject({ stream: 'agent', line: expect.stringMatching(/^started pid \d+$/), ts: expect.any(String) });
    expect(frames.slice(1).map((frame: { line: string }) => frame.line)).toEqual(['line-1', 'line-2', 'line-3', 'line-4', 'line-5']);

    const follow = spawnCli(['logs', slug, '-f', '--tail', '1'], { env: { XDG_CONFIG_HOME: configHome, PROCFILE_AGENT_URL: agent.url } });
    await waitFor(() => follow.stdout() === 'line-5\n', { what: 'followed scrollback' });
    follow.proc.kill('SIGINT');
    expect((await follow.done).code).toBe(0);
    expect((await cli(['delete', slug])).code).toBe(0);
  });
});

describe('agent selection, profiles, errors', () => {
  it('an unreachable agent is one line on stderr and exit 2', async () => {
    const port = await deadPort();
    for (const args of [['ps'], ['status', 'a.b'], ['run', '--app', 'a', '--type', 'ok', '--source', source]]) {
      const result = await runCli([...args, '--agent', `http://127.0.0.1:${port}`], { env: { XDG_CONFIG_HOME: configHome } });
      expect(result).toMatchObject({ code: 2, stdout: '', stderr: `procfile-agent: cannot reach agent at http://127.0.0.1:${port}/: ECONNREFUSED\n` });
    }
  });

  it('profiles live in $XDG_CONFIG_HOME/procfile-agent/config.json (0600, dir 0700) and pick the agent', async () => {
    const home = await tempConfigHome();
    const env = { XDG_CONFIG_HOME: home };
    const port = await deadPort();

    expect(await runCli(['profile', 'add', 'dead', `http://127.0.0.1:${port}`, '--token', 's3cret'], { env })).toMatchObject({ code: 0 });
    expect(await runCli(['profile', 'add', 'live', agent.url], { env })).toMatchObject({ code: 0 });
    const file = path.join(home, 'procfile-agent', 'config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      current: 'dead',
      profiles: { dead: { url: `http://127.0.0.1:${port}`, token: 's3cret' }, live: { url: agent.url } },
    });

    // The first profile is current: unreachable.
    expect((await runCli(['ps'], { env })).code).toBe(2);
    // --profile, then PROCFILE_AGENT_URL, then --agent beat the current profile.
    expect((await runCli(['ps', '--profile', 'live'], { env })).code).toBe(0);
    expect((await runCli(['ps'], { env: { ...env, PROCFILE_AGENT_URL: agent.url } })).code).toBe(0);
    expect((await runCli(['ps', '--agent', agent.url], { env })).code).toBe(0);
    expect((await runCli(['ps', '--agent', `http://127.0.0.1:${port}`], { env: { ...env, PROCFILE_AGENT_URL: agent.url } })).code).toBe(2);

    expect(await runCli(['profile', 'use', 'live'], { env })).toMatchObject({ code: 0, stdout: `using profile live → ${agent.url}\n` });
    const verbose = await runCli(['ps', '-v'], { env });
    expect(verbose.code).toBe(0);
    expect(verbose.stderr).toContain(`procfile-agent: agent ${agent.url} (profile live)`);

    const list = await runCli(['profile', 'list'], { env });
    expect(list.stdout).toMatch(/^\s+NAME\s+URL\s+TOKEN\n\s+dead\s+http:\S+\s+yes\n\*\s+live\s+http:\S+\s+no\n$/);
    expect(list.stdout).not.toContain('s3cret');
    expect(JSON.parse((await runCli(['profile', 'list', '--json'], { env })).stdout)).toEqual([
      { name: 'dead', url: `http://127.0.0.1:${port}`, token: true, current: false },
      { name: 'live', url: agent.url, token: false, current: true },
    ]);

    expect((await runCli(['profile', 'remove', 'live'], { env })).code).toBe(0);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ profiles: { dead: { url: `http://127.0.0.1:${port}`, token: 's3cret' } } });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await runCli(['profile', 'use', 'gone'], { env })).toMatchObject({ code: 1, stderr: "procfile-agent: no profile 'gone' (see: procfile-agent profile list)\n" });
    expect((await runCli(['profile', 'add', 'bad', 'ftp://x'], { env })).code).toBe(1);
  });

  it('sends the bearer token (--token, PROCFILE_AGENT_TOKEN or the profile) on requests and consoles', async () => {
    const token = 'cli-token-0123456789abcdef';
    const secured = await startAgentProcess({ args: ['--token', token] });
    const env = { XDG_CONFIG_HOME: await tempConfigHome(), PROCFILE_AGENT_URL: secured.url };
    const refused = await runCli(['ps'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^procfile-agent: .* \(unauthorized\)\n$/);
    expect((await runCli(['ps', '--token', token], { env })).code).toBe(0);
    expect((await runCli(['ps'], { env: { ...env, PROCFILE_AGENT_TOKEN: token } })).code).toBe(0);
    expect((await runCli(['profile', 'add', 'sec', secured.url, '--token', token], { env })).code).toBe(0);
    const { PROCFILE_AGENT_URL: _unused, ...profileEnv } = env;
    const run = await runCli(['run', '--app', 'sec', '--type', 'ok', '--source', source], { env: profileEnv });
    expect(run).toMatchObject({ code: 0, stdout: 'hi\n' });
    await secured.stop();
  });

  it('-v logs each request with status and time; -vv adds bodies', async () => {
    const v = await cli(['ps', '-v']);
    expect(v.stderr).toMatch(new RegExp(`GET ${agent.url}/ → 200 \\(\\d+ ms\\)`));
    expect(v.stderr).toMatch(new RegExp(`GET ${agent.url}/list-processes → 200 \\(\\d+ ms\\)`));
    expect(v.stderr).not.toContain('  < ');
    const vv = await cli(['ps', '-vv']);
    expect(vv.stderr).toContain(`  < {"create":"${agent.url}/create-process"`);
  });

  it('follows links only: works with the agent under a path prefix', async () => {
    const proxy = await startPrefixProxy(agent.url);
    try {
      const env = { PROCFILE_AGENT_URL: proxy.root, PROCFILE_AGENT_TOKEN: 'tok' };
      const n = node();
      expect((await cli(['create', '--app', 'px', '--node', n, '--type', 'lines', '--source', source, '--wait'], { env })).code).toBe(0);
      expect((await cli(['ps'], { env })).stdout).toContain(`px.${n}`);
      expect((await cli(['status', `px.${n}`], { env })).code).toBe(0);
      await waitFor(async () => (await cli(['logs', `px.${n}`], { env })).stdout.includes('line-5'), { what: 'logs via the proxy' });
      expect((await cli(['delete', `px.${n}`], { env })).code).toBe(0);
      expect((await cli(['run', '--app', 'px', '--type', 'ok', '--source', source], { env })).code).toBe(0);
      expect(proxy.requests.length).toBeGreaterThan(10);
      for (const request of proxy.requests) expect(request, request.url).toMatchObject({ known: true, authorization: 'Bearer tok' });
    } finally {
      await proxy.close();
    }
  });

  it('serve keeps its own options; client options are per command', async () => {
    const serve = await runCli(['serve', '--help']);
    expect(serve.stdout).toContain('--port <port>');
    expect(serve.stdout).not.toContain('--agent');
    const ps = await runCli(['ps', '--help']);
    expect(ps.stdout).toContain('--agent <url>');
  });
});

describe('output helpers', () => {
  it('colours only on a terminal and never with NO_COLOR', () => {
    const tty = { isTTY: true } as NodeJS.WriteStream;
    const pipe = { isTTY: false } as NodeJS.WriteStream;
    expect(styleFor(tty, {}).green('running')).toBe('\u001b[32mrunning\u001b[39m');
    expect(styleFor(tty, { NO_COLOR: '1' }).green('running')).toBe('running');
    expect(styleFor(tty, { NO_COLOR: '' }).green('running')).not.toBe('running');
    expect(styleFor(pipe, {}).green('running')).toBe('running');
  });

  it('formats uptimes and aligns coloured table cells', () => {
    expect([0, 45_000, 723_000, 18_420_000, 273_600_000].map(formatDuration)).toEqual(['0s', '45s', '12m03s', '5h07m', '3d04h']);
    const style = styleFor({ isTTY: true } as NodeJS.WriteStream, {});
    const text = table(['A', 'B'], [[style.red('xx'), '1'], ['y', '22']], style).replace(/\u001b\[[0-9;]*m/g, '');
    expect(text).toBe('A   B\nxx  1\ny   22\n');
  });
});
