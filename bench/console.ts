/**
 * Console pipeline benchmarks (issue: console): capture into the ring vs a bare split, delivery to one WebSocket
 * attacher, and fan-out to 100 attachers with and without one that never reads.
 */
import WebSocket from 'ws';
import { ConsoleHub } from '../src/console/index.js';
import { LocalExecutor } from '../src/executors/local/index.js';
import { serveProcfile } from './archive-server.js';
import { bareSplit, benchChildSpec, median, rssMiB, startBenchAgent, timeIt, type Row } from './lib.js';

const LINES = 1_000_000;
/** `seq -f %099.0f` prints 99 digits + newline: 100-byte numbered lines, from C, faster than we can read them. */
const generator = (n: number) => `seq -f '%099.0f' 1 ${n}`;

/** Ours: the local executor (with its kill guarantee wrapper) feeding a ConsoleHub, exactly as the agent does. */
async function agentCapture(executor: LocalExecutor): Promise<number> {
  const hub = new ConsoleHub();
  const child = await executor.start(benchChildSpec('capture', 'gen', generator(LINES)));
  const pump = (async () => {
    for await (const chunk of child.output) hub.write(chunk.stream, chunk.data);
  })();
  await Promise.all([pump, child.exited]);
  hub.endOfOutput();
  return hub.linesTotal;
}

async function capture(runs: number): Promise<Row> {
  const executor = new LocalExecutor();
  const ours: number[] = [];
  const limit: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Interleaved so drift in machine load hits both sides alike.
    limit.push(await timeIt(async () => assertLines(await bareSplit(generator(LINES)), LINES)));
    ours.push(await timeIt(async () => assertLines(await agentCapture(executor), LINES)));
  }
  const oursMs = median(ours);
  const limitMs = median(limit);
  return {
    scenario: 'capture 1M×100 B into the ring',
    metric: 'lines/s',
    ours: LINES / (oursMs / 1000),
    reference: LINES / (limitMs / 1000),
    referenceName: 'bare node split',
    unit: 'lines/s',
    goal: '≥ 0.8× limit',
    met: limitMs / oursMs >= 0.8,
  };
}

function assertLines(got: number, want: number): void {
  if (got !== want) throw new Error(`expected ${want} lines, got ${got}`);
}

interface Delivery {
  received: number;
  dropped: number;
  inOrder: boolean;
  ms: number;
}

/** Attaches `readers` consoles (plus `stalled` that never read) before the child starts; counts what arrives. */
async function deliver(lines: number, readers: number, stalled: number): Promise<Delivery & { rss: number }> {
  // The child waits for a line on stdin, so every console is attached before the first line exists.
  const app = await serveProcfile(`gen: read go; ${generator(lines)}; sleep 600\n`);
  const agent = await startBenchAgent(['--console-buffer', process.env.BENCH_CONSOLE_BUFFER ?? '8MiB']);
  try {
    const created = (await (
      await fetch(`${agent.url}/create-process`, {
        method: 'POST',
        body: JSON.stringify({ app: 'bench', node: 'n1', process_type: 'gen', source_url: app.url, restart: 'never' }),
      })
    ).json()) as { attach: string; details: string };
    let first = 0;
    let last = 0;
    let peakRss = 0;
    const results: Delivery[] = [];
    const sockets: WebSocket[] = [];
    const done: Array<Promise<void>> = [];
    for (let i = 0; i < readers + stalled; i++) {
      const ws = new WebSocket(`${created.attach}?tail=0`, { skipUTF8Validation: true });
      sockets.push(ws);
      await new Promise((resolve) => ws.once('open', resolve));
      if (i >= readers) {
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        continue;
      }
      const result: Delivery = { received: 0, dropped: 0, inOrder: true, ms: 0 };
      results.push(result);
      let expected = 1;
      done.push(
        new Promise<void>((resolve) => {
          ws.on('message', (data: Buffer) => {
            if (data[0] === 0x5b /* '[' */) {
              result.dropped += Number(/(\d+) lines dropped/.exec(data.toString())?.[1] ?? 0);
            } else {
              if (first === 0) first = performance.now();
              const value = digits(data);
              if (value !== expected) result.inOrder = false;
              expected = value + 1;
              result.received += 1;
            }
            if (result.received + result.dropped >= lines) {
              last = Math.max(last, performance.now());
              resolve();
            }
          });
        }),
      );
    }
    await waitForRunning(created.details);
    sockets[0]!.send('go');
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(agent.proc.pid!))), 50);
    await Promise.race([Promise.all(done), new Promise((resolve) => setTimeout(resolve, 120_000))]);
    clearInterval(sampler);
    for (const ws of sockets) ws.terminate();
    const received = results.reduce((sum, r) => sum + r.received, 0);
    const dropped = results.reduce((sum, r) => sum + r.dropped, 0);
    return { received, dropped, inOrder: results.every((r) => r.inOrder), ms: last - first, rss: peakRss };
  } finally {
    await agent.stop();
    app.close();
  }
}

