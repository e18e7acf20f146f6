import { describe, expect, it } from 'vitest';
import { halfToNumber, numberToHalf } from '../../../src/worker/executors/half.js';

describe('IEEE half precision', () => {
  it('round-trips every one of the 65,536 bit patterns (NaNs to the canonical NaN)', () => {
    const wrong: string[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = halfToNumber(bits);
      const isNaN = (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
      const back = numberToHalf(value);
      if (Number.isNaN(value) !== isNaN || back !== (isNaN ? 0x7e00 : bits)) wrong.push(`0x${bits.toString(16)} → ${value} → 0x${back.toString(16)}`);
    }
    expect(wrong).toEqual([]);
  });

  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0, 0x0000],
    [-0, 0x8000],
    [65504, 0x7bff],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [0.1, 0x2e66], // nearest half to 0.1 is 0.0999755859375
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [NaN, 0x7e00],
  ])('encodes %d as bits %i', (value, bits) => {
    expect(numberToHalf(value)).toBe(bits);
  });

  it.each([
    ['just under the overflow tie', 65519, 0x7bff],
    ['the overflow tie (to even: Infinity)', 65520, 0x7c00],
    ['far past the largest half', 1e6, 0x7c00],
    ['a tie between 1 and the next half (to even: 1)', 1 + 2 ** -11, 0x3c00],
    ['a tie whose lower neighbour is odd (rounds up)', 1 + 3 * 2 ** -11, 0x3c02],
    ['a hair above a tie (rounds up, no double rounding)', 1 + 2 ** -11 + 2 ** -40, 0x3c01],
    ['half the smallest subnormal (a tie, to even: 0)', 2 ** -25, 0x0000],
    ['a subnormal that rounds up into the normals', 2 ** -14 - 2 ** -26, 0x0400],
  ])('rounds %s', (_name, value, bits) => {
    expect(numberToHalf(value)).toBe(bits);
  });
});
