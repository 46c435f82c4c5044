import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { AgentError, messageOf } from '../../errors.js';
import type { Child, ChildSpec, Executor } from '../types.js';
import { detectKillGuarantee, wrapperFor, type KillGuarantee } from './kill-guarantee.js';
import { LocalChild } from './local-child.js';

/**
 * PID 1 of the child's namespace runs the Procfile command itself (`eval`, so it is still parsed by /bin/sh).
 * - The kernel drops signals sent to a namespace init that has no handler, so the init traps TERM/INT/HUP and
 *   exits with the status of the command that was running: a command without a handler dies of SIGTERM at once,
 *   one with a handler gets to finish it, and nothing else in the namespace outlives the init.
 * - No intermediate `sh -c` process: dash does not exec the last command, and an intermediate shell would die of
 *   SIGTERM at once and take the namespace (and the app's SIGTERM handler) down with it.
 * - `$0` is `sh` and there are no positional parameters, as with `sh -c '<command>'`.
 * - Once its traps are set it writes one byte to fd 3: a SIGTERM sent before that would be dropped by the kernel
 *   and a stop right after start would wait for the whole grace period, so start() resolves only then.
 */
const NAMESPACE_INIT =
  "__procfile_command=$1; shift; trap 'exit $?' TERM INT HUP; printf . >&3; exec 3>&-; " +
  'eval "unset __procfile_command; $__procfile_command"; exit $?';

/**
 * A leading `exec` would make the command the namespace init, which the kernel shields from SIGTERM unless it
 * installs a handler; the init already waits for it, so the word is dropped. (`exec 2>&1 …` redirections stay.)
 */
export function withoutLeadingExec(command: string): string {
  return command.replace(/^\s*exec\s+(?=[A-Za-z_./])/, '');
}

/** Resolves when the namespace init has set its traps (its byte on fd 3), or has died trying. */
function initReady(pipe: Readable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      pipe.destroy();
      resolve();
    };
    pipe.once('data', done);
    pipe.once('close', done);
    pipe.once('error', done);
  });
}

export interface LocalExecutorOptions {
  killGuarantee?: KillGuarantee;
}

/** Runs each child as a local process group under the strongest kill guarantee the machine offers. */
export class LocalExecutor implements Executor {
  readonly name = 'local';
  readonly killGuarantee: KillGuarantee;
  private readonly live = new Set<LocalChild>();

  constructor(options: LocalExecutorOptions = {}) {
    this.killGuarantee = options.killGuarantee ?? detectKillGuarantee();
    // Last resort on a normal exit path that skipped the graceful stop.
    process.once('exit', () => this.killAll());
  }

  async start(spec: ChildSpec): Promise<Child> {
    const argv = this.argvFor(spec.command);
    const proc = spawn(argv[0]!, argv.slice(1), {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: this.inNamespace ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'],
    });
    if (proc.pid === undefined) {
      const [err] = (await once(proc, 'error')) as [Error];
      throw new AgentError('spawn_failed', `could not start ${argv[0]}: ${messageOf(err)}`);
    }
    const child = new LocalChild(proc, () => this.live.delete(child));
    this.live.add(child);
    if (this.inNamespace) await initReady(proc.stdio[3] as Readable);
    return child;
  }

  private get inNamespace(): boolean {
    return this.killGuarantee === 'pidns' || this.killGuarantee === 'pidns-userns';
  }

  killAll(): void {
    for (const child of this.live) child.kill();
  }

  describe(): Record<string, unknown> {
    return { kill_guarantee: this.killGuarantee };
  }

  private argvFor(command: string): string[] {
    const wrapper = wrapperFor(this.killGuarantee);
    return this.inNamespace
      ? [...wrapper, '/bin/sh', '-c', NAMESPACE_INIT, 'sh', withoutLeadingExec(command)]
      : [...wrapper, '/bin/sh', '-c', command];
  }
}
