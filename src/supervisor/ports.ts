import net from 'node:net';
import { AgentError } from '../errors.js';

export interface PortRange {
  first: number;
  last: number;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Hands out `PORT` values from --port-range, skipping ports we gave out and ports someone else holds. */
export class PortAllocator {
  private readonly taken = new Set<number>();
  private cursor: number;

  constructor(private readonly range: PortRange) {
    this.cursor = range.first;
  }

  async allocate(): Promise<number> {
    const size = this.range.last - this.range.first + 1;
    for (let tried = 0; tried < size; tried += 1) {
      const port = this.cursor;
      this.cursor = port >= this.range.last ? this.range.first : port + 1;
      if (this.taken.has(port)) continue;
      this.taken.add(port);
      if (await bindable(port)) return port;
      this.taken.delete(port);
    }
    throw new AgentError('no_free_port', `no free port in ${this.range.first}-${this.range.last}`, 503);
  }

  release(port: number | null): void {
    if (port !== null) this.taken.delete(port);
  }
}
