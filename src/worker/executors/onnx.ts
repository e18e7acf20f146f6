/**
 * The ONNX executor (`kind: 'onnx'`): onnxruntime-node on the CPU, inside the
 * job process. The runtime is imported in `run` only, so the worker process,
 * which imports this file for `canRun`, never loads the native library. A
 * warm job process keeps its two most recently used sessions (by model path
 * and threads), so a repeated model skips session creation.
 *
 *   const output = await onnxExecutor.run(job, { modelPath, threads: 2, signal, onProgress });
 *   // job.input  = { inputs:  { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } }
 *   // output     = { outputs: { y: { dtype: 'float32', dims: [1, 3], data: [...] } } }
 *
 * Inputs are checked against the model before anything runs (onnxruntime
 * itself ignores unknown feed names), so a mistake comes back as
 * GG_ERR_INPUT_INVALID naming the input; a model with non-tensor inputs or
 * outputs, or one the runtime cannot load, is GG_ERR_MODEL_UNSUPPORTED.
 */
import type * as Ort from 'onnxruntime-node';
import { GridError } from '../../protocol/errors.js';
import { OnnxJobInput, type OnnxJobOutput, type TensorMap } from '../../protocol/tensor.js';
import { firstZodProblem } from '../../protocol/zod-problems.js';
import { SessionCache } from './session-cache.js';
import { decodeTensor, encodeTensor, type RawTensor } from './tensor-codec.js';
import type { Executor } from './types.js';

/** Two: a job process alternating between two models (a pipeline's stages) keeps both warm. */
const sessions = new SessionCache<Ort.InferenceSession>(2);

/** Platforms onnxruntime-node 1.30 ships CPU binaries for (no darwin-x64 since 1.24). */
const PLATFORMS = new Set(['linux/x64', 'linux/arm64', 'darwin/arm64', 'win32/x64', 'win32/arm64']);

export const onnxExecutor: Executor = {
  kind: 'onnx',
  canRun: (hardware) => PLATFORMS.has(`${hardware.os.platform}/${hardware.os.arch}`),

  async load() {
    // Importing it loads onnxruntime_binding.node and the onnxruntime library with it.
    await import('onnxruntime-node');
  },

  async run(job, ctx) {
    const input = parseInput(job.input);
    ctx.onProgress(0, 'loading model');
    const ort = await import('onnxruntime-node');
    const lease = await sessions.acquire(`${ctx.modelPath}\0${ctx.threads}`, () =>
      ort.InferenceSession.create(ctx.modelPath, {
        intraOpNumThreads: ctx.threads,
        interOpNumThreads: 1,
        executionProviders: ['cpu'],
      }).catch((e: unknown) => {
        throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `onnxruntime could not load the model: ${errorMessage(e)}`, { cause: e });
      }),
    );
    try {
      const { session } = lease;
      refuseNonTensors(session);
      const feeds: Record<string, Ort.Tensor> = {};
      for (const [name, raw] of Object.entries(checkInputs(session.inputMetadata, input.inputs))) feeds[name] = toOrtTensor(ort, raw);
      ctx.signal.throwIfAborted();
      ctx.onProgress(0.1, 'running');
      const results = await session.run(feeds).catch((e: unknown) => {
        throw new GridError('GG_ERR_INPUT_INVALID', `onnxruntime could not run the model on this input: ${errorMessage(e)}`, { cause: e });
      });
      const outputs: TensorMap = {};
      for (const [name, value] of Object.entries(results)) outputs[name] = encodeTensor(`output "${name}"`, value);
      ctx.onProgress(1, 'done');
      return { outputs } satisfies OnnxJobOutput;
    } finally {
      lease.release();
    }
  },
};

function parseInput(raw: unknown): OnnxJobInput {
  const parsed = OnnxJobInput.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new GridError('GG_ERR_INPUT_INVALID', `${firstZodProblem(parsed.error, [], 'input')} (expected {"inputs": {NAME: TENSOR}})`);
}

function refuseNonTensors(session: Ort.InferenceSession): void {
  for (const [side, list] of [['input', session.inputMetadata], ['output', session.outputMetadata]] as const) {
    const bad = list.filter((m) => !m.isTensor).map((m) => `"${m.name}"`);
    if (bad.length > 0) {
      throw new GridError(
        'GG_ERR_MODEL_UNSUPPORTED',
        `the model's ${side}${bad.length > 1 ? 's' : ''} ${bad.join(', ')} ${bad.length > 1 ? 'are' : 'is'} not a tensor (a sequence, map or optional); GoGrid runs models whose inputs and outputs are all tensors`,
      );
    }
  }
}

/** Every model input given, no others, each with the declared element type and (where declared) shape. */
export function checkInputs(metadata: readonly Ort.InferenceSession.ValueMetadata[], inputs: TensorMap): Record<string, RawTensor> {
  const declared = new Map(metadata.map((m) => [m.name, m]));
  const names = () => [...declared.keys()].map((n) => `"${n}"`).join(', ');
  for (const name of Object.keys(inputs)) {
    if (!declared.has(name)) throw new GridError('GG_ERR_INPUT_INVALID', `input "${name}": the model has no such input (its inputs: ${names()})`);
  }
  const out: Record<string, RawTensor> = {};
  for (const meta of declared.values()) {
    const what = `input "${meta.name}"`;
    const tensor = inputs[meta.name];
    if (!tensor) throw new GridError('GG_ERR_INPUT_INVALID', `${what}: missing (the model's inputs: ${names()})`);
    if (!meta.isTensor) continue; // refused earlier
    if (tensor.dtype !== meta.type) throw new GridError('GG_ERR_INPUT_INVALID', `${what}: the model takes ${meta.type}, got ${tensor.dtype}`);
    // onnxruntime reports an undeclared shape as [] too, so only a non-empty shape can be checked.
    if (meta.shape.length > 0) checkShape(what, meta.shape, tensor.dims);
    out[meta.name] = decodeTensor(what, tensor);
  }
  return out;
}

function checkShape(what: string, shape: readonly (number | string)[], dims: readonly number[]): void {
  const want = `[${shape.join(', ')}]`;
  if (dims.length !== shape.length) throw new GridError('GG_ERR_INPUT_INVALID', `${what}: the model takes shape ${want}, got dims [${dims.join(', ')}]`);
  shape.forEach((d, i) => {
    if (typeof d === 'number' && d >= 0 && dims[i] !== d) {
      throw new GridError('GG_ERR_INPUT_INVALID', `${what}: dimension ${i} must be ${d} (shape ${want}), got ${dims[i]}`);
    }
  });
}

function toOrtTensor(ort: typeof Ort, raw: RawTensor): Ort.Tensor {
  switch (raw.dtype) {
    case 'string':
      return new ort.Tensor('string', raw.data, raw.dims);
    case 'bool':
      return new ort.Tensor('bool', raw.data, raw.dims);
    case 'int64':
      return new ort.Tensor('int64', raw.data, raw.dims);
    case 'uint64':
      return new ort.Tensor('uint64', raw.data, raw.dims);
    default:
      return new ort.Tensor(raw.dtype, raw.data, raw.dims);
  }
}

function errorMessage(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).trim();
}
