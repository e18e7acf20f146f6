/**
 * Job state changes in the store, on every backend: each transition is one
 * conditional statement, so stale leases and concurrent instances cannot
 * move a job twice.
 */
import { describe, expect, it } from 'vitest';
import {
  cancelJob,
  expireLeases,
  expireQueued,
  forgetJobText,
  getJob,
  keepResumeFrom,
  getJobEvents,
  leaseJobs,
  listJobs,
  listQueueHead,
  migrate,
  releaseWorkerLeases,
  renewLeases,
  setWaitingReasons,
  type Db,
} from '../../src/coordinator/store/index.js';
import { backends, useMigratedDb } from '../helpers/backends.js';
import { at, completeJob, insertJob, lease, markRunning, newJob } from '../helpers/store-jobs.js';

async function job(db: Db, opts: { maxAttempts?: number; priority?: number; now?: Date } = {}) {
  return insertJob(db, newJob(opts));
}

describe.each(backends)('jobs on $name', (backend) => {
  let db: Db;
  useMigratedDb(backend, (opened) => (db = opened));

  it('walks queued → leased → running → succeeded and records each step', async () => {
    const j = await job(db);
    expect(j).toMatchObject({ state: 'queued', attempt: 0, leaseId: null });
    const [leased] = await leaseJobs(db, [lease(j.id, 'L1')], at(1));
    expect(leased).toMatchObject({ state: 'leased', attempt: 1, leaseId: 'L1', workerId: 'w-1', input: { inputs: {} } });
    expect(await markRunning(db, j.id, 'L1', at(2))).toBe(true);
    const done = await completeJob(db, j.id, 'L1', { ok: true, output: { outputs: { y: 1 } } }, at(3));
    expect(done).toMatchObject({ state: 'succeeded', progress: 1, finishedAt: at(3), startedAt: at(2) });
    expect((await getJob(db, j.id))?.output).toEqual({ outputs: { y: 1 } });
    expect((await getJobEvents(db, j.id)).map((e) => [e.state, e.attempt])).toEqual([
      ['queued', 0],
      ['leased', 1],
      ['running', 1],
      ['succeeded', 1],
    ]);
  });

  it('forgets the prompt and the answer of a job submitted to be forgotten once it ended, keeping its counts', async () => {
    const llm = (forgetText: boolean) => insertJob(db, newJob({ kind: 'llm', input: { prompt: 'secret plans' }, forgetText }));
    const [forgotten, kept, running] = [await llm(true), await llm(false), await llm(true)];
    await leaseJobs(db, [lease(forgotten.id, 'L1'), lease(kept.id, 'L2'), lease(running.id, 'L3')], at(1));
    await keepResumeFrom(db, [{ jobId: forgotten.id, leaseId: 'L1', resumeFrom: { text: 'The plan', tokens: [1, 2] } }]);
    const output = { text: 'The plan is\u0000 secret', finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 4 } };
    for (const [j, l] of [[forgotten, 'L1'], [kept, 'L2']] as const) await completeJob(db, j.id, l, { ok: true, output }, at(2));
    expect(await forgetJobText(db, { ids: [forgotten.id, kept.id, running.id] })).toBe(1);
    expect(await getJob(db, forgotten.id)).toMatchObject({ input: null, output: { finishReason: 'stop', usage: output.usage }, resumeFrom: null, state: 'succeeded' });
    expect((await getJob(db, forgotten.id))!.output).not.toHaveProperty('text');
    expect(await getJob(db, kept.id)).toMatchObject({ input: { prompt: 'secret plans' }, output });
    // Once is enough; a job still running keeps its text until it ends, and the sweep finds it then.
    expect(await forgetJobText(db, { ids: [forgotten.id] })).toBe(0);
    expect(await forgetJobText(db, { endedBefore: at(100) })).toBe(0);
    await completeJob(db, running.id, 'L3', { ok: false, error: { code: 'GG_ERR_INPUT_INVALID', message: 'too long', retryable: false } }, at(3));
    expect(await forgetJobText(db, { endedBefore: at(3) })).toBe(0);
    expect(await forgetJobText(db, { endedBefore: at(4) })).toBe(1);
    expect(await getJob(db, running.id)).toMatchObject({ input: null, state: 'failed', error: { code: 'GG_ERR_INPUT_INVALID' } });
  });

  it('accepts exactly one result: a second one, or one for an old lease, is stale', async () => {
    const j = await job(db);
    await leaseJobs(db, [lease(j.id, 'old')], at(1));
    await releaseWorkerLeases(db, 'w-1', 'c-1', { code: 'GG_ERR_CONNECTION_CLOSED', message: 'worker disconnected' }, at(2));
    await leaseJobs(db, [lease(j.id, 'new', { workerId: 'w-2' })], at(3));
    expect(await completeJob(db, j.id, 'old', { ok: true, output: 'late' }, at(4))).toBeNull();
    expect(await markRunning(db, j.id, 'old', at(4))).toBe(false);
    expect(await completeJob(db, j.id, 'new', { ok: true, output: 'fresh' }, at(5))).not.toBeNull();
    expect(await completeJob(db, j.id, 'new', { ok: true, output: 'again' }, at(6))).toBeNull();
    expect(await getJob(db, j.id)).toMatchObject({ state: 'succeeded', output: 'fresh', attempt: 2, workerId: 'w-2' });
  });

  it('fences a failure as it fences a success: one for an old lease, or after the result, changes nothing', async () => {
    const j = await job(db, { maxAttempts: 5 });
    const fatal = { ok: false as const, error: { code: 'GG_ERR_INPUT_INVALID', message: 'late', retryable: false } };
    await leaseJobs(db, [lease(j.id, 'old')], at(1));
    await releaseWorkerLeases(db, 'w-1', 'c-1', { code: 'GG_ERR_CONNECTION_CLOSED', message: 'worker disconnected' }, at(2));
    await leaseJobs(db, [lease(j.id, 'new', { workerId: 'w-2' })], at(3));
    expect(await completeJob(db, j.id, 'old', fatal, at(4))).toBeNull();
    expect(await getJob(db, j.id)).toMatchObject({ state: 'leased', leaseId: 'new', workerId: 'w-2', error: { message: 'worker disconnected' } });

    expect(await completeJob(db, j.id, 'new', { ok: true, output: 'fresh' }, at(5))).not.toBeNull();
    expect(await completeJob(db, j.id, 'new', fatal, at(6))).toBeNull();
    expect(await getJob(db, j.id)).toMatchObject({ state: 'succeeded', output: 'fresh', error: null });
    expect((await getJobEvents(db, j.id)).map((e) => e.state)).toEqual(['queued', 'leased', 'queued', 'leased', 'succeeded']);
  });

  it('leases a job once when two instances try at the same moment', async () => {
    const j = await job(db);
    const results = await Promise.all(
      ['A', 'B', 'C', 'D'].map((x) => leaseJobs(db, [lease(j.id, `L-${x}`, { instanceId: `c-${x}` })], at(1))),
    );
    expect(results.flat()).toHaveLength(1);
  });

  it('requeues a retryable failure while attempts remain, then fails with the last error', async () => {
    const j = await job(db, { maxAttempts: 2 });
    const error = { code: 'GG_ERR_EXECUTOR_CRASHED', message: 'exit 3', retryable: true };
    await leaseJobs(db, [lease(j.id, 'L1')], at(1));
    expect(await completeJob(db, j.id, 'L1', { ok: false, error }, at(2))).toMatchObject({ state: 'queued', error: { code: 'GG_ERR_EXECUTOR_CRASHED' } });
    await leaseJobs(db, [lease(j.id, 'L2')], at(3));
    const failed = await completeJob(db, j.id, 'L2', { ok: false, error: { ...error, message: 'exit 4' } }, at(4));
    expect(failed).toMatchObject({ state: 'failed', attempt: 2, error: { message: 'exit 4' }, finishedAt: at(4) });
  });

  it('remembers the worker each requeued attempt failed on, for the scheduler to prefer another', async () => {
    const j = await job(db, { maxAttempts: 3 });
    const error = { code: 'GG_ERR_EXECUTOR_CRASHED', message: 'exit 3', retryable: true };
    await leaseJobs(db, [lease(j.id, 'L1', { workerId: 'w-a' })], at(1));
    await completeJob(db, j.id, 'L1', { ok: false, error }, at(2));
    expect((await listQueueHead(db, 10)).find((q) => q.id === j.id)?.failedOn).toEqual(['w-a']);
    await leaseJobs(db, [lease(j.id, 'L2', { workerId: 'w-b' })], at(3));
    await completeJob(db, j.id, 'L2', { ok: false, error }, at(4));
    expect((await listQueueHead(db, 10)).find((q) => q.id === j.id)?.failedOn).toEqual(['w-a', 'w-b']);
  });

  it('fails a non-retryable error at once', async () => {
    const j = await job(db, { maxAttempts: 5 });
    await leaseJobs(db, [lease(j.id, 'L1')], at(1));
    const r = await completeJob(db, j.id, 'L1', { ok: false, error: { code: 'GG_ERR_INPUT_INVALID', message: 'x', retryable: false } }, at(2));
    expect(r).toMatchObject({ state: 'failed', attempt: 1 });
  });

  it('releases every lease of a worker that went away, and only that worker on that instance', async () => {
    const [a, b, c] = [await job(db), await job(db), await job(db)];
    await leaseJobs(db, [lease(a.id, 'La', { workerId: 'w-gone' }), lease(b.id, 'Lb', { workerId: 'w-gone' }), lease(c.id, 'Lc', { workerId: 'w-stays' })], at(1));
    const released = await releaseWorkerLeases(db, 'w-gone', 'c-1', { code: 'GG_ERR_CONNECTION_CLOSED', message: 'gone' }, at(2));
    expect(released.map((r) => r.id).sort()).toEqual([a.id, b.id].sort());
    expect(released.every((r) => r.state === 'queued')).toBe(true);
    expect((await getJob(db, c.id))?.state).toBe('leased');
  });

  it('spares the leases a worker\'s new session already holds', async () => {
    const [old, fresh] = [await job(db), await job(db)];
    await leaseJobs(db, [lease(old.id, 'L-old', { workerId: 'w-re' }), lease(fresh.id, 'L-new', { workerId: 'w-re' })], at(1));
    const released = await releaseWorkerLeases(db, 'w-re', 'c-1', { code: 'GG_ERR_CONNECTION_CLOSED', message: 'reconnected' }, at(2), ['L-new']);
    expect(released.map((r) => r.id)).toEqual([old.id]);
    expect(await getJob(db, fresh.id)).toMatchObject({ state: 'leased', leaseId: 'L-new' });
  });

  it('expires leases nobody renewed, and renewal keeps a lease alive', async () => {
    const [kept, lost] = [await job(db), await job(db)];
    await leaseJobs(db, [lease(kept.id, 'Lk', { expiresAt: at(10) }), lease(lost.id, 'Ll', { expiresAt: at(10) })], at(1));
    await renewLeases(db, [{ jobId: kept.id, leaseId: 'Lk', progress: 0.5 }, { jobId: lost.id, leaseId: 'wrong', progress: 0.9 }], at(100));
    const expired = await expireLeases(db, at(50));
    expect(expired.map((r) => r.id)).toContain(lost.id);
    expect(expired.map((r) => r.id)).not.toContain(kept.id);
    expect(await getJob(db, kept.id)).toMatchObject({ state: 'leased', progress: 0.5, leaseExpiresAt: at(100) });
  });

  it('fails queued jobs past their queue deadline with why they waited, and leaves every other job alone', async () => {
    // Other tests' jobs stay queued in this database: deadlines far from theirs (none) keep them out.
    const waiting = await insertJob(db, newJob({ queueDeadline: at(100) }));
    const noDeadline = await insertJob(db, newJob());
    const taken = await insertJob(db, newJob({ queueDeadline: at(100) }));
    const later = await insertJob(db, newJob({ queueDeadline: at(500) }));
    await leaseJobs(db, [lease(taken.id, 'Lt')], at(1));
    await setWaitingReasons(db, [{ jobId: waiting.id, reason: 'no worker runs llm jobs' }]);
    expect(await expireQueued(db, at(99))).toEqual([]);
    const failed = await expireQueued(db, at(101));
    expect(failed.map((r) => r.id)).toEqual([waiting.id]);
    expect(await getJob(db, waiting.id)).toMatchObject({
      state: 'failed',
      finishedAt: at(101),
      error: { code: 'GG_ERR_NO_WORKER_AVAILABLE', message: 'no worker took it within its queue timeout of 100 s; it was waiting because no worker runs llm jobs' },
    });
    expect((await getJobEvents(db, waiting.id)).map((e) => [e.state, e.detail])).toEqual([
      ['queued', 'submitted'],
      ['failed', 'queue timeout'],
    ]);
    expect((await getJob(db, noDeadline.id))?.state).toBe('queued');
    expect((await getJob(db, taken.id))?.state).toBe('leased');
    expect((await getJob(db, later.id))?.state).toBe('queued');
    expect((await getJob(db, later.id))?.queueDeadline).toEqual(at(500));
  });

  it('cancels queued and running jobs, returning who ran it; a result after cancel is stale', async () => {
    const queued = await job(db);
    expect(await cancelJob(db, queued.id, at(1))).toMatchObject({ state: 'queued' });
    expect((await getJob(db, queued.id))?.state).toBe('canceled');
    expect(await cancelJob(db, queued.id, at(2))).toBeNull();

    const running = await job(db);
    await leaseJobs(db, [lease(running.id, 'L1', { workerId: 'w-9' })], at(1));
    await markRunning(db, running.id, 'L1', at(2));
    expect(await cancelJob(db, running.id, at(3))).toMatchObject({ state: 'running', workerId: 'w-9', leaseId: 'L1' });
    expect(await completeJob(db, running.id, 'L1', { ok: true, output: 1 }, at(4))).toBeNull();
    expect(await getJob(db, running.id)).toMatchObject({ state: 'canceled', error: { code: 'GG_ERR_JOB_CANCELED' } });
    expect(await cancelJob(db, 'j-unknown', at(5))).toBeNull();
  });

  it('serves the queue by priority, then age, and keeps waiting reasons', async () => {
    const fresh = await backend.open();
    try {
      await migrate(fresh.db);
      const low = await job(fresh.db, { priority: 0, now: at(1) });
      const high = await job(fresh.db, { priority: 5, now: at(2) });
      const older = await job(fresh.db, { priority: 0, now: at(0) });
      expect((await listQueueHead(fresh.db, 10)).map((j) => j.id)).toEqual([high.id, older.id, low.id]);
      await setWaitingReasons(fresh.db, [{ jobId: low.id, reason: 'no worker runs onnx jobs' }]);
      expect((await getJob(fresh.db, low.id))?.waitingReason).toBe('no worker runs onnx jobs');
      const [leased] = await leaseJobs(fresh.db, [lease(low.id, 'L')], at(3));
      expect(leased?.waitingReason).toBeNull();
      expect((await listJobs(fresh.db, { state: 'queued', limit: 10 })).map((j) => j.id).sort()).toEqual([high.id, older.id].sort());
      expect((await listJobs(fresh.db, { limit: 10 }))[0]).not.toHaveProperty('input', expect.anything());
    } finally {
      await fresh.dispose();
    }
  });
});
