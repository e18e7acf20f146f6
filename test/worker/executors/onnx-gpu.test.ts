/**
 * ONNX jobs on a GPU backend, for real: onnxruntime's WebGPU execution
 * provider on Mesa's software Vulkan device (lavapipe 25, which
 * scripts/lavapipe.sh fetches on Debian 12, whose own 22.3 Dawn refuses). The CUDA
 * provider's libraries are not installed here, so its probe failing is a
 * real failure too. Where no WebGPU adapter exists the WebGPU cases skip,
 * and fail under CI.
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { type GridError } from '../../../src/protocol/errors.js';
import { GPU_BACKENDS, type JobRequirements } from '../../../src/protocol/messages.js';
import { listSupportedBackends } from 'onnxruntime-node';
import type { TensorJson } from '../../../src/protocol/tensor.js';
import { onnxBackendFor, onnxExecutor } from '../../../src/worker/executors/onnx.js';
import { PROBE_MODEL } from '../../../src/worker/executors/probe-model.js';
import type { BackendTrial } from '../../../src/worker/executors/types.js';
import { MLP, mlpModel } from '../../fixtures/make-onnx.js';
import { closeJobProcesses, makeJob, onnxFixtures, rejection, runJob } from './helpers.js';
import { useLavapipeForWebGpu } from '../../helpers/lavapipe.js';

const models = onnxFixtures();
let trials: BackendTrial[];
useLavapipeForWebGpu();
beforeAll(async () => {
  trials = await onnxExecutor.probeBackends!();
}, 60_000);
afterAll(async () => {
  await closeJobProcesses();
  models.dispose();
});

function needWebGpu(ctx: TestContext): void {
  const webgpu = trials.find((t) => t.backend === 'webgpu');
  if (webgpu?.ok) return;
  const why = webgpu ? webgpu.detail : 'this onnxruntime build has no WebGPU provider';
  if (process.env['CI']) expect.fail(`WebGPU does not run here: ${why} (scripts/lavapipe.sh fetches lavapipe 25; .ci/run runs it)`);
  ctx.skip(`no WebGPU adapter here: ${why}`);
}

const x = [1, -2, 3, 0.5];
const input = { inputs: { x: { dtype: 'float32', dims: [1, 4], data: x } } };
/** y = relu(x · w1 + b1) · w2 + b2, in float64. */
const want = MLP.b2.map((b, k) => b + MLP.b1.map((b1, j) => Math.max(0, b1 + x.reduce((s, xi, i) => s + xi * MLP.w1[i]![j]!, 0))).reduce((s, h, j) => s + h * MLP.w2[j]![k]!, 0));

function run(modelPath: string, gpu: JobRequirements['gpu'], gpuBackends: string[]) {
  const job = makeJob('onnx', input, { requirements: gpu ? { gpu } : {} });
  return onnxExecutor.run(job, { modelPath, threads: 1, slots: 1, gpuBackends, signal: new AbortController().signal, onProgress: () => {} }) as Promise<{
    outputs: Record<string, TensorJson>;
    backend: string;
  }>;
}

describe('the probe model', () => {
  it('is the MLP fixture, byte for byte', () => {
    expect(Buffer.compare(PROBE_MODEL, Buffer.from(mlpModel()))).toBe(0);
  });
});

describe('probeBackends', () => {
  it("tries every GPU backend this onnxruntime build has for the platform, the CPU's answer as the reference", () => {
    // Whatever the platform: here webgpu and cuda; on Windows dml and webgpu; on a Mac coreml and webgpu.
    const listed = new Set(listSupportedBackends().map((b) => b.name));
    expect(trials.map((t) => t.backend)).toEqual(GPU_BACKENDS['onnx']!.filter((b) => listed.has(b)));
    for (const t of trials) expect(t.ok ? t.detail : typeof t.detail).toBe(t.ok ? null : 'string');
  });

  it.runIf(process.platform === 'linux')('reports a provider whose libraries are missing as failed, with the loader error (CUDA here)', () => {
    const cuda = trials.find((t) => t.backend === 'cuda');
    expect(cuda).toEqual({ backend: 'cuda', ok: false, detail: expect.stringMatching(/shared library/i) });
  });

  it('runs the test model on WebGPU where an adapter exists', (ctx) => {
    needWebGpu(ctx);
    expect(trials.find((t) => t.backend === 'webgpu')).toEqual({ backend: 'webgpu', ok: true, detail: null });
  });
});

