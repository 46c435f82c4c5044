import { startArchiveServer } from './archives.js';

export interface Served {
  body: Buffer | string;
  type?: string;
  status?: number;
}

export interface FixtureServer {
  url: string;
  /** Adds or replaces what a path answers; returns its URL. */
  set(path: string, served: Served): string;
  close(): Promise<void>;
}

/** The archive server of archives.ts, with the short `set(path, {body})` form the end-to-end tests use. */
export async function startFixtureServer(): Promise<FixtureServer> {
  const server = await startArchiveServer();
  return {
    url: server.origin,
    set: (path, served) => server.serve(path, { ...served, body: Buffer.from(served.body) }),
    close: () => server.close(),
  };
}
