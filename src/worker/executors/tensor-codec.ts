/**
 * The JSON tensor format (src/protocol/tensor.ts) to and from the typed
 * arrays onnxruntime takes and gives. Pure: no runtime is loaded here, so the
 * codec is tested on its own and the ONNX executor only wires it up.
 *
 *   const raw = decodeTensor('input "x"', { dtype: 'int64', dims: [2], data: ['9007199254740993', 1] });
 *   raw.data;                                   // BigInt64Array [9007199254740993n, 1n]
 *   encodeTensor('output "y"', { type: 'float16', dims: [1], data: new Uint16Array([0x7c00]) });
 *   // { dtype: 'float16', dims: [1], data: ['Infinity'] }
 *
 * Every failure is a GridError('GG_ERR_INPUT_INVALID') whose message starts
 * with the `what` it was given (e.g. `input "x"`), so a person knows which
 * tensor to fix. Raw (`b64`) bytes are little-endian, as are the typed arrays
 * on every platform onnxruntime-node ships for.
 */
import { GridError } from '../../protocol/errors.js';
import { BASE64, TENSOR_DTYPES, elementCount, type TensorDtype, type TensorJson } from '../../protocol/tensor.js';
import { halfToNumber, numberToHalf } from './half.js';

type NumericDtype = Exclude<TensorDtype, 'string'>;

/** The array type onnxruntime uses for each dtype (float16 as raw bits, bool as bytes). */
export interface DtypeArrays {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
  string: string[];
}

/** A decoded tensor, ready for `new ort.Tensor(dtype, data, dims)`. */
export type RawTensor = { [K in TensorDtype]: { dtype: K; dims: number[]; data: DtypeArrays[K] } }[TensorDtype];

/** What onnxruntime hands back: any typed array view (Float16Array too, where it exists) or strings. */
export interface OutputTensorLike {
  type: string;
  dims: readonly number[];
  data: unknown;
}

interface TypedArrayCtor<A> {
  new (length: number): A;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): A;
  readonly BYTES_PER_ELEMENT: number;
}

const CTORS: { [K in NumericDtype]: TypedArrayCtor<DtypeArrays[K]> } = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

const INT_RANGES = {
  int8: [-0x80, 0x7f],
  int16: [-0x8000, 0x7fff],
  int32: [-0x8000_0000, 0x7fff_ffff],
  uint8: [0, 0xff],
  uint16: [0, 0xffff],
  uint32: [0, 0xffff_ffff],
} as const;

const BIG_RANGES = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
} as const;

const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
const DECIMAL_INT = /^-?\d+$/;

const invalid = (what: string, detail: string) => new GridError('GG_ERR_INPUT_INVALID', `${what}: ${detail}`);

// ---------------------------------------------------------------- JSON → typed arrays

export function decodeTensor(what: string, t: TensorJson): RawTensor {
  const dims = [...t.dims];
  const count = elementCount(dims);
  if (t.b64 !== undefined) {
    if (t.dtype === 'string') throw invalid(what, 'string tensors take "data", not "b64"');
    return { dtype: t.dtype, dims, data: decodeB64(what, t.dtype, t.b64, dims, count) } as RawTensor;
  }
  const data = t.data ?? [];
  if (data.length !== count) throw invalid(what, `dims [${dims.join(', ')}] need ${count} values, data has ${data.length}`);
  return { dtype: t.dtype, dims, data: decodeValues(what, t.dtype, data) } as RawTensor;
}

function decodeValues(what: string, dtype: TensorDtype, data: readonly unknown[]): RawTensor['data'] {
  const bad = (i: number, want: string) => invalid(what, `element ${i} (${JSON.stringify(data[i])}) is not ${want}`);
  const n = data.length;
  switch (dtype) {
    case 'string':
      return fill(new Array<string>(n), data, (v, i) => (typeof v === 'string' ? v : throwIt(bad(i, 'a string'))));
    case 'bool':
      return fill(new Uint8Array(n), data, (v, i) => (typeof v === 'boolean' ? Number(v) : throwIt(bad(i, 'true or false'))));
    case 'float32':
    case 'float64':
      return fill(new CTORS[dtype](n), data, (v, i) => toFloat(v) ?? throwIt(bad(i, `a ${dtype} (a number, "NaN", "Infinity" or "-Infinity")`)));
    case 'float16':
      return fill(new Uint16Array(n), data, (v, i) => numberToHalf(toFloat(v) ?? throwIt(bad(i, 'a float16 (a number, "NaN", "Infinity" or "-Infinity")'))));
    case 'int64':
    case 'uint64': {
      const [lo, hi] = BIG_RANGES[dtype];
      return fill(new CTORS[dtype](n), data, (v, i) => {
        const x = toBigInt(v);
        return x !== null && x >= lo && x <= hi ? x : throwIt(bad(i, `a ${dtype} in [${lo}, ${hi}] (a decimal string; a number only up to 2^53)`));
      });
    }
    default: {
      const [lo, hi] = INT_RANGES[dtype];
      return fill(new CTORS[dtype](n), data, (v, i) => {
        const x = toInt(v);
        return x !== null && x >= lo && x <= hi ? x : throwIt(bad(i, `an ${dtype} in [${lo}, ${hi}]`));
      });
    }
  }
}

