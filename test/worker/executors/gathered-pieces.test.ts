/**
 * The gathering of an executor's output pieces (job process → worker, and
 * worker → coordinator), on fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GatheredPieces, type OutputPiece } from '../../../src/worker/executors/index.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function gather(maxChars?: number) {
  const sent: OutputPiece[] = [];
  return { sent, pieces: new GatheredPieces(25, (p) => sent.push(p), maxChars) };
}

describe('GatheredPieces', () => {
  it('sends the first piece with text at once, then the rest together every interval, tokens with their text', () => {
    const { sent, pieces } = gather();
    pieces.add({ text: '', tokens: [1] });
    expect(sent).toEqual([]);
    pieces.add({ text: 'Once', tokens: [2] });
    expect(sent).toEqual([{ text: 'Once', tokens: [1, 2] }]);
    pieces.add({ text: ' upon', tokens: [3] });
    pieces.add({ text: ' a', tokens: [4] });
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(25);
    expect(sent[1]).toEqual({ text: ' upon a', tokens: [3, 4] });
  });

  it('sends at once when maxChars of text wait, and drops the tokens of a gathering where one piece had none', () => {
    const { sent, pieces } = gather(8);
    pieces.add({ text: 'a', tokens: [1] });
    pieces.add({ text: 'bcd' });
    pieces.add({ text: 'efghij', tokens: [2] });
    expect(sent).toEqual([{ text: 'a', tokens: [1] }, { text: 'bcdefghij' }]);
  });

  it('flushes what waits on demand, and stop drops it', () => {
    const { sent, pieces } = gather();
    pieces.add({ text: 'x' });
    pieces.add({ text: 'y' });
    pieces.flush();
    expect(sent).toEqual([{ text: 'x' }, { text: 'y' }]);
    pieces.add({ text: 'z' });
    pieces.stop();
    vi.advanceTimersByTime(100);
    expect(sent).toHaveLength(2);
  });
});
