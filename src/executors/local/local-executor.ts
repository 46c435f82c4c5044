import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { AgentError, messageOf } from '../../errors.js';
import type { Child, ChildSpec, Executor } from '../types.js';
import { detectKillGuarantee, wrapperFor, type KillGuarantee } from './kill-guarantee.js';
import { LocalChild } from './local-child.js';

/**
 * PID 1 of the child's namespace. The kernel drops signals sent to a namespace init that has no handler, so
 * a shell with traps sits there and runs the Procfile command as an ordinary process that receives SIGTERM
 * normally. Its own stderr goes to /dev/null so it never prints "Terminated" into the console.
 */
const NAMESPACE_INIT = 'exec 3>&2 2>/dev/null; trap : TERM INT HUP QUIT USR1 USR2; /bin/sh -c "$1" 2>&3 3>&-; exit $?';

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
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (proc.pid === undefined) {
      const [err] = (await once(proc, 'error')) as [Error];
      throw new AgentError('spawn_failed', `could not start ${argv[0]}: ${messageOf(err)}`);
    }
    const child = new LocalChild(proc, () => this.live.delete(child));
    this.live.add(child);
    return child;
  }

  killAll(): void {
    for (const child of this.live) child.kill();
  }

  describe(): Record<string, unknown> {
    return { kill_guarantee: this.killGuarantee };
  }

  private argvFor(command: string): string[] {
    const wrapper = wrapperFor(this.killGuarantee);
    const inNamespace = this.killGuarantee === 'pidns' || this.killGuarantee === 'pidns-userns';
    return inNamespace
      ? [...wrapper, '/bin/sh', '-c', NAMESPACE_INIT, 'procfile-init', command]
      : [...wrapper, '/bin/sh', '-c', command];
  }
}
