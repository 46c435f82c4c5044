import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { AgentError, messageOf } from '../../errors.js';
import { OutputQueue } from '../output-queue.js';
import type { Child, ExitStatus } from '../types.js';
import type { FlyClient, FlyMachine, FlyMachineEvent } from './client.js';

export interface FlyChildOptions {
  /** `timeout` of each wait call, in seconds (Fly allows up to 60; 408 means call again). */
  waitTimeoutS: number;
  /** Log polling: the first interval, doubled while idle up to the max, back to the first on data. */
  logPollMinMs: number;
  logPollMaxMs: number;
}

/** Consecutive failed calls (API gone) after which a wait or the log polling gives up. */
const GIVE_UP = 20;

function statusOf(err: unknown): number | undefined {
  return err instanceof AgentError ? (err.cause as { status?: number } | undefined)?.status : undefined;
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** The last `exit` event of a machine: its exit code (or, when Fly gives none, its signal). */
export function exitStatusFromEvents(events: FlyMachineEvent[] | undefined): ExitStatus {
  const exits = (events ?? []).filter((e) => e.type === 'exit' && e.request?.exit_event).sort((a, b) => b.timestamp - a.timestamp);
  const exit = exits[0]?.request?.exit_event;
  if (!exit) return { code: null, signal: null };
  if (typeof exit.exit_code === 'number' && exit.exit_code >= 0) return { code: exit.exit_code, signal: null };
  if (typeof exit.signal === 'number' && exit.signal > 0) return { code: null, signal: SIGNAL_NAMES.get(exit.signal) ?? `SIG${exit.signal}` };
  return { code: null, signal: null };
}

/**
 * One Fly machine seen through the executor contract. Output comes from polling the logs API, the exit code from the
 * machine's `exit` event after a `wait` for `stopped`; the machine is destroyed before `exited` resolves.
 */
export class FlyChild implements Child {
  readonly id: string;
  readonly output = new OutputQueue();
  readonly exited: Promise<ExitStatus>;
  private stopped = false;
  private ended = false;
  private stopRequested = false;
  private destroyed = false;
  private wakePoll: (() => void) | undefined;

  constructor(
    private readonly client: FlyClient,
    private readonly machine: FlyMachine,
    private readonly log: Logger,
    private readonly options: FlyChildOptions,
    onEnd: () => void,
  ) {
    this.id = machine.id;
    const logsDone = this.pollLogs();
    this.exited = this.watch().then(async (status) => {
      this.stopped = true;
      this.wakePoll?.();
      await logsDone;
      await this.destroy();
      this.ended = true;
      onEnd();
      return status;
    });
  }

  /** Fly machines have no stdin: console input is dropped (docs/executors.md#fly-machines). */
  write(): void {}

  /** `stop {signal: SIGTERM, timeout: grace}`: Fly SIGKILLs after the timeout; a destroy backs it up. */
  async stop(graceMs: number): Promise<void> {
    if (this.ended) return this.exited.then(() => undefined);
    if (!this.stopRequested) {
      this.stopRequested = true;
      try {
        await this.client.stopMachine(this.id, 'SIGTERM', `${Math.max(1, Math.ceil(graceMs / 1000))}s`);
      } catch (err) {
        this.log.debug({ err: messageOf(err) }, 'machine stop');
      }
    }
    const escalate = setTimeout(() => this.kill(), graceMs + 5000);
    try {
      await this.exited;
    } finally {
      clearTimeout(escalate);
    }
  }

  /** Destroys the machine now (`force=true` kills it). */
  kill(): void {
    if (!this.ended) void this.destroy();
  }

  private async watch(): Promise<ExitStatus> {
    let failures = 0;
    for (;;) {
      try {
        if (await this.client.waitMachine(this.id, 'stopped', this.options.waitTimeoutS, this.machine.instance_id)) break;
        failures = 0;
      } catch (err) {
        if (statusOf(err) === 404) return { code: null, signal: null };
        if (++failures >= GIVE_UP) {
          this.log.warn({ err: messageOf(err) }, 'machine state unreadable: counting it as ended');
          return { code: null, signal: null };
        }
        await sleep(Math.min(100 * 2 ** failures, 5000));
      }
    }
    try {
      return exitStatusFromEvents((await this.client.getMachine(this.id)).events);
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, 'could not read the machine exit code');
      return { code: null, signal: null };
    }
  }

  /** Polls the logs API: each message is one stdout line; after the stop, until a poll brings nothing new. */
  private async pollLogs(): Promise<void> {
    let token: string | undefined;
    let interval = this.options.logPollMinMs;
    let failures = 0;
    for (;;) {
      const stoppedBefore = this.stopped;
      let got = 0;
      try {
        const page = await this.client.getLogs(this.id, token);
        failures = 0;
        for (const entry of page.data ?? []) {
          this.output.push({ stream: 'stdout', data: Buffer.from(`${entry.attributes.message}\n`) });
        }
        got = page.data?.length ?? 0;
        if (page.meta?.next_token) token = page.meta.next_token;
      } catch (err) {
        this.log.debug({ err: messageOf(err) }, 'log poll');
        if (++failures >= GIVE_UP && stoppedBefore) break;
      }
      if (got > 0) interval = this.options.logPollMinMs;
      else if (stoppedBefore && failures === 0) break;
      else interval = Math.min(interval * 2, this.options.logPollMaxMs);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval);
        this.wakePoll = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakePoll = undefined;
    }
    this.output.end();
  }

  private async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      await this.client.destroyMachine(this.id);
    } catch (err) {
      if (statusOf(err) !== 404) this.log.warn({ machine: this.id, err: messageOf(err) }, 'could not destroy machine');
    }
  }
}
