export type StreamName = 'stdout' | 'stderr' | 'agent';

export interface ConsoleLine {
  /** Monotonic per process: lets an attacher join between scrollback and live lines without a gap or a repeat. */
  seq: number;
  ts: number;
  stream: StreamName;
  line: string;
}

export type ConsoleFormat = 'text' | 'json';