/** The number a `seq -f %099g` line holds, without allocating a string per frame. */
function digits(data: Buffer): number {
  let value = 0;
  for (let i = 0; i < data.length; i++) value = value * 10 + (data[i]! - 48);
  return value;
}

async function waitForRunning(details: string): Promise<void> {
  for (;;) {
    const doc = (await (await fetch(details)).json()) as { state: string };
    if (doc.state === 'running') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function oneAttacher(): Promise<Row> {
  const result = await deliver(LINES, 1, 0);
  const rate = result.received / (result.ms / 1000);
  console.log(`  one attacher: ${result.received} received, ${result.dropped} dropped, in order: ${result.inOrder}, ${result.ms.toFixed(0)} ms`);
  return {
    scenario: '1M lines to one WS attacher',
    metric: 'lines/s',
    ours: rate,
    reference: 1_000_000,
    referenceName: 'goal',
    unit: 'lines/s',
    goal: '≥ 1M lines/s, all in order',
    met: rate >= 1_000_000 && result.dropped === 0 && result.inOrder,
  };
}

async function fanOut(): Promise<Row[]> {
  const lines = 100_000;
  const healthy = await deliver(lines, 100, 0);
  const withStalled = await deliver(lines, 99, 1);
  const rate = (d: Delivery) => d.received / (d.ms / 1000);
  console.log(`  100 attachers: ${healthy.received} received, ${healthy.dropped} dropped, peak agent RSS ${healthy.rss.toFixed(1)} MiB`);
  console.log(`  99 + 1 stalled: ${withStalled.received} received, ${withStalled.dropped} dropped, peak agent RSS ${withStalled.rss.toFixed(1)} MiB`);
  return [
    {
      scenario: '100 attachers × 100k lines',
      metric: 'lost lines (healthy)',
      ours: healthy.dropped + withStalled.dropped,
      reference: 0,
      referenceName: 'goal',
      unit: 'lines',
      goal: '0 lost',
      met: healthy.dropped + withStalled.dropped === 0,
    },
    {
      scenario: '99 + 1 never-reading attacher',
      metric: 'throughput of the rest',
      ours: rate(withStalled),
      reference: rate(healthy),
      referenceName: 'run without it',
      unit: 'lines/s',
      goal: '≥ 0.9×, RSS bounded',
      met: rate(withStalled) >= 0.9 * rate(healthy),
    },
  ];
}

export async function consoleBenchmarks(): Promise<Row[]> {
  const rows: Row[] = [];
  console.log('console: capture (5 runs each, interleaved)…');
  rows.push(await capture(5));
  console.log('console: one attacher…');
  rows.push(await oneAttacher());
  console.log('console: fan-out…');
  rows.push(...(await fanOut()));
  return rows;
}
