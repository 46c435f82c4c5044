/** The app every side-by-side scenario runs (one archive, cached by the agent), and a thin client of our API. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { sleep, until } from '../peers/proc.js';
import { addMarker, runDir } from '../peers/reaper.js';

export const LOG_LINES = Number(process.env.BENCH_LOG_LINES ?? 1_000_000);

/**
 * Command-line markers of the bench commands (see peers/reaper.ts): the idle, tree and handler commands run a
 * `sleep` of a duration nothing else uses; the generator and handler name files under the run's directory.
 */
export const IDLE = 'sleep 7700';
export const TREE_SLEEP = 'sleep 7771';
export const HANDLER_SLEEP = 'sleep 7772';
for (const marker of [IDLE, TREE_SLEEP, HANDLER_SLEEP]) addMarker(marker);

/** The Procfile types of the bench app. */
export interface Commands {
  /** Does nothing, without a shell: peers run it directly. */
  idle: string;
  /** Ends at once with status 1. */
  crash: string;
  /** Waits for the `go` file, then prints LOG_LINES numbered 100-byte lines. */
  gen: string;
  /** Runs until SIGTERM/SIGINT, then takes 500 ms, appends a line to `handled`, exits 0. */
  handler: string;
  /** Three processes, one of them in a session of its own (`setsid`): a kill -9 test of the whole tree. */
  tree: string;
  /** Prints 1,000 numbered lines and ends at once. */
  burst: string;
}

export interface BenchApp {
  /** The unpacked app, for the peers' `directory`/`cwd`. */
  dir: string;
  url: string;
  go: string;
  handled: string;
  commands: Commands;
  close(): void;
}

function benchCommands(go: string, handled: string): Commands {
  return {
    idle: IDLE,
    crash: 'exit 1',
    gen: `while [ ! -e ${go} ]; do sleep 0.01; done; seq -f %099.0f 1 ${LOG_LINES}`,
    // The handler kills its own `sleep` first: a background job of a non-interactive shell ignores SIGINT (PM2's
    // and nf's stop signal), so left alone it would outlive the shell, and PM2 waits for the whole tree.
    handler: `trap 'kill $! 2>/dev/null; sleep 0.5; echo x >> ${handled}; exit 0' TERM INT; while :; do ${HANDLER_SLEEP} & wait $!; done`,
    tree: `${TREE_SLEEP} & setsid ${TREE_SLEEP} & ${TREE_SLEEP}`,
    burst: 'seq -f %09.0f 1 1000',
  };
}

/** The last line the generator prints. */
export const lastGenLine = () => String(LOG_LINES).padStart(99, '0');

/** Writes the app, tars it once and serves the archive on loopback. */
export async function benchApp(): Promise<BenchApp> {
  const dir = runDir('app');
  const state = runDir('state');
  const go = path.join(state, 'go');
  const handled = path.join(state, 'handled');
  const commands = benchCommands(go, handled);
  const procfile = Object.entries(commands).map(([name, command]) => `${name}: ${command}\n`);
  writeFileSync(path.join(dir, 'Procfile'), procfile.join(''));
  const body = execFileSync('tar', ['-C', dir, '-czf', '-', '.'], { timeout: 30_000 });
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/gzip' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    dir,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/app.tar.gz`,
    go,
    handled,
    commands,
    close: () => server.close(),
  };
}

export interface Status {
  app: string;
  node: string;
  slug: string;
  state: string;
  details: string;
  delete: string;
  output: string;
  restarts: number;
}

/** Every request is bounded: a stuck agent fails the scenario, it does not hang the bench. */
const REQUEST_MS = 30_000;

async function request(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_MS) });
}

export class Api {
  constructor(readonly url: string) {}

  async create(app: string, node: string, processType: string, sourceUrl: string, restart = 'always'): Promise<Status> {
    const res = await request(`${this.url}/create-process`, {
      method: 'POST',
      body: JSON.stringify({ app, node, process_type: processType, source_url: sourceUrl, restart }),
    });
    if (res.status !== 201) throw new Error(`create ${app}.${node}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Status;
  }

  /** `count` processes of `app`, created at once. */
  createMany(app: string, count: number, processType: string, sourceUrl: string, restart?: string): Promise<Status[]> {
    return Promise.all(Array.from({ length: count }, (_, i) => this.create(app, `n${i}`, processType, sourceUrl, restart)));
  }

  async status(details: string): Promise<Status> {
    return (await (await request(details)).json()) as Status;
  }

  /** The scrollback, as text: the last `tail` lines. */
  async output(outputUrl: string, tail: number): Promise<string> {
    return (await request(`${outputUrl}?tail=${tail}`)).text();
  }

  async list(): Promise<Status[]> {
    return ((await (await request(`${this.url}/list-processes`)).json()) as { processes: Status[] }).processes;
  }

  async delete(status: Status): Promise<void> {
    await (await request(status.delete, { method: 'POST', body: '{}' })).arrayBuffer();
  }

  async deleteApp(app: string): Promise<void> {
    await Promise.all((await this.list()).filter((p) => p.app === app).map((p) => this.delete(p)));
  }

  /** Polls the list until `count` processes of `app` are in one of `states`. */
  async waitFor(app: string, count: number, states: string[], timeoutMs = 60_000): Promise<Status[]> {
    let found: Status[] = [];
    await until(
      async () => {
        found = (await this.list()).filter((p) => p.app === app && states.includes(p.state));
        return found.length >= count;
      },
      timeoutMs,
      () => `${found.length}/${count} of ${app} in ${states.join('/')}`,
    );
    return found;
  }

  async metric(name: string): Promise<number> {
    const text = await (await request(`${this.url}/metrics`)).text();
    return Number(new RegExp(`^${name}\\s+(\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  }
}

/** Warm the archive cache: one process, running, deleted. */
export async function warm(api: Api, app: BenchApp): Promise<void> {
  const s = await api.create('warm', 'w', 'idle', app.url);
  await api.waitFor('warm', 1, ['running']);
  await api.delete(s);
  await sleep(50);
}
