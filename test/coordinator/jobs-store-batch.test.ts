/**
 * The store's many-jobs statements, on every backend: one statement for many
 * jobs must still decide each job on its own (fencing per lease, one result
 * per lease), and hand-backs requeue at once without spending an attempt.
 */
import { describe, expect, it } from 'vitest';
import {
  completeJobs,
  getJob,
  getJobEvents,
  handBackJob,
  insertJobs,
  leaseJobs,
  listQueueHead,
  markRunningMany,
  queuedJobRow,
  tidyJobs,
  type Db,
  type NewJob,
} from '../../src/coordinator/store/index.js';
import { jobIds } from '../../src/coordinator/job-writes.js';
import { backends, useMigratedDb } from '../helpers/backends.js';
import { at, lease, markRunning, newJob as baseJob, T0 } from '../helpers/store-jobs.js';

const model = { sha256: 'b'.repeat(64), size: 42, name: 'm.onnx' };

const newJob = (o: Partial<NewJob> = {}): NewJob =>
  baseJob({ model, input: { inputs: { x: { dtype: 'float32', dims: [1], data: [1] } } }, requirements: { labels: ['batch'] }, ...o });

async function leased(db: Db, n: number, o: Partial<NewJob> = {}): Promise<NewJob[]> {
  const jobs = Array.from({ length: n }, () => newJob(o));
  await insertJobs(db, jobs);
  await leaseJobs(db, jobs.map((j) => lease(j.id, `L-${j.id}`)), at(1));
  return jobs;
}

const steps = async (db: Db, id: string) => (await getJobEvents(db, id)).map((e) => [e.state, e.attempt, e.detail]);

describe('jobIds', () => {
  it('makes ids that sort in the order they were made, within and across milliseconds, and never repeat', () => {
    const make = jobIds();
    const ids = [...Array.from({ length: 500 }, () => make(1000)), make(999), make(1001), make(1001)];
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toMatch(/^j-[0-9a-f]{24}$/);
  });
});

