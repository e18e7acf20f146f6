import { describe, expect, it } from 'vitest';
import { GridError } from '../../../src/protocol/errors.js';
import { TENSOR_DTYPES, type TensorDtype, type TensorJson } from '../../../src/protocol/tensor.js';
import { decodeTensor, encodeTensor, type RawTensor } from '../../../src/worker/executors/tensor-codec.js';

const b64 = (view: ArrayBufferView) => Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');

/** For every dtype: JSON data, the typed array it must decode to, and the JSON it must encode back to. */
const TABLE: { [K in TensorDtype]: { data: (number | string | boolean)[]; raw: RawTensor['data']; back?: (number | string | boolean)[] } } = {
  float32: {
    data: [1.5, -2, 'NaN', 'Infinity', '-Infinity', 3.4028234663852886e38],
    raw: Float32Array.from([1.5, -2, NaN, Infinity, -Infinity, 3.4028234663852886e38]),
  },
  float64: { data: [0.1, 1e308, 5e-324, 'NaN', '-Infinity'], raw: Float64Array.from([0.1, 1e308, 5e-324, NaN, -Infinity]) },
  float16: {
    data: [1, -2, 65504, 0.1, 'Infinity', 'NaN'],
    raw: Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x2e66, 0x7c00, 0x7e00]),
    back: [1, -2, 65504, 0.0999755859375, 'Infinity', 'NaN'],
  },
  int8: { data: [-128, 0, 127, '5'], raw: Int8Array.from([-128, 0, 127, 5]), back: [-128, 0, 127, 5] },
  int16: { data: [-32768, 32767], raw: Int16Array.from([-32768, 32767]) },
  int32: { data: [-2147483648, 2147483647], raw: Int32Array.from([-2147483648, 2147483647]) },
  int64: {
    data: ['9007199254740993', '-9223372036854775808', '9223372036854775807', 42],
    raw: BigInt64Array.from([9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n, 42n]),
    back: ['9007199254740993', '-9223372036854775808', '9223372036854775807', '42'],
  },
  uint8: { data: [0, 255], raw: Uint8Array.from([0, 255]) },
  uint16: { data: [0, 65535], raw: Uint16Array.from([0, 65535]) },
  uint32: { data: [0, 4294967295], raw: Uint32Array.from([0, 4294967295]) },
  uint64: { data: ['18446744073709551615', '0'], raw: BigUint64Array.from([2n ** 64n - 1n, 0n]) },
  bool: { data: [true, false, true], raw: Uint8Array.from([1, 0, 1]) },
  string: { data: ['a', 'héllo wörld', ''], raw: ['a', 'héllo wörld', ''] },
};

function expectInvalid(what: string, fn: () => unknown, detail: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GridError);
    expect((e as GridError).code).toBe('GG_ERR_INPUT_INVALID');
    expect((e as GridError).message).toContain(what);
    expect((e as GridError).message).toMatch(detail);
    return;
  }
  expect.fail('no error thrown');
}

