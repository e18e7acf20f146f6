/**
 * The GPU backend probe in a real child process: onnxruntime's providers are
 * tried for real (WebGPU on lavapipe here, CUDA without its libraries), a
 * driver's message reaches the report cleaned and bounded, and a driver that
 * crashes the probe leaves the worker with no GPU backend, not without a worker.
 */
import { describe, expect, it } from 'vitest';
import { listSupportedBackends } from 'onnxruntime-node';
import { BackendProbe, GPU_BACKENDS } from '../../../src/protocol/messages.js';
import { probeGpuBackends } from '../../../src/worker/executors/gpu-probe.js';
import { useTestExecutors } from './helpers.js';
import { useLavapipeForWebGpu } from '../../helpers/lavapipe.js';
// The test executors in this process's registry too: the probe asks only about kinds with a probe step.
import './test-executors-preload.js';

describe('probeGpuBackends', () => {
  useTestExecutors();
  useLavapipeForWebGpu();

  it("tries onnxruntime's GPU providers in a child and reports each, in the schema", { timeout: 60_000 }, async () => {
    const found = await probeGpuBackends(['onnx', 'llm', 'test-echo']);
    const listed = new Set(listSupportedBackends().map((b) => b.name));
    expect(found.map((p) => p.backend)).toEqual(GPU_BACKENDS['onnx']!.filter((b) => listed.has(b)));
    for (const p of found) expect(BackendProbe.parse(p)).toMatchObject({ kind: 'onnx' });
    if (process.platform === 'linux') expect(found.find((p) => p.backend === 'cuda')).toMatchObject({ ok: false, detail: expect.stringContaining('see the README') });
  });

  it("cleans and bounds a driver's message", { timeout: 60_000 }, async () => {
    const [webgpu, cuda] = await probeGpuBackends(['test-gpus']);
    expect(webgpu).toEqual({ kind: 'test-gpus', backend: 'webgpu', ok: true, detail: null });
    expect(cuda!.detail).toMatch(/^driver\uFFFD\[31m said no\uFFFD\.+$/);
    expect(cuda!.detail).toHaveLength(500);
  });

  it('finds nothing, saying why, when a driver crashes the probe', { timeout: 60_000 }, async () => {
    let why = '';
    expect(await probeGpuBackends(['onnx', 'test-gpu-crashes'], (w) => (why = w))).toEqual([]);
    expect(why).toMatch(/^the GPU backend probe ended without an answer \(SIGABRT\)/);
  });
});
