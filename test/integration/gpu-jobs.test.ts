/**
 * GPU jobs end to end on loopback: workers probe onnxruntime's GPU backends
 * at start, the coordinator places a job only where the backend it names
 * worked, and the job runs there on it. The GPU is Mesa's software Vulkan
 * device (lavapipe 25, test/helpers/lavapipe.ts) under WebGPU, counted as a GPU by the worker's
 * `softwareGpu` option (GOGRID_SOFTWARE_GPU); without it the same worker
 * advertises none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobInfo, WorkerList } from '../../src/protocol/api.js';
import { writeOnnxFixtures, type OnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { useLavapipeForWebGpu } from '../helpers/lavapipe.js';

let fixtures: OnnxFixtures;
useLavapipeForWebGpu();
beforeAll(async () => {
  fixtures = writeOnnxFixtures(await tempDir());
});
afterAll(removeTempDirs);

const input = { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, -2, 3, 0.5] } } };

async function submit(c: TestCoordinator, sha256: string, gpu?: Record<string, unknown>): Promise<JobInfo> {
  return JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input, ...(gpu && { requirements: { gpu } }) }));
}

describe('a job that asks for a GPU backend', () => {
  it('runs where that backend passed the probe, waits saying why where none did, and is refused when no such backend exists', { timeout: 120_000 }, async (ctx) => {
    const c = await startTestCoordinator();
    // Its owner's policy, as a host would report it: the GPU may be taken away while the worker runs.
    let gpuOff: string | null = null;
    const gpuWorker = await startTestWorker(c, { token: await c.createToken(), name: 'gpu', jobs: { softwareGpu: true }, status: () => ({ status: 'idle', pausedReason: null, gpuOff }) });
    const cpuWorker = await startTestWorker(c, { token: await c.createToken(), name: 'cpu' });
    try {
      const webgpu = gpuWorker.hardware.backends?.find((b) => b.backend === 'webgpu');
      if (!webgpu?.ok) {
        if (process.env['CI']) expect.fail(`WebGPU does not run here: ${webgpu?.detail ?? 'not probed'} (scripts/lavapipe.sh fetches lavapipe 25; .ci/run runs it)`);
        ctx.skip(`no WebGPU adapter here (${webgpu?.detail ?? 'not probed'})`);
      }
      // Without a GPU the OS lists, the other worker did not even try: it runs ONNX jobs on the CPU only.
      expect(cpuWorker.hardware.backends).toEqual([]);
      await Promise.all([gpuWorker.agent.waitFor('online'), cpuWorker.agent.waitFor('online')]);
      const listed = WorkerList.parse(await c.api('GET', '/v1/workers'));
      expect(listed.find((w) => w.name === 'gpu')?.hardware?.backends).toEqual(gpuWorker.hardware.backends);

      const sha256 = await c.addModel(fixtures.mlp);
      const jobs = await Promise.all(Array.from({ length: 4 }, () => submit(c, sha256, { backend: 'webgpu' })));
      for (const job of await Promise.all(jobs.map((j) => c.finished(j.id, 60_000)))) {
        expect(job.state, job.error?.message).toBe('succeeded');
        expect(job.workerId).toBe(gpuWorker.identity.workerId);
        expect((job.output as { backend: string }).backend).toBe('webgpu');
      }
      // Allowed the CPU, it still goes to the GPU first.
      const fallback = await c.finished((await submit(c, sha256, { backend: 'webgpu', fallback: true })).id, 60_000);
      expect([fallback.workerId, (fallback.output as { backend: string }).backend]).toEqual([gpuWorker.identity.workerId, 'webgpu']);

      // CUDA's probe failed on both: the job waits, and says why.
      const cuda = await submit(c, sha256, { backend: 'cuda' });
      await expect
        .poll(async () => JobInfo.parse(await c.api('GET', `/v1/jobs/${cuda.id}`)).waitingReason, { timeout: 15_000, interval: 100 })
        .toBe('no connected worker can run this job: has no working cuda backend for onnx jobs (2 workers)');
      await c.api('POST', `/v1/jobs/${cuda.id}/cancel`);

      // The owner is back: GPU jobs wait (saying why) while jobs that allow the CPU still run; then they go on.
      // What a host's policy loop does (policy-loop.ts): tell the runner, then the coordinator.
      gpuOff = 'GPU jobs wait until you are away';
      await gpuWorker.runner.setGpuOff(gpuOff);
      gpuWorker.agent.statusChanged();
      // The heartbeat and a submit race: a job sent before the coordinator heard it may still run on the GPU.
      const sent: JobInfo[] = [];
      await expect
        .poll(async () => {
          sent.push(await submit(c, sha256, { backend: 'webgpu' }));
          await new Promise((r) => setTimeout(r, 300));
          return JobInfo.parse(await c.api('GET', `/v1/jobs/${sent.at(-1)!.id}`)).waitingReason;
        }, { timeout: 15_000, interval: 50 })
        .toBe('the eligible worker is keeping jobs off its GPU now (GPU jobs wait until you are away)');
      const cpuJob = await c.finished((await submit(c, sha256, { backend: 'webgpu', fallback: true })).id, 60_000);
      expect((cpuJob.output as { backend: string }).backend).toBe('cpu');
      gpuOff = null;
      await gpuWorker.runner.setGpuOff(null);
      gpuWorker.agent.statusChanged();
      for (const job of sent) {
        const done = await c.finished(job.id, 60_000);
        expect([done.state, (done.output as { backend: string }).backend]).toEqual(['succeeded', 'webgpu']);
      }

      await expect(submit(c, sha256, { backend: 'cuad' })).rejects.toThrow('requirements.gpu.backend: onnx jobs run on cuda, dml, coreml, webgpu or any, not "cuad"');
    } finally {
      await Promise.all([gpuWorker.agent.stop(), cpuWorker.agent.stop()]);
      await c.stop();
    }
  });
});
