/**
 * `npm run bench [-- --only NAME] [--scenarios a,b] [--no-peers]`: runs benchmark groups, prints a table, writes
 * bench/results/latest.json. NAME is a group (`console`, `side-by-side`: all eight scenarios) or one side-by-side
 * scenario (spawn, memory, capture, crash, stop, kill, burst, unpack). `--scenarios` picks several side-by-side
 * scenarios; `--no-peers` measures ours and the limits only.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { consoleBenchmarks } from './console.js';
import { printRows, ROOT, type Row } from './lib.js';
import { SCENARIOS, sideBySideBenchmarks } from './scenarios/side-by-side.js';

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
}

const withPeers = !process.argv.includes('--no-peers');
const scenarios = flag('--scenarios')?.split(',') ?? Object.keys(SCENARIOS);
const unknown = scenarios.filter((name) => !(name in SCENARIOS));
if (unknown.length) {
  console.error(`unknown scenario ${unknown.join(', ')}; scenarios: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}

const groups: Record<string, () => Promise<Row[]>> = {
  console: consoleBenchmarks,
  'side-by-side': () => sideBySideBenchmarks(scenarios, withPeers),
  ...Object.fromEntries(Object.keys(SCENARIOS).map((name) => [name, () => sideBySideBenchmarks([name], withPeers)])),
};
/** Without --only: every group once (the single scenarios are part of side-by-side). */
const everything = ['console', 'side-by-side'];

const only = flag('--only');
if (only !== undefined && !(only in groups)) {
  console.error(`unknown group ${only}; groups: console, side-by-side; scenarios: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}

const rows: Row[] = [];
for (const name of only === undefined ? everything : [only]) rows.push(...(await groups[name]!()));
printRows(rows);
const out = path.join(ROOT, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(
  path.join(out, 'latest.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, rows }, null, 2),
);
process.exit(rows.every((row) => row.met) ? 0 : 1);
