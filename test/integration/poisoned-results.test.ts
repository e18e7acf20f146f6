/**
 * One bad result must not take the grid down (issue 11, defect 1): a result
 * holding NUL characters is stored and read back exactly; a result the
 * protocol refuses (lone surrogates, hostile nesting) closes only its own
 * worker's session; one that is not what its job's kind produces fails only
 * its own attempt; and none of it leaves a rejection unhandled or disturbs the
 * results sent beside it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JobInfo } from '../../src/protocol/api.js';
import { parseCoordinatorMessage } from '../../src/protocol/messages.js';
import { modelsDir } from '../../src/coordinator/models.js';
import { enroll } from '../../src/worker/enroll.js';
import type { WorkerIdentity } from '../../src/worker/identity.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { rawWorker, type RawWorker } from '../helpers/raw-worker.js';

let c: TestCoordinator;
let identity: WorkerIdentity;
let sha256: string;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  c = await startTestCoordinator();
  identity = await enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() });
  sha256 = await c.addModel(writeOnnxFixtures(await tempDir()).identity);
});

afterAll(async () => {
  await c.stop();
  await removeTempDirs();
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled, 'a rejection went unhandled').toEqual([]);
});

const labels = (data: string[]) => ({ outputs: { label: { dtype: 'string', dims: [data.length], data } } });
/** Fixed-width labels, as a model with string outputs returns them. */
const PADDED = labels(['cat\0\0\0\0\0', 'dog\0\0\0\0\0', '\0'.repeat(8)]);
const GOOD = labels(['ok']);
const deep = (n: number): unknown => (n === 0 ? 'bottom' : { d: deep(n - 1) });

async function submit(o: { maxAttempts?: number } = {}): Promise<string> {
  const job = JobInfo.parse(
    await c.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1], data: [1] } } }, maxAttempts: o.maxAttempts ?? 3 }),
  );
  return job.id;
}

async function withWorker<T>(fn: (w: RawWorker) => Promise<T>): Promise<T> {
  const w = await rawWorker(c, identity, { executors: ['onnx'], slots: 4 });
  try {
    return await fn(w);
  } finally {
    await w.close();
  }
}

const result = (assign: { job: { jobId: string }; leaseId: string }, output: unknown) => ({
  type: 'job.result',
  jobId: assign.job.jobId,
  leaseId: assign.leaseId,
  runMs: 1,
  outcome: { ok: true, output },
});

describe('a result with NUL characters', () => {
  it('is stored and read back exactly, and fails nothing sent beside it', async () => {
    const [a, b] = [await submit(), await submit()];
    await withWorker(async (w) => {
      const [x, y] = [await w.next('job.assign'), await w.next('job.assign')];
      // Both in one turn: they reach the store in one batched write.
      await Promise.all([w.send(result(x, PADDED)), w.send(result(y, GOOD))]);
      const done = await Promise.all([c.finished(a), c.finished(b)]);
      const byId = new Map(done.map((j) => [j.id, j]));
      expect(byId.get(x.job.jobId)).toMatchObject({ state: 'succeeded', output: PADDED });
      expect(byId.get(y.job.jobId)).toMatchObject({ state: 'succeeded', output: GOOD });
    });
  });
});

describe('a result the protocol refuses', () => {
  it.each([
    ['a lone surrogate in a string tensor', labels(['\ud800']), /outcome\.output: outputs\.label\.data\.0: contains a lone surrogate \(U\+D800\)/],
    // 1,000 levels: deeper, and the test's own JSON.stringify runs out of stack in a vitest worker (the coordinator's JSON.parse does not).
    ['JSON nested 1,000 deep', deep(1000), /outcome\.output: .*nested more than 64 deep/],
  ])('(%s) closes only that session with an error frame naming the field; the job runs again', async (_name, output, message) => {
    const id = await submit();
    await withWorker(async (w) => {
      const assign = await w.next('job.assign');
      expect(assign.job.jobId).toBe(id);
      await w.send(result(assign, output));
      const error = await w.next('error');
      expect(error).toMatchObject({ code: 'GG_ERR_FRAME_INVALID', fatal: true });
      expect(error.message).toMatch(message);
    });
    // The coordinator is up, and the job is queued for another attempt, then done by an honest worker.
    await withWorker(async (w) => {
      const again = await w.next('job.assign');
      expect(again).toMatchObject({ job: { jobId: id, attempt: 2 } });
      await w.send(result(again, GOOD));
      expect(await c.finished(id)).toMatchObject({ state: 'succeeded', output: GOOD });
    });
  });
});

describe('a result that is not what the job kind produces', () => {
  it('fails only its attempt with GG_ERR_OUTPUT_INVALID, and the session goes on', async () => {
    const id = await submit({ maxAttempts: 1 });
    await withWorker(async (w) => {
      const assign = await w.next('job.assign');
      await w.send(result(assign, { outputs: { y: { dtype: 'float32', dims: [3], data: [1] } } }));
      const job = await c.finished(id);
      expect(job).toMatchObject({ state: 'failed', error: { code: 'GG_ERR_OUTPUT_INVALID' } });
      expect(job.error?.message).toMatch(/output\.outputs\.y: dims \[3\] need 3 values, data has 1/);
      // Still connected and served: the next job reaches the same session.
      const next = await submit();
      const assigned = await w.next('job.assign');
      expect(assigned.job.jobId).toBe(next);
      await w.send(result(assigned, GOOD));
      expect(await c.finished(next)).toMatchObject({ state: 'succeeded' });
    });
  });
});

describe('a model an older version stored with a NUL in its name', () => {
  it('still gets its jobs to a worker, its name made readable', async () => {
    // Written into the model store as an older version did, without the API's check of the name.
    const bytes = await readFile(writeOnnxFixtures(await tempDir()).mlp);
    const sha = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(modelsDir(c.dataDir), sha), bytes);
    await writeFile(join(modelsDir(c.dataDir), `${sha}.json`), JSON.stringify({ sha256: sha, size: bytes.length, name: 'old\u0000name.onnx', addedAt: new Date().toISOString() }));
    const id = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256: sha }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } } })).id;
    await withWorker(async (w) => {
      const assign = await w.next('job.assign');
      // What a real worker does with the frame: parse it.
      expect(parseCoordinatorMessage(assign)).toMatchObject({ job: { jobId: id, model: { name: 'old\ufffdname.onnx' } } });
      await w.send(result(assign, GOOD));
      expect(await c.finished(id)).toMatchObject({ state: 'succeeded' });
    });
  });
});
