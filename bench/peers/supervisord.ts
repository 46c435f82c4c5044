/**
 * supervisord, driven as its users drive it: a generated supervisord.conf with one [program] per Procfile type
 * (`numprocs` instances), and XML-RPC over its unix socket (what supervisorctl speaks, without paying a Python
 * start-up per call).
 *
 * Configuration, and why (everything else is supervisord's default):
 * - `startsecs=0`: the issue's choice; a process counts as RUNNING as soon as it is spawned, as ours does.
 * - `autorestart=true` for programs that restart (always, like our default `restart`), `false` otherwise.
 * - `autostart=false`: the daemon starts with nothing running, so that `startAllProcesses` alone is timed.
 * - `command=sleep 7700`, not `/bin/sh -c …`, when the command has no shell syntax: what a user writes, and no
 *   shell of ours is counted against supervisord; commands with shell syntax get `/bin/sh -c`.
 * - one log file per instance, `redirect_stderr=true`, `stdout_logfile_maxbytes=0` (no rotation: the default
 *   50 MB would rotate the 100 MB of the log-capture scenario away).
 * - default `stopsignal` (TERM), `stopwaitsecs` (10), `stopasgroup`/`killasgroup` (false), `loglevel` (info).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { argvFor, type Peer, type Program } from './peer.js';
import { killTree, until } from './proc.js';
import { runDir } from './reaper.js';

function xmlValue(v: unknown): string {
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  return `<value><string>${String(v)}</string></value>`;
}

/** A supervisord.conf value: `%` doubled (supervisord expands `%(name)s`), each argument quoted for its shlex. */
function confCommand(command: string): string {
  const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/[\\"]/g, '\\$&')}"`);
  return argvFor(command)
    .map(quote)
    .join(' ')
    .replace(/%/g, '%%');
}

function programSection(p: Program, dir: string): string {
  return [
    `[program:${p.name}]`,
    `command=${confCommand(p.command)}`,
    `process_name=%(program_name)s_%(process_num)d`,
    `numprocs=${p.count}`,
    `directory=${p.cwd}`,
    `autostart=false`,
    `autorestart=${p.restart}`,
    `startsecs=0`,
    `redirect_stderr=true`,
    `stdout_logfile=${dir}/${p.name}_%(process_num)d.log`,
    `stdout_logfile_maxbytes=0`,
  ].join('\n');
}

export class Supervisord implements Peer {
  readonly name = 'supervisord';
  private readonly dir = runDir('supervisord');
  private proc: ChildProcess | undefined;
  private instances = 0;

  constructor(private readonly bin: string) {}

  private rpc(method: string, params: unknown[] = []): Promise<string> {
    const body = `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params
      .map((p) => `<param>${xmlValue(p)}</param>`)
      .join('')}</params></methodCall>`;
    return new Promise((resolve, reject) => {
      const req = http.request(
        { socketPath: path.join(this.dir, 's.sock'), path: '/RPC2', method: 'POST', headers: { 'content-type': 'text/xml' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => (text.includes('<fault>') ? reject(new Error(`${method}: ${text}`)) : resolve(text)));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error(`${method}: no answer`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async prepare(programs: Program[]): Promise<void> {
    const d = this.dir;
    const conf = [
      `[unix_http_server]\nfile=${d}/s.sock`,
      `[supervisord]\nlogfile=${d}/supervisord.log\npidfile=${d}/s.pid\nchildlogdir=${d}\nnodaemon=true`,
      `[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface`,
      `[supervisorctl]\nserverurl=unix://${d}/s.sock`,
      ...programs.map((p) => programSection(p, d)),
    ].join('\n\n');
    writeFileSync(path.join(d, 'supervisord.conf'), conf + '\n');
    this.instances = programs.reduce((n, p) => n + p.count, 0);
    this.proc = spawn(this.bin, ['-n', '-c', path.join(d, 'supervisord.conf')], { stdio: 'ignore' });
    const listening = () =>
      this.rpc('supervisor.getState')
        .then((s) => s.includes('RUNNING'))
        .catch(() => false);
    await until(listening, 25_000, () => 'supervisord to answer on its socket', 50);
  }

  async startAll(): Promise<void> {
    await this.rpc('supervisor.startAllProcesses', [false]);
  }

  async running(): Promise<number> {
    const info = await this.rpc('supervisor.getAllProcessInfo');
    return info.match(/<name>statename<\/name>\s*<value><string>RUNNING<\/string>/g)?.length ?? 0;
  }

  async stopAll(): Promise<void> {
    await this.rpc('supervisor.stopAllProcesses', [true]);
  }

  /** supervisord logs `spawned: 'name' with pid N` (loglevel info) for every start. */
  async restarts(): Promise<number> {
    const log = readFileSync(path.join(this.dir, 'supervisord.log'), 'utf8');
    return (log.match(/ spawned: '/g)?.length ?? 0) - this.instances;
  }

  pid(): number {
    return this.proc!.pid!;
  }

  logFile(name: string, index: number): string {
    return path.join(this.dir, `${name}_${index}.log`);
  }

  markers(): string[] {
    return [this.dir];
  }

  async shutdown(): Promise<void> {
    if (this.proc?.pid) killTree(this.proc.pid);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
