/** The executor contract (DESIGN §6): the supervisor knows only these types, never how a child runs. */

export interface ResourceRequest {
  cpus?: number;
  memory_mb?: number;
}

export interface PreparedApp {
  slug: string;
  tree: string;
  sha256: string;
}

export interface ChildSpec {
  slug: string;
  app: string;
  processType: string;
  /** Run through `/bin/sh -c`. */
  command: string;
  /** The complete environment: the executor adds nothing of its own. */
  env: Record<string, string>;
  /** The unpacked application directory (the one holding the Procfile). */
  cwd: string;
  port: number | null;
  sourceUrl: string;
  image?: string;
  resources?: ResourceRequest;
  region?: string;
  /** Fly: an existing volume to mount at /data. */
  volume?: string;
}

export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: Uint8Array;
}

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

export interface Child {
  /** pid, container id or machine id. */
  readonly id: string;
  /** Ends once the child's output is fully read. */
  readonly output: AsyncIterable<OutputChunk>;
  readonly exited: Promise<ExitStatus>;
  write(data: Uint8Array): void;
  /** SIGTERM, wait up to graceMs, then SIGKILL; resolves once the child has ended. */
  stop(graceMs: number): Promise<void>;
}

export interface Executor {
  readonly name: string;
  prepare?(app: PreparedApp): Promise<void>;
  start(spec: ChildSpec): Promise<Child>;
  /** Refuses, at create time, a request this executor can never run (e.g. a guest size Fly does not sell). */
  validate?(spec: Pick<ChildSpec, 'image' | 'resources' | 'region' | 'volume'>): void;
  /** Forcefully ends every child now (second SIGINT); optional. */
  killAll?(): void;
  /** Facts for /healthz. */
  describe?(): Record<string, unknown>;
}
