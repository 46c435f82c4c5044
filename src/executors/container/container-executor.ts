import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type Docker from 'dockerode';
import pino, { type Logger } from 'pino';
import { AgentError, messageOf } from '../../errors.js';
import type { Child, ChildSpec, Executor } from '../types.js';
import { ContainerChild } from './container-child.js';
import { attachRaw, describeAddress, dockerFor, engineError, type EngineAddress } from './engine.js';

import { DEFAULT_CONTAINER_IMAGE } from './defaults.js';
export { DEFAULT_CONTAINER_IMAGE };

/** Labels every container of this executor carries (docs/executors.md#labels). */
export const LABEL_SLUG = 'procfile-agent.slug';
export const LABEL_APP = 'procfile-agent.app';
export const LABEL_PROCESS_TYPE = 'procfile-agent.process-type';
export const LABEL_AGENT = 'procfile-agent.agent';

export interface ContainerExecutorOptions {
  address: EngineAddress;
  /** Image for requests without `image`. */
  image?: string;
  /** Identifies this agent among several on one engine (the data dir): its containers are its own to remove. */
  instance: string;
  /** Host address PORT is published on (default 127.0.0.1). */
  publishHost?: string;
  /** The agent's --stop-timeout: set as the container's StopTimeout, for a `docker stop` by hand. */
  stopTimeoutMs?: number;
  logger?: Logger;
}

export interface EngineFacts {
  reachable: boolean;
  name: string | null;
  version: string | null;
  api_version: string | null;
  error: string | null;
  checked_at: string | null;
}

/** A container name: the slug (already `[A-Za-z0-9][A-Za-z0-9_.-]*`) plus a random suffix, since names are unique per engine. */
export function containerNameFor(slug: string): string {
  return `${slug}-${randomBytes(4).toString('hex')}`;
}

/** Runs each child as a container through the Docker Engine API (Docker or Podman), see docs/executors.md. */
export class ContainerExecutor implements Executor {
  readonly name = 'container';
  readonly address: EngineAddress;
  readonly image: string;
  readonly instance: string;
  readonly publishHost: string;
  readonly stopTimeoutMs: number;
  private readonly docker: Docker;
  private readonly log: Logger;
  private readonly live = new Set<ContainerChild>();
  private engine: EngineFacts = { reachable: false, name: null, version: null, api_version: null, error: null, checked_at: null };

