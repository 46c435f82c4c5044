/** `npm run bench [-- --only NAME]`: runs the benchmark groups, prints a table, writes bench/results/latest.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { consoleBenchmarks } from './console.js';
import { printRows, ROOT, type Row } from './lib.js';

const groups: Record<string, () => Promise<Row[]>> = {
  console: consoleBenchmarks,
};

const onlyAt = process.argv.indexOf('--only');
const only = onlyAt === -1 ? undefined : process.argv[onlyAt + 1];
const selected = Object.entries(groups).filter(([name]) => !only || name === only);
if (selected.length === 0) {
  console.error(`unknown group ${only}; groups: ${Object.keys(groups).join(', ')}`);
  process.exit(2);
}

const rows: Row[] = [];
for (const [, run] of selected) rows.push(...(await run()));
printRows(rows);
const out = path.join(ROOT, 'bench/results');
mkdirSync(out, { recursive: true });
writeFileSync(
  path.join(out, 'latest.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, rows }, null, 2),
);
process.exit(rows.every((row) => row.met) ? 0 : 1);
