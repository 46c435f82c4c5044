import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  bearerFromAuthorization,
  bearerFromProtocols,
  checkBindSafety,
  collectTokens,
  isLoopbackHost,
  tokensEqual,
  TokenAuth,
} from '../src/api/auth.js';
import { CLI, startAgentProcess, stopAllAgents, type AgentProcess } from './helpers/agent.js';
import { appArchive } from './helpers/app-archive.js';
import { makeTarGz, startArchiveServer, type ArchiveServer } from './helpers/archives.js';
import { rawRequest, rawUpgrade } from './helpers/corpus.js';
import { waitFor } from './helpers/wait.js';

// Spy on the comparison primitive, keeping its behaviour, to prove every token check goes through it.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const TOKEN = 'corpus-token-0123456789abcdef';
const ROTATED = 'next-token-fedcba9876543210';

describe('token comparison', () => {
  it('is true only for identical tokens', () => {
    expect(tokensEqual(TOKEN, TOKEN)).toBe(true);
    expect(tokensEqual(TOKEN, `${TOKEN.slice(0, -1)}X`)).toBe(false);
    expect(tokensEqual('', TOKEN)).toBe(false);
    expect(tokensEqual(TOKEN.toUpperCase(), TOKEN)).toBe(false);
  });

  it('compares in constant time over equal-length digests, whatever the lengths of the tokens', () => {
    const spy = vi.mocked(crypto.timingSafeEqual);
    for (const presented of ['x', TOKEN, TOKEN.repeat(100), '']) {
      spy.mockClear();
      // Different lengths must neither throw (timingSafeEqual does on unequal lengths) nor short-circuit.
      expect(tokensEqual(presented, TOKEN)).toBe(presented === TOKEN);
      expect(spy).toHaveBeenCalledTimes(1);
      const [a, b] = spy.mock.calls[0]! as [Buffer, Buffer];
      expect(a.length).toBe(32);
      expect(b.length).toBe(32);
    }
  });

  it('checks every configured token, without stopping at the first match', () => {
    const spy = vi.mocked(crypto.timingSafeEqual);
    const auth = new TokenAuth([TOKEN, ROTATED]);
    spy.mockClear();
    expect(auth.accepts(TOKEN)).toBe(true);
    expect(spy).toHaveBeenCalledTimes(2);
    expect(auth.accepts(ROTATED)).toBe(true);
    expect(auth.accepts('nope')).toBe(false);
  });
});

describe('credential parsing', () => {
  it('reads Authorization: Bearer, scheme case-insensitive', () => {
    expect(bearerFromAuthorization(`Bearer ${TOKEN}`)).toBe(TOKEN);
    expect(bearerFromAuthorization(`bearer ${TOKEN}`)).toBe(TOKEN);
    expect(bearerFromAuthorization(`Basic ${TOKEN}`)).toBeUndefined();
    expect(bearerFromAuthorization('Bearer')).toBeUndefined();
    expect(bearerFromAuthorization(`Bearer ${TOKEN} extra`)).toBeUndefined();
    expect(bearerFromAuthorization(undefined)).toBeUndefined();
  });

  it('reads the WebSocket subprotocol forms', () => {
    expect(bearerFromProtocols(`bearer, ${TOKEN}`)).toEqual({ token: TOKEN, select: 'bearer' });
    expect(bearerFromProtocols(`chat, bearer, ${TOKEN}`)).toEqual({ token: TOKEN, select: 'bearer' });
    expect(bearerFromProtocols(`bearer.${TOKEN}`)).toEqual({ token: TOKEN, select: `bearer.${TOKEN}` });
    expect(bearerFromProtocols('bearer')).toBeUndefined();
    expect(bearerFromProtocols('chat')).toBeUndefined();
    expect(bearerFromProtocols(undefined)).toBeUndefined();
  });

  it('collects tokens from --token, --token-file (several, comments) and PROCFILE_AGENT_TOKEN', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pa-tokens-'));
    const file = path.join(dir, 'tokens');
    await writeFile(file, `# current\n${TOKEN}\n\n${ROTATED}\r\n`);
    expect(collectTokens({ tokenFile: file })).toEqual([TOKEN, ROTATED]);
    expect(collectTokens({ token: 'flag-token-1234567', env: { PROCFILE_AGENT_TOKEN: 'env-token' } })).toEqual(['flag-token-1234567']);
    expect(collectTokens({ env: { PROCFILE_AGENT_TOKEN: 'env-token' } })).toEqual(['env-token']);
    expect(collectTokens({ env: {} })).toEqual([]);
    expect(() => collectTokens({ token: 'has space' })).toThrow(/printable ASCII/);
    expect(() => collectTokens({ token: '' })).toThrow(/empty/);
    expect(() => collectTokens({ tokenFile: path.join(dir, 'missing') })).toThrow(/cannot read/);
    await writeFile(file, '# nothing\n');
    expect(() => collectTokens({ tokenFile: file })).toThrow(/holds no token/);
  });
});