describe('tensor codec', () => {
  it('has a table row for every dtype', () => {
    expect(Object.keys(TABLE).sort()).toEqual([...TENSOR_DTYPES].sort());
  });

  describe.each(TENSOR_DTYPES)('%s', (dtype) => {
    const row = TABLE[dtype];
    const dims = [row.data.length];

    it('decodes the data form to the array onnxruntime takes', () => {
      const raw = decodeTensor('input "x"', { dtype, dims, data: row.data });
      expect(raw).toEqual({ dtype, dims, data: row.raw });
      expect(raw.data.constructor).toBe(row.raw.constructor);
    });

    it('encodes back to the data form', () => {
      expect(encodeTensor('output "y"', { type: dtype, dims, data: row.raw })).toEqual({ dtype, dims, data: row.back ?? row.data });
    });

    it('decodes the b64 form to the same array', () => {
      if (dtype === 'string') {
        expectInvalid('input "x"', () => decodeTensor('input "x"', { dtype, dims, b64: '' }), /"data", not "b64"/);
        return;
      }
      const raw = row.raw as Exclude<RawTensor['data'], string[]>;
      expect(decodeTensor('input "x"', { dtype, dims, b64: b64(raw) })).toEqual({ dtype, dims, data: row.raw });
    });

    it('takes a scalar (dims []) and an empty tensor', () => {
      const scalar = decodeTensor('input "x"', { dtype, dims: [], data: row.data.slice(0, 1) });
      expect(scalar.dims).toEqual([]);
      expect(scalar.data.length).toBe(1);
      expect(encodeTensor('output "y"', { type: dtype, dims: [], data: scalar.data })).toEqual({ dtype, dims: [], data: (row.back ?? row.data).slice(0, 1) });
      const empty = decodeTensor('input "x"', { dtype, dims: [2, 0, 3], data: [] });
      expect(empty.data.length).toBe(0);
      expect(encodeTensor('output "y"', { type: dtype, dims: [2, 0, 3], data: empty.data })).toEqual({ dtype, dims: [2, 0, 3], data: [] });
      if (dtype !== 'string') expect(decodeTensor('input "x"', { dtype, dims: [0], b64: '' }).data.length).toBe(0);
    });

    it('refuses data whose length does not match the dims', () => {
      expectInvalid('input "x"', () => decodeTensor('input "x"', { dtype, dims: [row.data.length + 1], data: row.data }), /need \d+ values, data has \d+/);
      expectInvalid('input "x"', () => decodeTensor('input "x"', { dtype, dims: [], data: [] }), /dims \[\] need 1 values, data has 0/);
      if (dtype !== 'string') {
        expectInvalid('input "x"', () => decodeTensor('input "x"', { dtype, dims: [3], b64: 'AAAAAAAAAAAAAAAAAAAAAA==' }), /need \d+ bytes, b64 has 16/);
      }
    });
  });

  it.each<[string, TensorJson, RegExp]>([
    ['a float that is not a number', { dtype: 'float32', dims: [2], data: [1, 'one'] }, /element 1 \("one"\) is not a float32/],
    ['a float given as a boolean', { dtype: 'float64', dims: [1], data: [true] }, /element 0 \(true\) is not a float64/],
    ['an int8 out of range', { dtype: 'int8', dims: [1], data: [128] }, /element 0 \(128\) is not an int8 in \[-128, 127\]/],
    ['a uint8 below zero', { dtype: 'uint8', dims: [1], data: [-1] }, /not an uint8 in \[0, 255\]/],
    ['a fractional int32', { dtype: 'int32', dims: [1], data: [1.5] }, /element 0 \(1.5\) is not an int32/],
    ['an int64 past 2^63 - 1', { dtype: 'int64', dims: [1], data: ['9223372036854775808'] }, /not a int64 in \[-9223372036854775808, 9223372036854775807\]/],
    ['an int64 number past 2^53 (already rounded)', { dtype: 'int64', dims: [1], data: [2 ** 53 + 2] }, /decimal string/],
    ['a negative uint64', { dtype: 'uint64', dims: [1], data: ['-1'] }, /not a uint64/],
    ['a uint64 that is not decimal', { dtype: 'uint64', dims: [1], data: ['0x10'] }, /not a uint64/],
    ['a bool given as 1', { dtype: 'bool', dims: [1], data: [1] }, /element 0 \(1\) is not true or false/],
    ['a bool byte that is not 0 or 1', { dtype: 'bool', dims: [2], b64: b64(Uint8Array.from([1, 2])) }, /bool byte 1 is 2/],
    ['a string given as a number', { dtype: 'string', dims: [1], data: [7] }, /element 0 \(7\) is not a string/],
    ['b64 that is not base64', { dtype: 'uint8', dims: [3], b64: 'AAA*' }, /not valid base64/],
    ['b64 without its padding', { dtype: 'uint8', dims: [1], b64: 'AA' }, /not valid base64/],
  ])('refuses %s, naming the tensor', (_name, tensor, detail) => {
    expectInvalid('input "x"', () => decodeTensor('input "x"', tensor), detail);
  });

  it('reads float16 and float32 outputs from any view over their bytes (e.g. a Float16Array)', () => {
    const bytes = new Uint8Array(Uint16Array.from([0x3c00, 0xfc00]).buffer);
    expect(encodeTensor('output "y"', { type: 'float16', dims: [2], data: bytes })).toEqual({ dtype: 'float16', dims: [2], data: [1, '-Infinity'] });
    const unaligned = new Uint8Array(9);
    unaligned.set(new Uint8Array(Float32Array.from([0.5, -8]).buffer), 1);
    expect(encodeTensor('output "y"', { type: 'float32', dims: [2], data: unaligned.subarray(1) })).toEqual({ dtype: 'float32', dims: [2], data: [0.5, -8] });
  });

  it('decodes b64 that sits at an unaligned offset in a pooled Buffer', () => {
    // Small Buffers share a pool; the codec must copy, not view, or Float64Array throws on the offset.
    const raw = decodeTensor('input "x"', { dtype: 'float64', dims: [1], b64: b64(Float64Array.from([Math.PI])) });
    expect(raw.data).toEqual(Float64Array.from([Math.PI]));
  });

  it('refuses an output element type with no JSON form', () => {
    expect(() => encodeTensor('output "y"', { type: 'bfloat16', dims: [1], data: new Uint16Array(1) })).toThrow(
      expect.objectContaining({ code: 'GG_ERR_MODEL_UNSUPPORTED', message: expect.stringContaining('output "y": element type bfloat16') }),
    );
  });
});
