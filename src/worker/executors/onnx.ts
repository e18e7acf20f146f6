/**
 * The ONNX executor (`kind: 'onnx'`): onnxruntime-node inside the job
 * process, on the CPU or on the GPU backend (execution provider) the job asks
 * for. The runtime is imported in `run` only, so the worker process, which
 * imports this file for `canRun`, never loads the native library. A warm job
 * process keeps its two most recently used sessions (by model path, backend
 * and threads), so a repeated model skips session creation.
 *
 *   const output = await onnxExecutor.run(job, { modelPath, threads: 2, gpuBackends: ['webgpu'], signal, onProgress });
 *   // job.input  = { inputs:  { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } }
 *   // output     = { outputs: { y: { dtype: 'float32', dims: [1, 3], data: [...] } }, backend: 'webgpu' }
 *   // with "outputEncoding": "b64" in the input, y is { dtype, dims, b64: '…' } (raw little-endian bytes)
 *
 * Inputs are checked against the model before anything runs (onnxruntime
 * itself ignores unknown feed names), so a mistake comes back as
 * GG_ERR_INPUT_INVALID naming the input; a model with non-tensor inputs or
 * outputs, or one the runtime cannot load, is GG_ERR_MODEL_UNSUPPORTED.
 */
import type * as Ort from 'onnxruntime-node';
import { GridError } from '../../protocol/errors.js';
import { GPU_BACKENDS, type JobRequirements } from '../../protocol/messages.js';
import { OnnxJobInput, type OnnxJobOutput, type TensorMap } from '../../protocol/tensor.js';
import { firstZodProblem } from '../../protocol/zod-problems.js';
import { PROBE_MODEL } from './probe-model.js';
import { SessionCache } from './session-cache.js';
import { decodeTensor, encodeTensor, type RawTensor } from './tensor-codec.js';
import type { BackendTrial, Executor } from './types.js';

/** Two: a job process alternating between two models (a pipeline's stages) keeps both warm. */
const sessions = new SessionCache<Ort.InferenceSession>(2);

/** Platforms onnxruntime-node 1.30 ships CPU binaries for (no darwin-x64 since 1.24). */
const PLATFORMS = new Set(['linux/x64', 'linux/arm64', 'darwin/arm64', 'win32/x64', 'win32/arm64']);

/** What onnxruntime-node's CUDA provider needs that no installer can ship: the README says how. */
const CUDA_NEEDS = "onnxruntime's CUDA provider needs its libraries (onnxruntime-node's cuda12 install) and CUDA 12 with cuDNN 9; see the README";

/** How far a backend's answer to the probe model may be from the CPU's: float32 kernels differ in their last bits. */
const PROBE_TOLERANCE = 1e-3;

export const onnxExecutor: Executor = {
  kind: 'onnx',
  canRun: (hardware) => PLATFORMS.has(`${hardware.os.platform}/${hardware.os.arch}`),

  async load() {
    // Importing it loads onnxruntime_binding.node and the onnxruntime library with it.
    await import('onnxruntime-node');
  },

  async probeBackends() {
    const ort = await import('onnxruntime-node');
    const listed = new Set(ort.listSupportedBackends().map((b) => b.name));
    const x = new ort.Tensor('float32', Float32Array.from([1, -2, 3, 0.5, -1, 0.25, 2, -3]), [2, 4]);
    const want = await runProbeModel(ort, 'cpu', x);
    const trials: BackendTrial[] = [];
    for (const backend of GPU_BACKENDS['onnx']!.filter((b) => listed.has(b))) {
      try {
        const got = await runProbeModel(ort, backend, x);
        const off = Math.max(...want.map((v, i) => Math.abs(v - (got[i] ?? Number.NaN))));
        trials.push(off <= PROBE_TOLERANCE ? { backend, ok: true, detail: null } : { backend, ok: false, detail: `it computed a test model wrong (off by ${off})` });
      } catch (e) {
        trials.push({ backend, ok: false, detail: backend === 'cuda' ? `${errorMessage(e)} (${CUDA_NEEDS})` : errorMessage(e) });
      }
    }
    return trials;
  },

  async run(job, ctx) {
    const input = parseInput(job.input);
    ctx.onProgress(0, 'loading model');
    const ort = await import('onnxruntime-node');
    const { backend, lease } = await openSession(ort, ctx.modelPath, ctx.threads, onnxBackendFor(job.requirements.gpu, ctx.gpuBackends), job.requirements.gpu?.fallback === true);
    try {
      const { session } = lease;
      refuseNonTensors(session);
      const feeds: Record<string, Ort.Tensor> = {};
      for (const [name, raw] of Object.entries(checkInputs(session.inputMetadata, input.inputs))) feeds[name] = toOrtTensor(ort, raw);
      ctx.signal.throwIfAborted();
      ctx.onProgress(0.1, backend === 'cpu' ? 'running' : `running on ${backend}`);
      const results = await session.run(feeds).catch((e: unknown) => {
        throw new GridError('GG_ERR_INPUT_INVALID', `onnxruntime could not run the model on this input${backend === 'cpu' ? '' : ` (on ${backend})`}: ${errorMessage(e)}`, { cause: e });
      });
      const outputs: TensorMap = {};
      for (const [name, value] of Object.entries(results)) outputs[name] = encodeTensor(`output "${name}"`, value, input.outputEncoding);
      ctx.onProgress(1, 'done');
      return { outputs, backend } satisfies OnnxJobOutput;
    } finally {
      lease.release();
    }
  },
};

