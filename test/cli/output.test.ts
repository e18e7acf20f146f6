/** What the CLI prints for people: names others chose without control or bidi characters a terminal would obey, and times as spans and "ago". */
import { describe, expect, it } from 'vitest';
import { ago, formatDuration } from '../../src/cli/duration.js';
import { table } from '../../src/cli/output.js';

describe('table', () => {
  it('shows control and bidi characters in cells as escapes, and aligns by what is shown', () => {
    const out = table(['ID', 'NAME'], [
      ['w-1', 'evil\u202egnp.exe'],
      ['w-2', 'clear\x1b[2Jscreen'],
      ['w-3', 'plain'],
    ]);
    expect(out).toBe(['ID   NAME', 'w-1  evil\\u{202e}gnp.exe', 'w-2  clear\\u{1b}[2Jscreen', 'w-3  plain', ''].join('\n'));
    expect(out).not.toMatch(/[\p{Cc}\p{Bidi_Control}](?<!\n)/u);
  });
});

describe('times for people', () => {
  const now = Date.parse('2026-12-07T12:00:00.000Z');
  const at = (ms: number) => new Date(now + ms).toISOString();
  it.each([
    [0, '0 ms'],
    [800, '800 ms'],
    [12_400, '12 s'],
    [60_000, '1 min'],
    [245_000, '4 min 5 s'],
    [3 * 3600_000 + 20 * 60_000 + 7_000, '3 h 20 min'],
    [3600_000 + 5_000, '1 h'],
    [2 * 86_400_000 + 4 * 3600_000 + 59_000, '2 d 4 h'],
    [-1, '-'],
    [NaN, '-'],
  ])('formatDuration(%d) is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each([
    [at(0), 'now'],
    [at(-12_000), '12 sec. ago'],
    [at(-4 * 60_000), '4 min. ago'],
    [at(-3 * 3600_000), '3 hr. ago'],
    [at(-86_400_000), 'yesterday'],
    [at(-5 * 86_400_000), '5 days ago'],
    [at(2 * 60_000), 'in 2 min.'],
    [null, '-'],
    ['not a date', '-'],
  ])('ago(%j) is %j', (iso, text) => {
    expect(ago(iso, now)).toBe(text);
  });
});
