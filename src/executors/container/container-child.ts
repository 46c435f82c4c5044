import type { Duplex, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { OutputQueue } from '../output-queue.js';
import type { Child, ExitStatus, OutputChunk } from '../types.js';

/** How often the container's state is read once its output has ended (the engine's `wait` can lag ~0.5 s). */
const POLL_FIRST_MS = 20;
const POLL_MAX_MS = 1000;
/** Consecutive failed state reads (engine gone) after which the child counts as ended with an unknown status. */
const POLL_GIVE_UP = 20;

function statusCodeOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode;
}

/**
 * One container seen through the executor contract. Output comes from an attach made before the start, exit status
 * from the engine, and the container is removed before `exited` resolves: when it resolves nothing is left.
 */
export class ContainerChild implements Child {
  readonly id: string;
  readonly output = new OutputQueue();
  readonly exited: Promise<ExitStatus>;
  private ended = false;
  private outputEnded = false;

  constructor(
    private readonly container: Docker.Container,
    readonly name: string,
    private readonly stream: Duplex,
    private readonly log: Logger,
    onEnd: () => void,
  ) {
    this.id = container.id.slice(0, 12);
    const sink = (kind: OutputChunk['stream']) => ({ write: (data: Buffer) => this.output.push({ stream: kind, data }) }) as unknown as Writable;
    container.modem.demuxStream(stream, sink('stdout'), sink('stderr'));
    // A closed stdin or a dropped connection must never crash the agent.
    stream.on('error', (err) => this.log.debug({ err: err.message }, 'attach stream error'));
    const outputDone = new Promise<void>((resolve) => {
      const done = (): void => {
        if (this.outputEnded) return;
        this.outputEnded = true;
        this.output.end();
        resolve();
      };
      stream.once('end', done);
      stream.once('close', done);
    });
    this.exited = this.watch(outputDone).then(async (status) => {
      this.ended = true;
      if (!this.outputEnded) this.stream.destroy();
      await this.remove();
      onEnd();
      return status;
    });
  }

  write(data: Uint8Array): void {
    if (!this.ended && this.stream.writable) this.stream.write(data);
  }

  /** SIGTERM (through the container's init, to the command), then SIGKILL after graceMs; resolves once removed. */
  async stop(graceMs: number): Promise<void> {
    if (this.ended) return this.exited.then(() => undefined);
    await this.signal('SIGTERM');
    const escalate = setTimeout(() => void this.signal('SIGKILL'), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(escalate);
    }
  }

  kill(): void {
    void this.signal('SIGKILL');
  }

  private async signal(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    if (this.ended) return;
    try {
      await this.container.kill({ signal });
    } catch (err) {
      // 304/409 (or Podman's 500 "not running"): it has ended already. Anything else: the exit watch will tell.
      this.log.debug({ signal, err: (err as Error).message }, 'container kill');
    }
  }

  /**
   * Exit status: the engine's `wait` (condition not-running, so an exit before the call is not missed), raced with
   * a fast read of the container's state once its output has ended — Podman's wait answers ~0.5 s late.
   */
  private async watch(outputDone: Promise<void>): Promise<ExitStatus> {
    const abort = new AbortController();
    const waited = (this.container.wait({ condition: 'not-running', abortSignal: abort.signal }) as Promise<{ StatusCode: number }>).then(
      (result) => ({ code: result.StatusCode, signal: null }) as ExitStatus,
      () => new Promise<ExitStatus>(() => undefined), // the poll decides
    );
    const polled = outputDone.then(() => this.pollExit(abort.signal));
    const status = await Promise.race([waited, polled]);
    abort.abort();
    await outputDone.catch(() => undefined);
    return status;
  }

  private async pollExit(signal: AbortSignal): Promise<ExitStatus> {
    let interval = POLL_FIRST_MS;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const info = await this.container.inspect();
        failures = 0;
        if (!info.State.Running && info.State.Status !== 'created') return { code: info.State.ExitCode, signal: null };
      } catch (err) {
        if (statusCodeOf(err) === 404) return { code: null, signal: null };
        if (++failures >= POLL_GIVE_UP) {
          this.log.warn({ err: (err as Error).message }, 'container state unreadable: counting it as ended');
          return { code: null, signal: null };
        }
      }
      await sleep(interval);
      interval = Math.min(interval * 2, POLL_MAX_MS);
    }
    return new Promise<ExitStatus>(() => undefined);
  }

  private async remove(): Promise<void> {
    try {
      await this.container.remove({ force: true, v: true });
    } catch (err) {
      if (statusCodeOf(err) !== 404) this.log.warn({ container: this.name, err: (err as Error).message }, 'could not remove container');
    }
  }
}
