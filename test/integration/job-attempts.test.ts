/**
 * Where a job's attempts run, on a real coordinator and real workers with
 * the test-only executors in their job processes: a job whose attempt
 * crashes its job process (`test-crash`) goes to a worker it has not crashed
 * on; a worker busy with a job (`test-spin`) heartbeats at the busy interval,
 * so the short busy timeout that catches a killed worker never drops it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../worker/executors/test-executors-preload.js';
import { applyTestExecutorsEnv } from '../worker/executors/test-executors.js';
import { JobInfo } from '../../src/protocol/api.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';

let c: TestCoordinator;
let workers: Awaited<ReturnType<typeof startTestWorker>>[] = [];
let restoreEnv = () => undefined as void;

beforeAll(async () => {
  // Job processes inherit it: they offer the test executors too.
  restoreEnv = applyTestExecutorsEnv();
  c = await startTestCoordinator();
  workers = await Promise.all([0, 1].map(async () => startTestWorker(c, { token: await c.createToken() })));
  await within(20_000, 'both workers online', Promise.all(workers.map((w) => w.agent.waitFor('online'))));
}, 60_000);

afterAll(async () => {
  restoreEnv();
  await Promise.all(workers.map(async (w) => (await w.agent.stop(), await w.closed)));
  await c?.stop();
  await removeTempDirs();
});

describe('retrying a crashed job', () => {
  it('runs each attempt on a worker the job has not crashed on while there is one', async () => {
    // A stored model is all the job needs; test-crash never reads it.
    const sha256 = await c.addModel(writeOnnxFixtures(await tempDir()).mlp);
    const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { kind: 'test-crash', model: { sha256 }, input: { how: 'exit' }, maxAttempts: 2 }));
    const done = await c.finished(job.id, 30_000);
    expect(done).toMatchObject({ state: 'failed', attempt: 2, error: { code: 'GG_ERR_EXECUTOR_CRASHED' } });
    const { events } = JobInfo.parse(await c.api('GET', `/v1/jobs/${job.id}`));
    const ranOn = (attempt: number) => events!.find((e) => e.state === 'leased' && e.attempt === attempt)?.workerId;
    expect(ranOn(1)).toBeDefined();
    expect(ranOn(2)).toBeDefined();
    expect(ranOn(2)).not.toBe(ranOn(1));
  });
});

describe('busy heartbeats', () => {
  it('keep a worker that runs a job for longer than the busy timeout online, its job finishing there', async () => {
    // The idle timeout is out of reach here; only the busy one (1 s) can drop the worker.
    const busyCoordinator = await startTestCoordinator({ heartbeat: { heartbeatIntervalSecs: 30, heartbeatTimeoutSecs: 90 }, busyHeartbeat: { intervalSecs: 0.2, timeoutSecs: 1 } });
    const w = await startTestWorker(busyCoordinator, { token: await busyCoordinator.createToken(), maxIdleTimeoutMs: 90_000 });
    try {
      await within(20_000, 'the worker online', w.agent.waitFor('online'));
      const sha256 = await busyCoordinator.addModel(writeOnnxFixtures(await tempDir()).mlp);
      const job = JobInfo.parse(await busyCoordinator.api('POST', '/v1/jobs', { kind: 'test-spin', model: { sha256 }, input: { cpuMs: 2500 }, maxAttempts: 1 }));
      const done = await busyCoordinator.finished(job.id, 30_000);
      expect(done).toMatchObject({ state: 'succeeded', attempt: 1 });
      expect(w.agent.state).toMatchObject({ state: 'online' });
    } finally {
      await w.agent.stop();
      await w.closed;
      await busyCoordinator.stop();
    }
  });
});
