/** What the CLI prints of names others chose: never a control or bidi character a terminal would obey. */
import { describe, expect, it } from 'vitest';
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
