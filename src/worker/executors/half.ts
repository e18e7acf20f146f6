/**
 * IEEE 754 half precision (binary16) to and from JS numbers. onnxruntime
 * stores float16 tensors as Uint16Array bit patterns wherever the JS engine
 * has no Float16Array (Node 20 has none).
 *
 *   halfToNumber(0x3c00);   // 1
 *   numberToHalf(65504);    // 0x7bff, the largest finite half
 *
 * Converting straight from the double (not via Float32Array) avoids double
 * rounding: every step below is exact except the one round-half-to-even.
 */

export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Rounds to the nearest half, ties to even; overflow gives ±Infinity, NaN the canonical quiet NaN. */
export function numberToHalf(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  // 65520 is halfway between the largest half (65504) and 2^16; the tie goes to the even side, Infinity.
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal; 1024 rolls into the smallest normal
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  else if (2 ** (e + 1) <= a) e += 1;
  // A mantissa that rounds up to 1024 carries into the exponent, which is the right encoding.
  return sign | (((e + 15) << 10) + roundHalfEven((a / 2 ** e - 1) * 1024));
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
