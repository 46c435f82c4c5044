/** Serves a one-Procfile app archive over loopback for benchmarks that go through the real agent. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface ArchiveServer {
  url: string;
  close(): void;
}

export async function serveProcfile(procfile: string): Promise<ArchiveServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pa-bench-app-'));
  writeFileSync(path.join(dir, 'Procfile'), procfile);
  const body = execFileSync('tar', ['-C', dir, '-czf', '-', '.']);
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/gzip' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/app.tar.gz`, close: () => server.close() };
}