function fill<T, A extends { [i: number]: T }>(out: A, data: readonly unknown[], parse: (v: unknown, i: number) => T): A {
  for (let i = 0; i < data.length; i++) out[i] = parse(data[i], i);
  return out;
}

function decodeB64(what: string, dtype: NumericDtype, b64: string, dims: number[], count: number): RawTensor['data'] {
  if (!BASE64.test(b64)) throw invalid(what, '"b64" is not valid base64');
  const bytes = Buffer.from(b64, 'base64');
  const ctor = CTORS[dtype];
  const need = count * ctor.BYTES_PER_ELEMENT;
  if (bytes.length !== need) throw invalid(what, `dims [${dims.join(', ')}] of ${dtype} need ${need} bytes, b64 has ${bytes.length}`);
  // A fresh buffer: Node's decoded Buffer may sit at an offset that is not a multiple of the element size.
  const out = new ctor(count);
  new Uint8Array(out.buffer).set(bytes);
  if (dtype === 'bool') {
    const i = bytes.findIndex((b) => b > 1);
    if (i >= 0) throw invalid(what, `bool byte ${i} is ${bytes[i]}, not 0 or 1`);
  }
  return out;
}

function toFloat(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v in NON_FINITE) return NON_FINITE[v]!;
  return null;
}

function toInt(v: unknown): number | null {
  if (typeof v === 'number') return Number.isInteger(v) ? v : null;
  // The protobuf JSON mapping accepts integers as decimal strings too.
  if (typeof v === 'string' && DECIMAL_INT.test(v)) return Number(v);
  return null;
}

function toBigInt(v: unknown): bigint | null {
  // A JSON number past 2^53 has already lost its low bits; only a string is exact there.
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : null;
  if (typeof v === 'string' && DECIMAL_INT.test(v)) return BigInt(v);
  return null;
}

function throwIt(e: Error): never {
  throw e;
}

// ---------------------------------------------------------------- typed arrays → JSON

/**
 * The `data` form (64-bit integers as decimal strings, non-finite floats as
 * strings), or with `b64` a numeric tensor's raw bytes; strings are always `data`.
 */
export function encodeTensor(what: string, t: OutputTensorLike, encoding: 'data' | 'b64' = 'data'): TensorJson {
  const dtype = (TENSOR_DTYPES as readonly string[]).includes(t.type) ? (t.type as TensorDtype) : null;
  if (dtype === null) {
    throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `${what}: element type ${t.type} has no JSON form (supported: ${TENSOR_DTYPES.join(', ')})`);
  }
  const dims = [...t.dims];
  const count = elementCount(dims);
  if (dtype === 'string') {
    if (!Array.isArray(t.data) || t.data.length !== count || !t.data.every((s) => typeof s === 'string')) {
      throw new GridError('GG_ERR_INTERNAL', `${what}: string tensor data is not ${count} strings`);
    }
    return { dtype, dims, data: [...(t.data as string[])] };
  }
  if (!ArrayBuffer.isView(t.data) || t.data.byteLength !== count * CTORS[dtype].BYTES_PER_ELEMENT) {
    throw new GridError('GG_ERR_INTERNAL', `${what}: ${dtype} tensor data is not ${count} elements`);
  }
  if (encoding === 'b64') return { dtype, dims, b64: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') };
  // Reinterpret the bytes, so a Float16Array (or any view) reads as the canonical array type;
  // copy first where the view's offset does not suit that type.
  const ctor = CTORS[dtype];
  const { buffer, byteOffset, byteLength } = t.data;
  const aligned = byteOffset % ctor.BYTES_PER_ELEMENT === 0 ? { buffer, byteOffset } : { buffer: buffer.slice(byteOffset, byteOffset + byteLength), byteOffset: 0 };
  const view = new ctor(aligned.buffer, aligned.byteOffset, count);
  return { dtype, dims, data: encodeValues(dtype, view) };
}

function encodeValues(dtype: NumericDtype, view: DtypeArrays[NumericDtype]): (number | string | boolean)[] {
  const out: (number | string | boolean)[] = new Array<number | string | boolean>(view.length);
  for (let i = 0; i < view.length; i++) {
    const v = view[i]!;
    if (typeof v === 'bigint') out[i] = v.toString();
    else if (dtype === 'bool') out[i] = v !== 0;
    else if (dtype === 'float16') out[i] = floatJson(halfToNumber(v));
    else out[i] = floatJson(v);
  }
  return out;
}

function floatJson(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}