describe.each(backends)('many jobs per statement on $name', (backend) => {
  let db: Db;
  useMigratedDb(backend, (opened) => (db = opened));

  it('inserts a batch in one statement, as rows equal to what it answers, served in the order given', async () => {
    const jobs = Array.from({ length: 50 }, (_, i) => newJob({ priority: 500, input: { n: i } }));
    await insertJobs(db, jobs);
    for (const j of [jobs[0]!, jobs[49]!]) expect(await getJob(db, j.id)).toEqual(queuedJobRow(j));
    expect((await listQueueHead(db, 50)).map((r) => r.id)).toEqual(jobs.map((j) => j.id));
    const head = await listQueueHead(db, 2);
    expect(head).toEqual(jobs.slice(0, 2).map((j) => ({ id: j.id, kind: 'onnx', model: { sha256: model.sha256, size: model.size }, requirements: { labels: ['batch'] }, failedOn: [] })));
    expect(await steps(db, jobs[7]!.id)).toEqual([['queued', 0, 'submitted']]);
    await leaseJobs(db, jobs.map((j) => ({ jobId: j.id, leaseId: `L-${j.id}`, workerId: 'w-1', instanceId: 'c-1', expiresAt: at(90) })), at(1));
  });

  it('inserts all of a batch or none of it', async () => {
    const good = newJob({ priority: 400 });
    // PostgreSQL's text has no place for NUL: the database refuses the whole statement.
    await expect(insertJobs(db, [good, { ...newJob({ priority: 400 }), id: 'j-\u0000' }])).rejects.toThrow();
    expect(await getJob(db, good.id)).toBeNull();
  });

  it('marks many jobs running, each only for its current lease, and records the step once', async () => {
    const [a, b] = await leased(db, 2);
    const answers = await markRunningMany(db, [
      { jobId: a!.id, leaseId: `L-${a!.id}`, at: at(2) },
      { jobId: b!.id, leaseId: 'not-the-lease', at: at(2) },
      { jobId: a!.id, leaseId: `L-${a!.id}`, at: at(3) },
    ]);
    expect(answers).toEqual([true, false, false]);
    expect(await getJob(db, a!.id)).toMatchObject({ state: 'running', startedAt: at(2) });
    expect(await getJob(db, b!.id)).toMatchObject({ state: 'leased', startedAt: null });
    expect((await steps(db, a!.id)).filter(([s]) => s === 'running')).toHaveLength(1);
  });

  it('takes many results in one go: one per lease, stale ones refused, failures retried or failed on their own', async () => {
    const [ok, stale, twice, failing] = await leased(db, 4, { maxAttempts: 2 });
    await markRunning(db, ok!.id, `L-${ok!.id}`, at(2));
    const error = { code: 'GG_ERR_EXECUTOR_CRASHED', message: 'exit 3', retryable: true };
    const answers = await completeJobs(db, [
      { jobId: ok!.id, leaseId: `L-${ok!.id}`, outcome: { ok: true, output: { y: 1 } }, at: at(4) },
      { jobId: stale!.id, leaseId: 'an-old-lease', outcome: { ok: true, output: { y: 2 } }, at: at(4) },
      { jobId: twice!.id, leaseId: `L-${twice!.id}`, outcome: { ok: true, output: 'first' }, at: at(4) },
      { jobId: failing!.id, leaseId: `L-${failing!.id}`, outcome: { ok: false, error }, at: at(4) },
      { jobId: twice!.id, leaseId: `L-${twice!.id}`, outcome: { ok: true, output: 'second' }, at: at(5) },
    ]);
    expect(answers.map((r) => r?.state ?? null)).toEqual(['succeeded', null, 'succeeded', 'queued', null]);
    expect(answers[0]).toMatchObject({ id: ok!.id, attempt: 1, leaseId: null, startedAt: at(2), finishedAt: at(4) });
    expect(await getJob(db, ok!.id)).toMatchObject({ state: 'succeeded', output: { y: 1 } });
    expect(await getJob(db, stale!.id)).toMatchObject({ state: 'leased', output: null });
    expect(await getJob(db, twice!.id)).toMatchObject({ state: 'succeeded', output: 'first', finishedAt: at(4) });
    expect(await getJob(db, failing!.id)).toMatchObject({ state: 'queued', error: { code: 'GG_ERR_EXECUTOR_CRASHED' } });
    expect(await steps(db, twice!.id)).toEqual([
      ['queued', 0, 'submitted'],
      ['leased', 1, null],
      ['succeeded', 1, null],
    ]);
  });

  it('records a start that came with the result before the result, at the time the worker reported it', async () => {
    const [j] = await leased(db, 1);
    const [row] = await completeJobs(db, [{ jobId: j!.id, leaseId: `L-${j!.id}`, outcome: { ok: true, output: 1 }, at: at(6), startedAt: at(5) }]);
    expect(row).toMatchObject({ state: 'succeeded', startedAt: at(5), finishedAt: at(6) });
    const events = await getJobEvents(db, j!.id);
    expect(events.map((e) => [e.state, e.at])).toEqual([
      ['queued', T0],
      ['leased', at(1)],
      ['running', at(5)],
      ['succeeded', at(6)],
    ]);
  });

  it('requeues a handed-back job at once without counting the attempt, and only for the current lease', async () => {
    const [j] = await leased(db, 1, { maxAttempts: 1 });
    await markRunning(db, j!.id, `L-${j!.id}`, at(2));
    expect(await handBackJob(db, j!.id, 'an-old-lease', 'owner is back', at(3))).toBeNull();
    const back = await handBackJob(db, j!.id, `L-${j!.id}`, 'owner is back', at(3));
    expect(back).toMatchObject({ state: 'queued', attempt: 0, leaseId: null, workerId: 'w-1', progress: null });
    expect(await handBackJob(db, j!.id, `L-${j!.id}`, 'owner is back', at(4))).toBeNull();
    expect((await steps(db, j!.id)).at(-1)).toEqual(['queued', 0, 'handed back: owner is back']);
    // Its one attempt is still there to spend: a max-attempts-1 job is leased again, not failed.
    const [again] = await leaseJobs(db, [{ jobId: j!.id, leaseId: 'L-again', workerId: 'w-2', instanceId: 'c-1', expiresAt: at(90) }], at(5));
    expect(again).toMatchObject({ state: 'leased', attempt: 1, workerId: 'w-2' });
  });

  it('refreshes the statistics of the job states, and vacuums', async () => {
    await tidyJobs(db, { vacuum: true });
    const stats = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'jobs' AND attname = 'state'`,
    );
    expect(stats[0]?.n).toBe(1);
  });
});