describe('bind safety', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.1.2.3', false],
    ['128.0.0.1', false],
    ['agent.example.com', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it('refuses an exposed host without a token unless insecure', () => {
    expect(() => checkBindSafety('0.0.0.0', new TokenAuth(), false)).toThrow(/refusing to listen on 0\.0\.0\.0 without a token/);
    expect(() => checkBindSafety('0.0.0.0', new TokenAuth(), true)).not.toThrow();
    expect(() => checkBindSafety('0.0.0.0', new TokenAuth([TOKEN]), false)).not.toThrow();
    expect(() => checkBindSafety('127.0.0.1', new TokenAuth(), false)).not.toThrow();
  });

  function runServe(args: string[], env: NodeJS.ProcessEnv = {}) {
    return new Promise<{ code: number | null; stderr: string; home: string }>((resolve, reject) => {
      mkdtemp(path.join(os.tmpdir(), 'pa-bind-')).then((home) => {
        const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', path.join(home, 'data'), ...args], {
          cwd: home,
          env: { ...process.env, PROCFILE_AGENT_TOKEN: '', ...env },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
        const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
        proc.once('exit', (code) => {
          clearTimeout(timer);
          resolve({ code, stderr, home });
        });
      }, reject);
    });
  }

  it('serve --host 0.0.0.0 without a token exits 2 with a clear message and touches nothing', async () => {
    const { code, stderr, home } = await runServe(['--host', '0.0.0.0']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without a token/);
    expect(stderr).toMatch(/--insecure/);
    expect(await readdir(home)).toEqual([]);
  });

  it('serve with an unusable token exits 2', async () => {
    expect((await runServe(['--token', 'two words'])).code).toBe(2);
    const missing = await runServe(['--token-file', '/nonexistent/token']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read --token-file/);
  });

  it('serve --host 0.0.0.0 --insecure starts, with a warning', async () => {
    const agent = await startAgentProcess({ args: ['--host', '0.0.0.0', '--insecure'], env: { PROCFILE_AGENT_TOKEN: '' } });
    expect(agent.logs.some((l) => l.level === 40 && /--insecure/.test(String(l.msg)))).toBe(true);
    expect(agent.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    expect((await agent.stop()).code).toBe(0);
  });

  it('serve --host 0.0.0.0 with a token starts', async () => {
    const agent = await startAgentProcess({ args: ['--host', '0.0.0.0'], env: { PROCFILE_AGENT_TOKEN: TOKEN } });
    expect(agent.logs.find((l) => l.msg === 'listening')?.auth).toBe(true);
    expect((await agent.stop()).code).toBe(0);
  });
});

describe('an agent with a token', () => {
  let agent: AgentProcess;
  let files: ArchiveServer;
  let good: string;
  let envApp: string;
  const auth = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    files = await startArchiveServer();
    good = files.serve('/hello.tar.gz', { body: await appArchive('hello', 'tar.gz') });
    envApp = files.serve('/env.tar.gz', { body: await makeTarGz([{ name: 'Procfile', content: 'web: env; sleep 600\n' }]) });
    // --inherit-env '*' would hand the children everything the agent has, except its token.
    agent = await startAgentProcess({ args: ['--inherit-env', '*'], env: { PROCFILE_AGENT_TOKEN: TOKEN } });
  });

  afterAll(async () => {
    await stopAllAgents();
    await files.close();
  });

  const createBody = (node: string) => JSON.stringify({ app: 'auth', node, process_type: 'web', source_url: good, restart: 'never' });
  const routes = (): Array<[string, string, string | undefined, number]> => [
    ['GET', '/', undefined, 200],
    ['GET', '/list-processes', undefined, 200],
    ['POST', '/create-process', createBody('authed'), 201],
    ['GET', '/process-status/nope.nope', undefined, 404],
    ['GET', '/process-output/nope.nope', undefined, 404],
    ['POST', '/delete-process/nope.nope', '{}', 404],
    ['GET', '/metrics', undefined, 200],
    ['GET', '/no-such-route', undefined, 404],
    ['GET', '/create-process', undefined, 405],
  ];

  it('answers 401 unauthorized with WWW-Authenticate on every route without a token, with a wrong one or another scheme', async () => {
    for (const [method, route, body] of routes()) {
      const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-0000000000' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }];
    for (const headers of attempts) {
        const answer = await rawRequest(agent.url, { method, path: route, headers, ...(body ? { body: Buffer.from(body.replace('authed', 'intruder')) } : {}) });
        expect(answer.status, `${method} ${route} ${JSON.stringify(headers)}`).toBe(401);
        expect(answer.json).toEqual({ error: expect.any(String), code: 'unauthorized' });
        expect(answer.headers['www-authenticate']).toMatch(/^Bearer realm="procfile-agent"/);
      }
    }
    const wrong = await rawRequest(agent.url, { method: 'GET', path: '/', headers: { authorization: 'Bearer wrong-token-0000000000' } });
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="procfile-agent", error="invalid_token"');
    // Nothing was created by the refused creates.
    const listed = await agent.api('/list-processes', { headers: auth });
    expect(listed.body.processes.filter((p: { node: string }) => p.node === 'intruder')).toEqual([]);
  });

  it('answers every route normally with the token', async () => {
    for (const [method, route, body, status] of routes()) {
      const answer = await rawRequest(agent.url, { method, path: route, headers: auth, ...(body ? { body: Buffer.from(body) } : {}) });
      expect(answer.status, `${method} ${route}`).toBe(status);
    }
    const doc = (await agent.api('/process-status/auth.authed', { headers: auth })).body;
    expect(doc.state).not.toBeUndefined();
    expect((await agent.api(doc.delete, { method: 'POST', body: '{}', headers: auth })).status).toBe(200);
  });

  it('accepts a token from the rotation list of --token-file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pa-tokenfile-'));
    await writeFile(path.join(dir, 'tokens'), `${TOKEN}\n${ROTATED}\n`, { mode: 0o600 });
    const rotating = await startAgentProcess({ args: ['--token-file', path.join(dir, 'tokens')], env: { PROCFILE_AGENT_TOKEN: '' } });
    expect((await rotating.api('/', { headers: { authorization: `Bearer ${ROTATED}` } })).status).toBe(200);
    expect((await rotating.api('/', { headers: auth })).status).toBe(200);
    expect((await rotating.api('/')).status).toBe(401);
    await rotating.stop();
  });

  it('guards the console WebSocket: 401 before the slug is even looked up, 101 with the header or the subprotocol forms', async () => {
    const created = await agent.api('/create-process', { method: 'POST', body: createBody('ws'), headers: auth });
    expect(created.status).toBe(201);
    const attach = `/attach-console/${created.body.slug}`;

    for (const options of [{}, { headers: { authorization: 'Bearer wrong-token-0000000000' } }, { protocols: ['bearer', 'wrong-token-0000000000'] }, { protocols: [`bearer.wrong`] }]) {
      const refused = await rawUpgrade(agent.url, attach, options);
      expect(refused.status, JSON.stringify(options)).toBe(401);
      expect(refused.json.code).toBe('unauthorized');
      expect(refused.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    // An unknown slug without a token is 401 too: the routes and slugs are not for strangers to map.
    expect((await rawUpgrade(agent.url, '/attach-console/nope.nope')).status).toBe(401);
    expect((await rawUpgrade(agent.url, '/attach-console/nope.nope', { headers: auth })).status).toBe(404);

    expect((await rawUpgrade(agent.url, attach, { headers: auth })).status).toBe(101);
    // Browsers: new WebSocket(url, ['bearer', token]); the server must select a protocol the browser offered.
    const pair = await rawUpgrade(agent.url, attach, { protocols: ['bearer', TOKEN] });
    expect(pair.status).toBe(101);
    expect(pair.protocol).toBe('bearer');
    const dotted = await rawUpgrade(agent.url, attach, { protocols: [`bearer.${TOKEN}`] });
    expect(dotted.status).toBe(101);
    expect(dotted.protocol).toBe(`bearer.${TOKEN}`);
    await agent.api(created.body.delete, { method: 'POST', body: '{}', headers: auth });
  });

  it('/healthz answers without a token but then says only {"status"}', async () => {
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-0000000000' }];
    for (const headers of attempts) {
      const open = await agent.api('/healthz', { headers });
      expect(open.status).toBe(200);
      expect(open.body).toEqual({ status: 'ok' });
    }
    const full = await agent.api('/healthz', { headers: auth });
    expect(full.status).toBe(200);
    expect(full.body).toMatchObject({ status: 'ok', version: expect.any(String), processes: expect.any(Number) });
  });

  it('logs refusals with the request id and never logs the token', async () => {
    await agent.api('/list-processes', { headers: { 'X-Request-Id': 'auth-req-1', authorization: 'Bearer wrong-token-0000000000' } });
    const lines = await waitFor(() => {
      const ours = agent.logs.filter((l) => l.requestId === 'auth-req-1');
      return ours.length >= 2 ? ours : undefined;
    }, { what: 'log lines of the refused request' });
    expect(lines.map((l) => l.msg)).toEqual(['unauthorized request', 'request']);
    expect(lines[1]!.status).toBe(401);
    expect(JSON.stringify(agent.logs)).not.toContain(TOKEN);
  });

  it('children never see the agent token, even with --inherit-env *', async () => {
    const created = await agent.api('/create-process', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ app: 'auth', node: 'env', process_type: 'web', source_url: envApp }),
    });
    expect(created.status).toBe(201);
    const output = await waitFor(async () => {
      const { body } = await agent.api(created.body.output, { headers: auth });
      return typeof body === 'string' && body.includes('PATH=') && body;
    }, { what: 'env output' });
    expect(output).not.toContain('PROCFILE_AGENT_TOKEN');
    expect(output).not.toContain(TOKEN);
    await agent.api(created.body.delete, { method: 'POST', body: '{}', headers: auth });
  });
});
