/**
 * The JSON tensor format of ONNX job inputs and outputs, the same in the HTTP
 * API, `gogrid submit --input FILE.json` and `gogrid job ID --json`:
 *
 *   { "inputs":  { "x": { "dtype": "float32", "dims": [1, 3], "data": [1, 2, 3] } } }
 *   { "outputs": { "y": { "dtype": "int64",   "dims": [],     "data": ["9007199254740993"] } } }
 *   { "inputs":  { "x": { "dtype": "float32", "dims": [2],    "b64": "AACAPwAAAEA=" } } }
 *
 * `data` is flat, row-major. Following the protobuf JSON mapping, int64 and
 * uint64 values are decimal strings and non-finite floats are "NaN",
 * "Infinity", "-Infinity". `b64` (base64 of the little-endian raw bytes)
 * replaces `data` for every type but string, in inputs, and in outputs when
 * the input asks for it (`"outputEncoding": "b64"`). These schemas check the shape of
 * the JSON; `checkTensorJson` (and the executor's codec) check that the data
 * length matches the dims.
 */
import { z } from 'zod';
import { line, tensorString } from './text.js';
import { firstZodProblem } from './zod-problems.js';

export const TENSOR_DTYPES = [
  'float32',
  'float64',
  'float16',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'bool',
  'string',
] as const;
export const TensorDtype = z.enum(TENSOR_DTYPES);
export type TensorDtype = z.infer<typeof TensorDtype>;

/** Bytes per element in the `b64` form; strings have no raw form. */
export const DTYPE_BYTES: Record<Exclude<TensorDtype, 'string'>, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
};

/** Standard base64 with padding, as Buffer and btoa write it. */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const dims = z.array(z.number().int().nonnegative()).max(32);
const element = z.union([z.number(), tensorString, z.boolean()]);

export const TensorJson = z
  .object({
    dtype: TensorDtype,
    dims,
    data: z.array(element).optional(),
    b64: z.string().regex(BASE64, 'expected base64').optional(),
  })
  .refine((t) => (t.data === undefined) !== (t.b64 === undefined), { message: 'give exactly one of "data" and "b64"' })
  .refine((t) => !(t.dtype === 'string' && t.b64 !== undefined), { message: 'string tensors take "data", not "b64"' });
export type TensorJson = z.infer<typeof TensorJson>;

export const TensorMap = z.record(line(256).min(1), TensorJson);
export type TensorMap = z.infer<typeof TensorMap>;

/** The `input` of an `onnx` job. */
export const OnnxJobInput = z.object({
  inputs: TensorMap,
  /**
   * How the output's numeric tensors are written: `data` (JSON numbers), or
   * `b64` (their raw little-endian bytes in base64), a quarter of the size
   * for float32 and far cheaper to check and parse at every hop: what a
   * client of real models wants. String tensors are always `data`.
   * @default 'data'
   */
  outputEncoding: z.enum(['data', 'b64']).optional(),
});
/** The `output` of a succeeded `onnx` job. */
export const OnnxJobOutput = z.object({
  outputs: TensorMap,
  /** Where it ran: `cpu`, or the GPU backend (an execution provider: `webgpu`, `cuda`, …). Absent from older workers' outputs (the CPU). */
  backend: z.string().max(32).optional(),
});
export type OnnxJobInput = z.infer<typeof OnnxJobInput>;
export type OnnxJobOutput = z.infer<typeof OnnxJobOutput>;

/** Number of elements the dims describe (1 for a scalar, 0 for an empty tensor). */
export function elementCount(d: readonly number[]): number {
  return d.reduce((n, x) => n * x, 1);
}

/** Null when the data length fits the dims, else a sentence saying what is wrong. */
export function checkTensorJson(t: TensorJson): string | null {
  const want = elementCount(t.dims);
  if (t.data !== undefined) {
    return t.data.length === want ? null : `dims [${t.dims.join(', ')}] need ${want} values, data has ${t.data.length}`;
  }
  const bytes = base64Bytes(t.b64!);
  const need = want * DTYPE_BYTES[t.dtype as Exclude<TensorDtype, 'string'>];
  return bytes === need ? null : `dims [${t.dims.join(', ')}] of ${t.dtype} need ${need} bytes, b64 has ${bytes}`;
}

/** What `b64`, already checked against BASE64, decodes to: three bytes per four characters, less one per `=`. */
function base64Bytes(b64: string): number {
  return (b64.length / 4) * 3 - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0);
}

/** An `onnx` job's input or output: a tensor map whose every tensor's data fits its dims (checkJobPayload). */
export function checkOnnxPayload(which: 'input' | 'output', value: unknown): string | null {
  const parsed = (which === 'input' ? OnnxJobInput.transform((v) => v.inputs) : OnnxJobOutput.transform((v) => v.outputs)).safeParse(value);
  if (!parsed.success) return firstZodProblem(parsed.error, [which]);
  for (const [name, tensor] of Object.entries(parsed.data)) {
    const problem = checkTensorJson(tensor);
    if (problem) return `${which}.${which}s.${name}: ${problem}`;
    // onnxruntime-node reads an input string as a C string: it would silently end at the first NUL.
    const nul = which === 'input' && tensor.dtype === 'string' ? (tensor.data ?? []).findIndex((v) => typeof v === 'string' && v.includes('\0')) : -1;
    if (nul >= 0) return `${which}.inputs.${name}.data.${nul}: contains NUL (U+0000), where onnxruntime would cut the string short`;
  }
  return null;
}
