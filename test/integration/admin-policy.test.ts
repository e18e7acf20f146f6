/**
 * `gogrid workers pause|resume|policy` against a real coordinator: the
 * override reaches the connected worker, and the coordinator itself stops
 * assigning to a paused worker even when the worker does not apply the pause
 * (a plain `startWorker` here, as an older worker version would be).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminOverride } from '../../src/protocol/index.js';
import { JobInfo } from '../../src/protocol/index.js';
import { writeOnnxFixtures, type OnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, runCli, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';

let c: TestCoordinator;
let fixtures: OnnxFixtures;
beforeAll(async () => {
  c = await startTestCoordinator();
  fixtures = writeOnnxFixtures(await tempDir());
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

async function cli(...args: string[]): Promise<string> {
  const p = runCli([...args, '--data', c.dataDir]);
  const code = await p.exited;
  expect(code, p.stderr()).toBe(0);
  return p.stdout();
}

describe("an administrator's override from the CLI", () => {
  it('pauses a worker (no job reaches it), tells the worker, and resumes it', { timeout: 60_000 }, async () => {
    const w = await startTestWorker(c, { token: await c.createToken() });
    try {
      await w.agent.waitFor('online');
      const id = w.identity.workerId;
      const received: AdminOverride[] = [];
      w.agent.on('adminPolicy', (p) => received.push(p));

      expect(await cli('workers', 'pause', id, '--message', 'Disk swap')).toBe(`worker ${id}: paused (Disk swap)\n`);
      await expect.poll(() => received.at(-1), { timeout: 5000 }).toEqual({ paused: true, message: 'Disk swap' });

      const sha256 = await c.addModel(fixtures.mlp);
      const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } } }));
      await expect.poll(async () => JobInfo.parse(await c.api('GET', `/v1/jobs/${job.id}`)).waitingReason, { timeout: 5000 }).toMatch(/paused/);

      expect(await cli('workers', 'resume', id)).toBe(`worker ${id}: no override: the owner's settings apply\n`);
      expect((await c.finished(job.id)).state).toBe('succeeded');
      expect(received.at(-1)).toEqual({});
    } finally {
      await w.agent.stop();
    }
  });

  it('sets fleet-wide limits that a worker without its own receives at once', { timeout: 60_000 }, async () => {
    const w = await startTestWorker(c, { token: await c.createToken() });
    try {
      await w.agent.waitFor('online');
      const received: AdminOverride[] = [];
      w.agent.on('adminPolicy', (p) => received.push(p));
      expect(await cli('workers', 'policy', '--all', '--preset', 'desktop', '--max-cores', '2')).toBe(
        'every worker without an override of its own: preset desktop, at most 2 cores\n',
      );
      await expect.poll(() => received.at(-1), { timeout: 5000 }).toEqual({ settings: { preset: 'desktop' }, limits: { maxCores: 2 } });
      expect(await cli('workers', 'policy', '--all', '--gpu', 'off')).toBe('every worker without an override of its own: preset desktop, at most 2 cores, GPU off\n');
      await expect.poll(() => received.at(-1), { timeout: 5000 }).toEqual({ settings: { preset: 'desktop' }, limits: { maxCores: 2, useGpu: false } });
      expect(await cli('workers', 'policy', '--all', '--gpu', 'on')).toBe('every worker without an override of its own: preset desktop, at most 2 cores\n');
      expect(await cli('workers', 'policy', '--all', '--owner-settings', '--no-limits')).toBe("every worker without an override of its own: no override: the owner's settings apply\n");
      const bad = runCli(['workers', 'policy', '--all', '--preset', 'turbo', '--data', c.dataDir]);
      expect(await bad.exited).not.toBe(0);
      expect(bad.stderr()).toMatch(/--preset: "turbo" is not desktop or dedicated/);
    } finally {
      await w.agent.stop();
    }
  });
});
