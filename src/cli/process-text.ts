import os from 'node:os';
import { InvalidArgumentError, Option } from 'commander';
import type { StatusDocument } from '../client/index.js';
import { RESTART_POLICIES } from '../supervisor/create-request.js';

/** `-e KEY=VALUE`, repeatable (and variadic): collects into one object. */
export function collectEnv(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`'${value}' is not KEY=VALUE`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

export function restartOption(): Option {
  return new Option('--restart <policy>', 'restart policy').choices([...RESTART_POLICIES]);
}

/**
 * The exit code a shell would report for how the child ended: its code, or 128+N for a death by signal N (on Linux
 * the agent already reports signal deaths that way, see docs/api.md).
 */
export function exitCodeOf(doc: StatusDocument): number {
  if (typeof doc.exit_code === 'number') return doc.exit_code;
  const signal = doc.exit_signal ? os.constants.signals[doc.exit_signal as NodeJS.Signals] : undefined;
  return signal ? 128 + signal : 1;
}

export function describeExit(doc: StatusDocument): string {
  if (doc.exit_signal) return `exited on signal ${doc.exit_signal}`;
  return `exited with code ${doc.exit_code ?? '?'}`;
}

/** `myapp.web.0: unknown process type: the Procfile has no … (unknown_process_type)` */
export function describeFailure(doc: StatusDocument): string {
  const reason = doc.error ? `: ${doc.error}` : '';
  const code = doc.error_code ? ` (${doc.error_code})` : '';
  return `${doc.slug}: ${doc.state}${reason}${code}`;
}
