/**
 * A job process's memory limit: the figure (pure), and real onnxruntime job
 * processes running a 4-node model that asks for far more than the limit:
 * the process stops itself, the job fails with GG_ERR_WORKER_OUT_OF_MEMORY
 * saying so, and the pool's next job runs as usual.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { JobProcessPool } from '../../../src/worker/executors/index.js';
import { cgroupMemoryLimitBytes, isOverMemoryLimit, jobMemoryLimitBytes, MEMORY_LIMIT_MARK } from '../../../src/worker/executors/memory-limit.js';
import { expandModel } from '../../fixtures/make-onnx.js';
import { makeJob, onnxFixtures, rejection } from './helpers.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

describe('jobMemoryLimitBytes', () => {
  afterEach(() => {
    delete process.env['GOGRID_JOB_MEMORY_LIMIT_MIB'];
  });

  it('gives the job processes half the memory together, shared out among the slots, the cgroup limit if smaller', () => {
    expect(jobMemoryLimitBytes({ totalBytes: 16 * GiB, cgroupLimitBytes: null, slots: 1 })).toBe(8 * GiB);
    expect(jobMemoryLimitBytes({ totalBytes: 16 * GiB, cgroupLimitBytes: null, slots: 4 })).toBe(2 * GiB);
    expect(jobMemoryLimitBytes({ totalBytes: 16 * GiB, cgroupLimitBytes: 4 * GiB, slots: 1 })).toBe(2 * GiB);
    expect(jobMemoryLimitBytes({ totalBytes: null, cgroupLimitBytes: 4 * GiB, slots: 2 })).toBe(1 * GiB);
    // Never below what a runtime needs to start; no figure known, no limit.
    expect(jobMemoryLimitBytes({ totalBytes: 1 * GiB, cgroupLimitBytes: null, slots: 64 })).toBe(256 * MiB);
    expect(jobMemoryLimitBytes({ totalBytes: null, cgroupLimitBytes: null, slots: 1 })).toBeNull();
  });

  it('takes GOGRID_JOB_MEMORY_LIMIT_MIB instead, and refuses a value it cannot use, naming it', () => {
    process.env['GOGRID_JOB_MEMORY_LIMIT_MIB'] = '3000';
    expect(jobMemoryLimitBytes({ totalBytes: 16 * GiB, cgroupLimitBytes: null, slots: 4 })).toBe(3000 * MiB);
    for (const bad of ['12', 'lots', '1.5', '-1']) {
      process.env['GOGRID_JOB_MEMORY_LIMIT_MIB'] = bad;
      expect(() => jobMemoryLimitBytes({ totalBytes: 16 * GiB, cgroupLimitBytes: null, slots: 1 })).toThrow(
        expect.objectContaining({ code: 'GG_ERR_CONFIG_INVALID', message: `GOGRID_JOB_MEMORY_LIMIT_MIB is "${bad}"; it takes a whole number of MiB from 256 to 1073741824` }),
      );
    }
  });

  it("reads a death for memory from the process's last lines", () => {
    expect(isOverMemoryLimit(`x\n${MEMORY_LIMIT_MARK} (700 MiB resident, limit 300 MiB)`)).toBe(true);
    expect(isOverMemoryLimit('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory')).toBe(true);
    expect(isOverMemoryLimit('Segmentation fault')).toBe(false);
  });

  it('reads a cgroup limit where this machine has one, and says none where not', async () => {
    const limit = await cgroupMemoryLimitBytes();
    if (process.platform !== 'linux') expect(limit).toBeNull();
    else expect(limit === null || (Number.isSafeInteger(limit) && limit > 0)).toBe(true);
  });
});

describe('a job process over its limit', () => {
  const fixtures = onnxFixtures();
  const huge = path.join(fixtures.dir, 'expand.onnx');
  // 12000² float32: 550 MiB, against a limit of 300 MiB.
  writeFileSync(huge, expandModel(12_000));
  const pool = new JobProcessPool({ maxIdle: 1, memoryLimitBytes: () => 300 * MiB });
  afterAll(async () => {
    await pool.close();
    fixtures.dispose();
  });
  const opts = (modelPath: string) => ({ modelPath, threads: 1, timeoutMs: 60_000, signal: new AbortController().signal, onProgress: () => {} });
  const x = { inputs: { x: { dtype: 'float32', dims: [1, 1], data: [2] } } };

  it('stops itself, and its job fails with GG_ERR_WORKER_OUT_OF_MEMORY saying what it used and how to change the limit', { timeout: 60_000 }, async () => {
    const e = await rejection(pool.run('onnx', makeJob('onnx', x), opts(huge)));
    expect(e.code).toBe('GG_ERR_WORKER_OUT_OF_MEMORY');
    expect(e.message).toMatch(/used more memory than a job process may on this worker \(\d+ MiB resident, limit 300 MiB; GOGRID_JOB_MEMORY_LIMIT_MIB sets it\)$/);
  });

  it('leaves the pool working: the next job runs in a new process', { timeout: 60_000 }, async () => {
    const out = (await pool.run('onnx', makeJob('onnx', { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } }), opts(fixtures.mlp))) as {
      outputs: { y: { dims: number[] } };
    };
    expect(out.outputs.y.dims).toEqual([1, 3]);
  });

  it('runs the same model to its answer without the limit', { timeout: 60_000 }, async () => {
    const free = new JobProcessPool({ maxIdle: 0 });
    try {
      const out = (await free.run('onnx', makeJob('onnx', x), opts(huge))) as { outputs: { y: { data: number[] } } };
      // The float32 sum of 144 million 2s stops growing exactly where float32 does: that it came back is the point.
      expect(out.outputs.y.data[0]).toBeGreaterThan(2 ** 24);
    } finally {
      await free.close();
    }
  });
});
