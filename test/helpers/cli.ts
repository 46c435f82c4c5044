import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI } from './agent.js';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the CLI has exited. */
  done: Promise<CliResult>;
}

/** A fresh XDG_CONFIG_HOME so that no test reads or writes the real ~/.config. */
export async function tempConfigHome(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'pa-cli-config-'));
}

/** The environment of a CLI run: ours minus anything that would pick an agent, plus `env`. */
export function cliEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base = { ...process.env };
  delete base.PROCFILE_AGENT_URL;
  delete base.PROCFILE_AGENT_TOKEN;
  return { ...base, NO_COLOR: '1', ...env };
}

/** Starts `node dist/cli/main.js …` as a real process. */
export function spawnCli(args: string[], options: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore' } = {}): CliProcess {
  const proc = spawn(process.execPath, [CLI, ...args], { env: cliEnv(options.env), stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliResult>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { proc, stdout: () => stdout, stderr: () => stderr, done };
}

/** Runs the CLI to completion (killed after `timeoutMs`, which then fails the test through a null code). */
export async function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const cli = spawnCli(args, { env: options.env, stdin: options.input === undefined ? 'ignore' : 'pipe' });
  if (options.input !== undefined) cli.proc.stdin!.end(options.input);
  const timer = setTimeout(() => cli.proc.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  try {
    return await cli.done;
  } finally {
    clearTimeout(timer);
  }
}

/** A loopback port nobody listens on (bound, then released). */
export { deadPort } from './net.js';

export interface ProxiedRequest {
  method: string;
  /** The full URL the client asked for (ws:// for console upgrades). */
  url: string;
  authorization: string | undefined;
  /** True when this URL (query aside) is the root or appeared in a document the proxy served before. */
  known: boolean;
}

export interface PrefixProxy {
  /** The root URL to give a client: http://127.0.0.1:P/prefix/ */
  root: string;
  requests: ProxiedRequest[];
  links: Set<string>;
  close(): Promise<void>;
}

/**
 * Serves the agent under a path prefix by rewriting the link URLs of JSON bodies. A client that builds any URL
 * itself (beyond the root) asks for a path outside the prefix and gets a 404; every request is recorded with
 * whether its URL came from a document.
 */
export async function startPrefixProxy(agentUrl: string, prefix = '/prefix'): Promise<PrefixProxy> {
  const agent = new URL(agentUrl);
  const requests: ProxiedRequest[] = [];
  const links = new Set<string>();
  const tunnels = new Set<{ destroy(): void }>();
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const httpBase = `http://${host}${prefix}`;
  const wsBase = `ws://${host}${prefix}`;
  const root = `${httpBase}/`;

  const record = (method: string, url: string, authorization: string | undefined): void => {
    const bare = url.split('?')[0]!;
    requests.push({ method, url, authorization, known: url === root || links.has(bare) });
  };
  const rewrite = (text: string): string =>
    text.replaceAll(`http://${agent.host}/`, `${httpBase}/`).replaceAll(`ws://${agent.host}/`, `${wsBase}/`);
  const collect = (value: unknown): void => {
    if (typeof value === 'string' && (value.startsWith(httpBase) || value.startsWith(wsBase))) links.add(value);
    else if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };

  server.on('request', (req, res) => {
    record(req.method ?? 'GET', `http://${host}${req.url}`, req.headers.authorization);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (!req.url?.startsWith(`${prefix}/`)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'outside the prefix', code: 'not_found' }));
        return;
      }
      const upstream = http.request(
        `${agentUrl}${req.url.slice(prefix.length)}`,
        { method: req.method, headers: { 'content-type': 'application/json', accept: 'application/json' } },
        (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => body.push(chunk));
          answer.on('end', () => {
            const text = rewrite(Buffer.concat(body).toString());
            try {
              collect(JSON.parse(text));
            } catch {
              // not JSON
            }
            const headers: Record<string, string> = { 'content-type': String(answer.headers['content-type'] ?? 'application/json') };
            if (answer.headers.location) headers.location = rewrite(answer.headers.location);
            res.writeHead(answer.statusCode ?? 502, headers).end(text);
          });
        },
      );
      upstream.on('error', () => res.writeHead(502).end());
      upstream.end(Buffer.concat(chunks));
    });
  });

  server.on('upgrade', (req, socket, head) => {
    record('GET', `ws://${host}${req.url}`, req.headers.authorization);
    if (!req.url?.startsWith(`${prefix}/`)) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const upstream = net.connect(Number(agent.port), agent.hostname, () => {
      const lines = [`GET ${req.url!.slice(prefix.length)} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    tunnels.add(socket).add(upstream);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });

  return {
    root,
    requests,
    links,
    close: () =>
      new Promise<void>((resolve) => {
        for (const tunnel of tunnels) tunnel.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
