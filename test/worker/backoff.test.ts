import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../src/worker/backoff.js';

const ALMOST_ONE = 1 - Number.EPSILON / 2; // the largest double below 1, as Math.random can return
const fixed = (r: number) => () => r;

describe('backoffDelayMs', () => {
  // [attempt, random, expected] with the defaults: base 1 s, cap 30 s.
  it.each([
    [0, 0, 0],
    [0, 0.5, 500],
    [0, ALMOST_ONE, 1000 * ALMOST_ONE],
    [1, 0.5, 1000],
    [2, 0.5, 2000],
    [3, 0.5, 4000],
    [4, 0.5, 8000],
    [4, ALMOST_ONE, 16_000 * ALMOST_ONE],
    [5, 0.5, 15_000], // window 32 s, capped to 30 s
    [5, ALMOST_ONE, 30_000 * ALMOST_ONE],
    [7, 0.5, 15_000],
    [30, 0, 0],
    [1023, 0.5, 15_000],
    [1024, 0.5, 15_000], // 2^1024 is Infinity in doubles
    [10_000, 0.5, 15_000],
    [10_000, ALMOST_ONE, 30_000 * ALMOST_ONE],
    [Number.MAX_SAFE_INTEGER, 0.5, 15_000],
  ])('attempt %i, random %d → %d ms', (attempt, r, expected) => {
    const delay = backoffDelayMs(attempt, { random: fixed(r) });
    expect(delay).toBe(expected);
    expect(delay).toBeLessThan(30_000);
  });

  it.each([
    [{ baseMs: 100, capMs: 1000 }, 0, 50],
    [{ baseMs: 100, capMs: 1000 }, 3, 400],
    [{ baseMs: 100, capMs: 1000 }, 4, 500],
    [{ baseMs: 0, capMs: 1000 }, 10_000, 0], // 0 * 2^attempt must not be NaN
    [{ baseMs: 250, capMs: 0 }, 2, 0],
    [{ baseMs: 5000, capMs: 2000 }, 0, 1000], // cap below base wins from the start
  ])('options %j, attempt %i, random 0.5 → %d ms', (options, attempt, expected) => {
    expect(backoffDelayMs(attempt, { ...options, random: fixed(0.5) })).toBe(expected);
  });

  it('stays within [0, window) with the real Math.random', () => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const delay = backoffDelayMs(attempt);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(Math.min(30_000, 1000 * 2 ** attempt));
    }
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects attempt %d', (attempt) => {
    expect(() => backoffDelayMs(attempt)).toThrow(RangeError);
  });

  it.each([
    [{ baseMs: -1 }],
    [{ baseMs: Number.NaN }],
    [{ capMs: Number.POSITIVE_INFINITY }],
    [{ random: fixed(Number.NaN) }],
    [{ random: fixed(-0.1) }],
    [{ random: fixed(1.5) }],
  ])('rejects options %j', (options) => {
    expect(() => backoffDelayMs(0, options)).toThrow(RangeError);
  });
});
