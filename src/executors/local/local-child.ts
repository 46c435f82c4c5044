import type { ChildProcess } from 'node:child_process';
import { OutputQueue } from '../output-queue.js';
import type { Child, ExitStatus } from '../types.js';

/** After the direct child exits, how long a grandchild may keep the output pipes open before we stop reading. */
const PIPE_LINGER_MS = 2000;

/** A spawned local process group, seen through the executor contract. */
export class LocalChild implements Child {
  readonly id: string;
  readonly output = new OutputQueue();
  readonly exited: Promise<ExitStatus>;
  private ended = false;

  constructor(
    private readonly proc: ChildProcess,
    onEnd: () => void,
  ) {
    this.id = String(proc.pid);
    proc.stdout!.on('data', (data: Buffer) => this.output.push({ stream: 'stdout', data }));
    proc.stderr!.on('data', (data: Buffer) => this.output.push({ stream: 'stderr', data }));
    // A child that closes or never reads stdin must not crash the agent with EPIPE.
    proc.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      let status: ExitStatus | undefined;
      const finish = (): void => {
        if (this.ended) return;
        this.ended = true;
        this.output.end();
        onEnd();
        resolve(status ?? { code: proc.exitCode, signal: proc.signalCode });
      };
      proc.once('exit', (code, signal) => {
        status = { code, signal };
        // Leftover grandchildren holding our pipes would delay 'close' forever: end them, then stop waiting.
        const linger = setTimeout(() => {
          this.signalGroup('SIGKILL');
          proc.stdout!.destroy();
          proc.stderr!.destroy();
          finish();
        }, PIPE_LINGER_MS);
        linger.unref();
        proc.once('close', () => {
          clearTimeout(linger);
          finish();
        });
      });
    });
  }

  write(data: Uint8Array): void {
    const stdin = this.proc.stdin;
    if (!this.ended && stdin && stdin.writable) stdin.write(data);
  }

  async stop(graceMs: number): Promise<void> {
    if (this.ended) return;
    this.signalGroup('SIGTERM');
    const escalate = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(escalate);
    }
  }

  kill(): void {
    this.signalGroup('SIGKILL');
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.proc.pid!, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }
}
