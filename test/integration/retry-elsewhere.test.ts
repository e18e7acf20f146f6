/**
 * A job whose attempt crashes its job process goes, for its next attempt, to
 * a worker it has not crashed on: a real coordinator, two real workers, and
 * the test-only executor `test-crash` (it exits without a result) in their
 * job processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../worker/executors/test-executors-preload.js';
import { TEST_EXECUTORS_ENV } from '../worker/executors/test-executors.js';
import { JobInfo } from '../../src/protocol/api.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';

let c: TestCoordinator;
let workers: Awaited<ReturnType<typeof startTestWorker>>[] = [];
const savedOptions = process.env['NODE_OPTIONS'];

beforeAll(async () => {
  // Job processes inherit it: they offer the test executors too.
  process.env['NODE_OPTIONS'] = `${savedOptions ?? ''} ${TEST_EXECUTORS_ENV.NODE_OPTIONS}`.trim();
  c = await startTestCoordinator();
  workers = await Promise.all([0, 1].map(async () => startTestWorker(c, { token: await c.createToken() })));
  await within(20_000, 'both workers online', Promise.all(workers.map((w) => w.agent.waitFor('online'))));
}, 60_000);

afterAll(async () => {
  if (savedOptions === undefined) delete process.env['NODE_OPTIONS'];
  else process.env['NODE_OPTIONS'] = savedOptions;
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
