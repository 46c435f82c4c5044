import type { ConsoleFormat, ConsoleLine } from './types.js';

export function jsonFrame(line: ConsoleLine): string {
  return JSON.stringify({ ts: new Date(line.ts).toISOString(), stream: line.stream, line: line.line });
}

/** Text consoles carry only the child's own lines; agent events are JSON-mode only (DESIGN §5). */
export function frameFor(line: ConsoleLine, format: ConsoleFormat): string | undefined {
  if (format === 'json') return jsonFrame(line);
  return line.stream === 'agent' ? undefined : line.line;
}

export function dropNotice(dropped: number, format: ConsoleFormat): string {
  const text = `${dropped} lines dropped`;
  return format === 'json'
    ? JSON.stringify({ ts: new Date().toISOString(), stream: 'agent', line: text })
    : `[agent] ${text}`;
}