  constructor(options: ContainerExecutorOptions) {
    this.address = options.address;
    this.image = options.image ?? DEFAULT_CONTAINER_IMAGE;
    this.instance = options.instance;
    this.publishHost = options.publishHost ?? '127.0.0.1';
    this.stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    if (isIP(this.publishHost) === 0) {
      throw new AgentError('invalid_config', `the container publish host must be an IP address, not '${this.publishHost}'`, 400);
    }
    this.docker = dockerFor(this.address);
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ executor: this.name });
  }

  /** Asks the engine for its version; the answer is what `describe()` shows. Never throws. */
  async probe(): Promise<EngineFacts> {
    const checked_at = new Date().toISOString();
    try {
      const version = await this.docker.version();
      const component = version.Components?.find((c) => /engine/i.test(c.Name));
      this.engine = {
        reachable: true,
        name: component?.Name ?? 'Docker Engine',
        version: version.Version ?? null,
        api_version: version.ApiVersion ?? null,
        error: null,
        checked_at,
      };
    } catch (err) {
      const error = engineError(err, { address: this.address, action: 'engine version' });
      this.engine = { reachable: false, name: null, version: null, api_version: null, error: error.message, checked_at };
    }
    return this.engine;
  }

  /**
   * Start-up: learns the engine version and removes the containers a previous run of this agent left behind (after a
   * SIGKILL). Adopting them would need the process list to survive restarts; until then they are garbage.
   * Never throws: an unreachable engine is a warning, and each start reports it again.
   */
  async init(): Promise<void> {
    const facts = await this.probe();
    if (!facts.reachable) {
      this.log.warn({ engine: describeAddress(this.address), err: facts.error }, 'container engine unreachable: container processes will fail to start until it answers');
      return;
    }
    this.log.info({ engine: describeAddress(this.address), name: facts.name, version: facts.version }, 'container engine');
    const removed = await this.removeLeftovers();
    if (removed.length > 0) this.log.warn({ containers: removed }, 'removed containers left behind by a previous run of this agent');
  }

  /** Removes every container labelled with this agent's instance; returns their names. */
  async removeLeftovers(): Promise<string[]> {
    try {
      const leftovers = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_AGENT}=${this.instance}`] } });
      const names = await Promise.all(
        leftovers.map(async (info) => {
          const name = info.Names?.[0]?.replace(/^\//, '') ?? info.Id;
          const container = this.docker.getContainer(info.Id);
          // Podman's forced removal first tries SIGTERM and the container's StopTimeout: no grace for garbage.
          if (info.State === 'running') await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
          try {
            await container.remove({ force: true, v: true });
          } catch (err) {
            this.log.warn({ container: name, err: messageOf(err) }, 'could not remove leftover container');
          }
          return name;
        }),
      );
      return names;
    } catch (err) {
      this.log.warn({ err: engineError(err, { address: this.address, action: 'list containers' }).message }, 'could not look for leftover containers');
      return [];
    }
  }

  async start(spec: ChildSpec): Promise<Child> {
    const image = spec.image ?? this.image;
    const name = containerNameFor(spec.slug);
    const context = { address: this.address, image };
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(this.createOptions(spec, image, name));
    } catch (err) {
      throw this.noted(engineError(err, { ...context, action: `create container ${name}` }));
    }
    // The engine answers again after failing: refresh what describe() shows.
    if (!this.engine.reachable) void this.probe();
    try {
      // Attached before the start, so not even the first line of a child that exits at once is lost.
      const stream = await attachRaw(this.address, container.id);
      try {
        await container.start();
      } catch (err) {
        stream.destroy();
        throw err;
      }
      const log = this.log.child({ slug: spec.slug, container: name });
      const child = new ContainerChild(container, name, stream, log, () => this.live.delete(child));
      this.live.add(child);
      return child;
    } catch (err) {
      await container.remove({ force: true, v: true }).catch(() => undefined);
      throw this.noted(engineError(err, { ...context, action: `start container ${name}` }));
    }
  }

  /** An unreachable engine shows in describe() (/healthz) as soon as a start finds out. */
  private noted(error: AgentError): AgentError {
    if (error.code === 'engine_unreachable') {
      this.engine = { ...this.engine, reachable: false, error: error.message, checked_at: new Date().toISOString() };
    }
    return error;
  }

  /** Second SIGINT: SIGKILL every container now (each is still removed once it has ended). */
  killAll(): void {
    for (const child of this.live) child.kill();
  }

  describe(): Record<string, unknown> {
    return {
      engine_address: describeAddress(this.address),
      image: this.image,
      publish_host: this.publishHost,
      running: this.live.size,
      engine: { ...this.engine },
    };
  }

  private createOptions(spec: ChildSpec, image: string, name: string): Docker.ContainerCreateOptions {
    const port = spec.port === null ? undefined : `${spec.port}/tcp`;
    const hostConfig: Docker.HostConfig = {
      // A mount, not a `Binds` string: a ':' in the data dir's path cannot break it.
      Mounts: [{ Type: 'bind', Source: spec.cwd, Target: '/app', ReadOnly: true }],
      Tmpfs: { '/tmp': 'rw,nosuid,nodev' },
      // An init as PID 1 forwards SIGTERM to the command, which then dies at once unless it handles it (a shell
      // as PID 1 would ignore it), and reaps zombies.
      Init: true,
    };
    if (port) hostConfig.PortBindings = { [port]: [{ HostIp: this.publishHost, HostPort: String(spec.port) }] };
    if (spec.resources?.cpus !== undefined) hostConfig.NanoCpus = Math.round(spec.resources.cpus * 1e9);
    if (spec.resources?.memory_mb !== undefined) hostConfig.Memory = spec.resources.memory_mb * 1024 * 1024;
    return {
      name,
      Image: image,
      // The Procfile command runs through /bin/sh -c whatever the image's own entrypoint is.
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: [spec.command],
      Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
      WorkingDir: '/app',
      Labels: {
        [LABEL_SLUG]: spec.slug,
        [LABEL_APP]: spec.app,
        [LABEL_PROCESS_TYPE]: spec.processType,
        [LABEL_AGENT]: this.instance,
      },
      StopSignal: 'SIGTERM',
      StopTimeout: Math.max(1, Math.ceil(this.stopTimeoutMs / 1000)),
      OpenStdin: true,
      StdinOnce: false,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      ...(port ? { ExposedPorts: { [port]: {} } } : {}),
      HostConfig: hostConfig,
    };
  }
}
