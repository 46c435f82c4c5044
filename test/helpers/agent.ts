import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');

export interface AgentProcess {
  url: string;
  proc: ChildProcess;
  /** A fresh directory that holds the data dir and nothing else: anything else in it was written where it must not be. */
  home: string;
  dataDir: string;
  logs: Array<Record<string, unknown>>;
  stdout: () => string;
  /** Sends a signal and resolves with the exit code (or signal). */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  api<T = any>(pathOrUrl: string, init?: RequestInit & { json?: unknown }): Promise<{ status: number; headers: Headers; body: T }>;
}

const running = new Set<AgentProcess>();

/** Each agent gets its own slice of ports so concurrent test files never hand out the same PORT. */
function randomPortRange(): string {
  const first = 20_000 + Math.floor(Math.random() * 400) * 100;
  return `${first}-${first + 99}`;
}

/** Spawns the real agent binary on an ephemeral loopback port and waits until it listens. */
export async function startAgentProcess(options: { args?: string[]; env?: NodeJS.ProcessEnv; home?: string } = {}): Promise<AgentProcess> {
  const home = options.home ?? (await mkdtemp(path.join(os.tmpdir(), 'pa-agent-')));
  const dataDir = path.join(home, 'data');
  const args = [CLI, 'serve', '--port', '0', '--data-dir', dataDir, '--port-range', randomPortRange(), ...(options.args ?? [])];
  const proc = spawn(process.execPath, args, { cwd: home, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let stdout = '';
  let stderrTail = '';
  proc.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => {
    stderrTail += chunk.toString();
    const lines = stderrTail.split('\n');
    stderrTail = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const listening = await waitFor(() => logs.find((entry) => entry.msg === 'listening') ?? (proc.exitCode !== null ? Promise.reject(new Error(`agent exited: ${JSON.stringify(logs)}`)) : undefined), {
    what: 'agent to listen',
  });
  const url = String(listening.url);
  const agent: AgentProcess = {
    url,
    proc,
    home,
    dataDir,
    logs,
    stdout: () => stdout,
    async stop(signal = 'SIGINT') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const result = await exited;
      running.delete(agent);
      return result;
    },
    async api(pathOrUrl, init = {}) {
      const target = pathOrUrl.startsWith('http') ? pathOrUrl : `${url}${pathOrUrl}`;
      const { json, ...rest } = init;
      const response = await fetch(target, json === undefined ? rest : { method: 'POST', ...rest, body: JSON.stringify(json) });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, headers: response.headers, body: body as any };
    },
  };
  running.add(agent);
  return agent;
}

/** For afterEach/afterAll: no agent outlives its test file. */
export async function stopAllAgents(): Promise<void> {
  await Promise.all([...running].map((agent) => agent.stop('SIGKILL')));
}
