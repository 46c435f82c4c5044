import { describe, expect, it } from 'vitest';
import { LineFramer, MAX_LINE_BYTES } from '../src/console/line-framer.js';
import { Scrollback } from '../src/console/scrollback.js';

function frame(chunks: Array<string | Buffer>, options: { flush?: boolean; max?: number } = {}): string[] {
  const lines: string[] = [];
  const framer = new LineFramer((line) => lines.push(line), options.max);
  for (const chunk of chunks) framer.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  if (options.flush) framer.flush();
  return lines;
}

describe('LineFramer', () => {
  it.each([
    ['one line', ['a\n'], ['a']],
    ['several lines in one chunk', ['a\nb\nc\n'], ['a', 'b', 'c']],
    ['a line split across chunks', ['he', 'll', 'o\nwor', 'ld\n'], ['hello', 'world']],
    ['CRLF endings', ['a\r\nb\r\n'], ['a', 'b']],
    ['CR split from its LF', ['a\r', '\nb\n'], ['a', 'b']],
    ['a lone CR inside a line is kept', ['a\rb\n'], ['a\rb']],
    ['empty lines', ['\n\n'], ['', '']],
    ['partial tail without flush', ['a\nb'], ['a']],
  ])('%s', (_name, chunks, expected) => {
    expect(frame(chunks)).toEqual(expected);
  });

  it('flush delivers the last line without a newline', () => {
    expect(frame(['a\nlast'], { flush: true })).toEqual(['a', 'last']);
    expect(frame(['a\n'], { flush: true })).toEqual(['a']);
  });

  it('splits a 200 KiB line into 64 KiB frames, losing nothing', () => {
    const line = 'x'.repeat(200 * 1024);
    const lines = frame([line.slice(0, 70_000), line.slice(70_000), '\nnext\n']);
    expect(lines.slice(0, -1).map((l) => l.length)).toEqual([MAX_LINE_BYTES, MAX_LINE_BYTES, MAX_LINE_BYTES, 200 * 1024 - 3 * MAX_LINE_BYTES]);
    expect(lines.slice(0, -1).join('')).toBe(line);
    expect(lines.at(-1)).toBe('next');
  });

  it('splits a long line that arrives in one chunk', () => {
    expect(frame(['abcdefgh\n'], { max: 3 })).toEqual(['abc', 'def', 'gh']);
  });

  it('keeps multi-byte characters whole when they straddle chunks', () => {
    const bytes = Buffer.from('é€\n');
    expect(frame([bytes.subarray(0, 1), bytes.subarray(1, 3), bytes.subarray(3)])).toEqual(['é€']);
  });
});

describe('Scrollback', () => {
  const line = (seq: number) => ({ seq, ts: 0, stream: 'stdout' as const, line: `l${seq}` });

  it('returns the last n lines oldest first and forgets beyond its capacity', () => {
    const ring = new Scrollback(3);
    for (let i = 1; i <= 5; i++) ring.push(line(i));
    expect(ring.tail(10).map((l) => l.seq)).toEqual([3, 4, 5]);
    expect(ring.tail(2).map((l) => l.seq)).toEqual([4, 5]);
    expect(ring.tail(0)).toEqual([]);
    expect(ring.size).toBe(3);
  });
});
