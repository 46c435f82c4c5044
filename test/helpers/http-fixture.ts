import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Served {
  body: Buffer | string;
  type?: string;
  status?: number;
}

export interface FixtureServer {
  url: string;
  /** Adds or replaces what a path answers. */
  set(path: string, served: Served): string;
  requests: string[];
  close(): Promise<void>;
}

/** A real HTTP server on loopback that serves archives built by the test. */
export async function startFixtureServer(): Promise<FixtureServer> {
  const routes = new Map<string, Served>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const served = routes.get(req.url ?? '');
    if (!served) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(served.status ?? 200, { 'content-type': served.type ?? 'application/octet-stream' });
    res.end(served.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    set(path, served) {
      routes.set(path, served);
      return `${url}${path}`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
