/** What the side-by-side scenarios ask of a peer supervisor, and the deadline every such request runs under. */
import { deadline } from './proc.js';

export interface Program {
  name: string;
  /** The Procfile command. */
  command: string;
  count: number;
  /** Start it again when it ends (supervisord autorestart, PM2 autorestart). */
  restart: boolean;
  cwd: string;
  /** What one line of its output looks like when it arrives whole (for peers that print output, not file it). */
  line?: RegExp;
}

/** Output a peer prints on its own stdout (foreman), counted as it comes. */
export interface PrintedLines {
  /** Lines printed for the programs' instances (foreman's `time name.N | ` prefix removed). */
  lines: number;
  /** Of those, lines matching the program's `line`: not split, not merged, not mangled. */
  intact: number;
  /** Characters of text in all those lines: a line cut in two still counts in full, a lost one does not. */
  chars: number;
  /** Resolves when the peer's stdout has closed (it exited). */
  closed: Promise<void>;
}

export interface Peer {
  readonly name: string;
  /** Untimed: write the configuration, start the daemon with nothing running. */
  prepare(programs: Program[]): Promise<void>;
  /** Timed: ask for every program to start. */
  startAll(): Promise<void>;
  /** How many instances the peer reports running. */
  running(): Promise<number>;
  /** Stop everything gracefully; resolves when the peer reports all stopped. */
  stopAll(): Promise<void>;
  /** The supervisor's own pid (the one to measure, or to kill -9). */
  pid(): number;
  /** Where instance `index` of program `name` writes its stdout, when the peer writes a file. */
  logFile(name: string, index: number): string | undefined;
  /** The peer's printed output since startAll, when it prints instead of writing files. */
  printed?(): PrintedLines;
  /** Restarts since startAll, where the peer tells. */
  restarts(): Promise<number | undefined>;
  /** Strings in the command lines of the processes this peer started (its own directory). */
  markers(): string[];
  /** Tear down: SIGKILL the daemon and everything below it, remove its files. Never graceful, never slow. */
  shutdown(): Promise<void>;
}

/** Characters that make a command need `/bin/sh -c`. */
const SHELL_SYNTAX = /[^\w@%+=:,./\- ]/;
/** Words that are only shell builtins: a command starting with one needs a shell too (`exit 1`). */
const BUILTINS = new Set(['exit', 'cd', 'export', 'set', 'unset', 'trap', 'wait', 'eval', 'exec', '.', ':', 'umask', 'ulimit']);

/**
 * A command without shell syntax (like `sleep 7700`) as an argv, the way a supervisord or PM2 user writes it;
 * undefined when it needs a shell (then, and only then, the harness puts `/bin/sh -c` around it).
 */
export function plainArgv(command: string): string[] | undefined {
  const argv = command.trim().split(/ +/);
  return SHELL_SYNTAX.test(command) || BUILTINS.has(argv[0]!) ? undefined : argv;
}

/** The argv a peer runs for `command`: itself when it is plain, else `/bin/sh -c command`. */
export function argvFor(command: string): string[] {
  return plainArgv(command) ?? ['/bin/sh', '-c', command];
}

/** Deadlines, in ms, for each peer operation. */
export const PEER_DEADLINES = {
  prepare: 30_000,
  startAll: 60_000,
  running: 10_000,
  stopAll: 120_000,
  restarts: 10_000,
  shutdown: 20_000,
};

/** `peer` with every asynchronous operation bounded by PEER_DEADLINES: a stuck peer fails, it never hangs. */
export function bounded(peer: Peer): Peer {
  const within = <T>(op: keyof typeof PEER_DEADLINES, run: () => Promise<T>) =>
    deadline(run(), PEER_DEADLINES[op], `${peer.name} ${op}`);
  return {
    name: peer.name,
    prepare: (programs) => within('prepare', () => peer.prepare(programs)),
    startAll: () => within('startAll', () => peer.startAll()),
    running: () => within('running', () => peer.running()),
    stopAll: () => within('stopAll', () => peer.stopAll()),
    restarts: () => within('restarts', () => peer.restarts()),
    shutdown: () => within('shutdown', () => peer.shutdown()),
    pid: () => peer.pid(),
    logFile: (name, index) => peer.logFile(name, index),
    markers: () => peer.markers(),
    ...(peer.printed ? { printed: () => peer.printed!() } : {}),
  };
}
