import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { AgentError } from '../../errors.js';
import type { Child, ChildSpec, Executor } from '../types.js';
import { FlyClient, type FlyMachine, type FlyMachineConfig } from './client.js';
import { bootScript } from './boot.js';
import { FlyChild, type FlyChildOptions } from './fly-child.js';
import { guestFor } from './guest.js';

/** Metadata every machine of this executor carries (docs/executors.md#fly-machines). */
export const META_SLUG = 'procfile_agent_slug';
export const META_APP = 'procfile_agent_app';
export const META_PROCESS_TYPE = 'procfile_agent_process_type';
export const META_AGENT = 'procfile_agent_agent';

export interface FlyExecutorOptions {
  apiUrl?: string;
  logsUrl?: string;
  /** FLY_API_TOKEN. */
  token?: string;
  /** `--fly-app`: the Fly app every machine is created in. */
  app?: string;
  /** `--fly-image`: for requests without `image`. */
  image?: string;
  /** Identifies this agent (the data dir): set in each machine's metadata. */
  instance: string;
  /** 429 backoff base (tests shorten it). */
  retryBaseMs?: number;
  logger?: Logger;
  child?: Partial<FlyChildOptions>;
}

/** A machine name: the slug, lower-cased to Fly's characters, plus a random suffix. */
export function machineNameFor(slug: string): string {
  return `${slug.toLowerCase().replace(/[^a-z0-9-]/g, '-')}-${randomBytes(4).toString('hex')}`;
}

/** Runs each child as a Fly machine through the Machines API, see docs/executors.md#fly-machines. */
export class FlyExecutor implements Executor {
  readonly name = 'fly';
  readonly client: FlyClient;
  readonly image: string | undefined;
  readonly instance: string;
  private readonly log: Logger;
  private readonly childOptions: FlyChildOptions;
  private readonly live = new Set<FlyChild>();

  constructor(options: FlyExecutorOptions) {
    if (!options.token) {
      throw new AgentError('invalid_config', 'the fly executor needs a Fly API token: set FLY_API_TOKEN (e.g. FLY_API_TOKEN=$(fly tokens create deploy -a APP))', 400);
    }
    if (!options.app) throw new AgentError('invalid_config', 'the fly executor needs --fly-app <name>: the Fly app its machines are created in', 400);
    for (const [flag, url] of [['--fly-api-url', options.apiUrl], ['--fly-logs-url', options.logsUrl]] as const) {
      if (url !== undefined && !/^https?:\/\/[^/]+/.test(url)) throw new AgentError('invalid_config', `${flag} must be an http(s) URL, not '${url}'`, 400);
    }
    this.client = new FlyClient({ apiUrl: options.apiUrl, logsUrl: options.logsUrl, token: options.token, app: options.app, retryBaseMs: options.retryBaseMs });
    this.image = options.image;
    this.instance = options.instance;
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ executor: this.name });
    this.childOptions = { waitTimeoutS: 60, logPollMinMs: 64, logPollMaxMs: 4000, ...options.child };
  }

  validate(spec: Pick<ChildSpec, 'image' | 'resources'>): void {
    guestFor(spec.resources);
    this.imageFor(spec);
  }

  private imageFor(spec: Pick<ChildSpec, 'image'>): string {
    const image = spec.image ?? this.image;
    if (!image) throw new AgentError('fly_image_missing', 'no image for the Fly machine: give "image" in the request or start the agent with --fly-image', 400);
    return image;
  }

  async start(spec: ChildSpec): Promise<Child> {
    const guest = guestFor(spec.resources);
    const image = this.imageFor(spec);
    const config: FlyMachineConfig = {
      image,
      // The machine fetches and unpacks the source itself, then execs the Procfile command (boot.ts).
      init: { entrypoint: ['/bin/sh', '-c'], cmd: [bootScript(spec.sourceUrl, spec.command)] },
      env: { ...spec.env },
      guest,
      // The agent supervises: Fly must not restart the machine on its own.
      restart: { policy: 'no' },
      metadata: { [META_SLUG]: spec.slug, [META_APP]: spec.app, [META_PROCESS_TYPE]: spec.processType, [META_AGENT]: this.instance },
      ...(spec.volume ? { mounts: [{ volume: spec.volume, path: '/data' }] } : {}),
    };
    if (spec.port !== null) {
      config.services = [
        {
          protocol: 'tcp',
          internal_port: spec.port,
          ports: [
            { port: 80, handlers: ['http'] },
            { port: 443, handlers: ['tls', 'http'] },
          ],
        },
      ];
    }
    const name = machineNameFor(spec.slug);
    const machine: FlyMachine = await this.client.createMachine({ name, config, skip_launch: true, ...(spec.region ? { region: spec.region } : {}) });
    try {
      await this.client.startMachine(machine.id);
    } catch (err) {
      await this.client.destroyMachine(machine.id).catch(() => undefined);
      throw err;
    }
    const log = this.log.child({ slug: spec.slug, machine: machine.id });
    const child = new FlyChild(this.client, machine, log, this.childOptions, () => this.live.delete(child));
    this.live.add(child);
    return child;
  }

  /**
   * Destroys machines a previous run of this agent left (after its SIGKILL): they carry its data dir in their
   * metadata. Machines cost money while they exist, so they go at start-up, before anything is restored.
   * Never throws: an unreachable API is a warning.
   */
  async removeLeftovers(): Promise<string[]> {
    try {
      const mine = (await this.client.listMachines()).filter((m) => m.config?.metadata?.[META_AGENT] === this.instance);
      await Promise.all(
        mine.map((m) => this.client.destroyMachine(m.id).catch((err) => this.log.warn({ machine: m.id, err: (err as Error).message }, 'could not destroy leftover machine'))),
      );
      if (mine.length > 0) this.log.warn({ machines: mine.map((m) => m.id) }, 'destroyed machines left behind by a previous run of this agent');
      return mine.map((m) => m.id);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not look for leftover machines');
      return [];
    }
  }

  /** Second SIGINT: destroy every machine now. */
  killAll(): void {
    for (const child of this.live) child.kill();
  }

  describe(): Record<string, unknown> {
    return { api_url: this.client.apiUrl, logs_url: this.client.logsUrl, app: this.client.app, image: this.image ?? null, running: this.live.size };
  }
}