describe('a job on the GPU backend it asks for', () => {
  it('runs on WebGPU, with the CPU answer within float32 tolerance, and says so in its output', async (ctx) => {
    needWebGpu(ctx);
    for (const gpu of [{ backend: 'webgpu' }, { backend: 'any' }, {}]) {
      const out = await run(models.mlp, gpu, ['webgpu']);
      expect(out.backend).toBe('webgpu');
      want.forEach((w, k) => expect(out.outputs['y']!.data![k]).toBeCloseTo(w, 4));
    }
    // No GPU asked for: the CPU, even where a GPU works.
    expect((await run(models.mlp, undefined, ['webgpu'])).backend).toBe('cpu');
  });

  it('runs through a job process too (the backends travel with the run message)', async (ctx) => {
    needWebGpu(ctx);
    const job = makeJob('onnx', input, { requirements: { gpu: { backend: 'webgpu' } } });
    const out = (await runJob('onnx', job, { modelPath: models.mlp, threads: 1, gpuBackends: ['webgpu'], timeoutMs: 60_000, signal: new AbortController().signal, onProgress: () => {} })) as { backend: string };
    expect(out.backend).toBe('webgpu');
  });

  it('never falls back to the CPU silently: refused without gpu.fallback, on the CPU (and saying so) with it', async () => {
    const refused = await rejection(run(models.mlp, { backend: 'cuda' }, ['webgpu']));
    expect(refused.code).toBe('GG_ERR_GPU_UNAVAILABLE');
    expect(refused.message).toBe('no working cuda backend for ONNX jobs on this worker (it has webgpu), and the job does not allow the CPU (gpu.fallback)');
    expect((await run(models.mlp, { backend: 'cuda', fallback: true }, ['webgpu'])).backend).toBe('cpu');
    expect((await run(models.mlp, { fallback: true }, [])).backend).toBe('cpu');
  });

  it('tells a GPU that fails at load time (after a good probe) from a model nobody can load', async () => {
    // CUDA's libraries are missing here: the same failure as a driver that broke after the worker's probe.
    const failed = await rejection(run(models.mlp, { backend: 'cuda' }, ['cuda']));
    expect(failed.code).toBe('GG_ERR_GPU_UNAVAILABLE');
    expect(failed.message).toMatch(/^the cuda backend could not load the model \(the CPU can\): /);
    expect((await run(models.mlp, { backend: 'cuda', fallback: true }, ['cuda'])).backend).toBe('cpu');
    const notOnnx = await rejection(run(models.sequenceInput.replace(/[^/]+$/, 'missing.onnx'), { backend: 'cuda' }, ['cuda']));
    expect(notOnnx.code).toBe('GG_ERR_MODEL_UNSUPPORTED');
  });
});

describe('onnxBackendFor: which backend a job runs on here', () => {
  it.each<[string, JobRequirements['gpu'], string[], string | GridError['code']]>([
    ['no GPU asked for', undefined, ['cuda', 'webgpu'], 'cpu'],
    ['any: the best there', {}, ['cuda', 'webgpu'], 'cuda'],
    ['"any" named', { backend: 'any' }, ['webgpu'], 'webgpu'],
    ['a named one there', { backend: 'webgpu' }, ['cuda', 'webgpu'], 'webgpu'],
    ['a named one missing', { backend: 'dml' }, ['webgpu'], 'GG_ERR_GPU_UNAVAILABLE'],
    ['a named one missing, CPU allowed', { backend: 'dml', fallback: true }, ['webgpu'], 'cpu'],
    ['any, none there', {}, [], 'GG_ERR_GPU_UNAVAILABLE'],
    ['any, none there, CPU allowed', { fallback: true }, [], 'cpu'],
  ])('%s', (_, gpu, working, expected) => {
    let got: string;
    try {
      got = onnxBackendFor(gpu, working);
    } catch (e) {
      got = (e as GridError).code;
    }
    expect(got).toBe(expected);
  });
});