/**
 * The backend an ONNX job runs on here: `cpu` for a job that asks for no GPU;
 * the backend it names, or the best working one for `any`; the CPU where
 * none of those works here only if the job allows it (`fallback`).
 */
export function onnxBackendFor(gpu: JobRequirements['gpu'], working: readonly string[]): string {
  if (!gpu) return 'cpu';
  const any = gpu.backend === undefined || gpu.backend === 'any';
  const chosen = any ? working[0] : working.find((b) => b === gpu.backend);
  if (chosen) return chosen;
  if (gpu.fallback) return 'cpu';
  const here = working.length > 0 ? `it has ${working.join(', ')}` : 'it has none';
  throw new GridError('GG_ERR_GPU_UNAVAILABLE', `no working ${any ? 'GPU' : gpu.backend} backend for ONNX jobs on this worker (${here}), and the job does not allow the CPU (gpu.fallback)`);
}

/**
 * A session on `backend`. Where the GPU backend cannot create one, the CPU
 * tells whose fault it is: a model the CPU cannot load either is
 * unsupported; otherwise the GPU failed, and the job runs on the CPU only if
 * it allows that.
 */
async function openSession(ort: typeof Ort, modelPath: string, threads: number, backend: string, fallback: boolean) {
  const open = (on: string) =>
    sessions.acquire(`${modelPath}\0${on}\0${threads}`, () => ort.InferenceSession.create(modelPath, { intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: [on] }));
  let gpuFailure: unknown;
  if (backend !== 'cpu') {
    try {
      return { backend, lease: await open(backend) };
    } catch (e) {
      gpuFailure = e;
    }
  }
  let lease: Awaited<ReturnType<typeof open>>;
  try {
    lease = await open('cpu');
  } catch (e) {
    throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `onnxruntime could not load the model: ${errorMessage(e)}`, { cause: e });
  }
  if (gpuFailure === undefined || fallback) return { backend: 'cpu', lease };
  lease.release();
  throw new GridError('GG_ERR_GPU_UNAVAILABLE', `the ${backend} backend could not load the model (the CPU can): ${errorMessage(gpuFailure)}`, { cause: gpuFailure });
}

async function runProbeModel(ort: typeof Ort, backend: string, x: Ort.Tensor): Promise<number[]> {
  const session = await ort.InferenceSession.create(PROBE_MODEL, { executionProviders: [backend], intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const { y } = await session.run({ x });
    return Array.from(y!.data as Float32Array);
  } finally {
    await session.release();
  }
}

function parseInput(raw: unknown): OnnxJobInput {
  const parsed = OnnxJobInput.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new GridError('GG_ERR_INPUT_INVALID', `${firstZodProblem(parsed.error, [], 'input')} (expected {"inputs": {NAME: TENSOR}})`);
}

function refuseNonTensors(session: Ort.InferenceSession): void {
  for (const [side, list] of [['input', session.inputMetadata], ['output', session.outputMetadata]] as const) {
    // A job's tensors travel as a JSON object keyed by name, and a parsed object drops this key.
    if (list.some((m) => m.name === '__proto__')) {
      throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `the model has an ${side} named "__proto__", which a job's JSON cannot carry; rename it in the model`);
    }
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
    // Own names only: a model's input named "toString" must not find Object's.
    const tensor = Object.hasOwn(inputs, meta.name) ? inputs[meta.name] : undefined;
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
