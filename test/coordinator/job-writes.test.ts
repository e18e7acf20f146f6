/**
 * The dispatcher's gathered writes, on every backend: writes asked for in one
 * turn go out as one statement per kind, each still answered on its own, and
 * none is answered before its statement has committed.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { JobWrites, jobIds } from '../../src/coordinator/job-writes.js';
import { getJob, getJobEvents, insertJobs, leaseJobs, type Db, type NewJob } from '../../src/coordinator/store/index.js';
import { backends, useMigratedDb } from '../helpers/backends.js';

const T0 = new Date('2026-02-01T00:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const nextId = jobIds();

const newJob = (input: unknown = { inputs: {} }): NewJob => ({
  id: nextId(Date.now()),
  kind: 'onnx',
  model: { sha256: 'c'.repeat(64), size: 1, name: 'm.onnx' },
  input,
  requirements: {},
  timeoutMs: 1000,
  maxAttempts: 3,
  priority: 0,
  now: T0,
});

/** The real database, with each statement's first words recorded: how many statements did a flush take? */
function recording(db: Db): { db: Db; statements: string[] } {
  const statements: string[] = [];
  const wrapped: Db = {
    kind: db.kind,
    query: (text, params) => {
      statements.push(text.replace(/\s+/g, ' ').trim().slice(0, 60));
      return db.query(text, params);
    },
    exec: (sql) => db.exec(sql),
    transaction: (fn) => db.transaction(fn),
    close: () => db.close(),
  };
  return { db: wrapped, statements };
}

describe.each(backends)('JobWrites on $name', (backend) => {
  let raw: Db;
  let db: Db;
  let statements: string[];
  let writes: JobWrites;
  useMigratedDb(backend, (opened) => (raw = opened));
  beforeEach(() => {
    ({ db, statements } = recording(raw));
    writes = new JobWrites(db);
  });

  async function leasedJobs(n: number): Promise<NewJob[]> {
    const jobs = Array.from({ length: n }, () => newJob());
    await insertJobs(raw, jobs);
    await leaseJobs(raw, jobs.map((j) => ({ jobId: j.id, leaseId: `L-${j.id}`, workerId: 'w-1', instanceId: 'c-1', expiresAt: at(90) })), at(1));
    return jobs;
  }

  it('inserts the jobs of several submits made in one turn with one statement', async () => {
    const batches = [[newJob(), newJob()], [newJob()], [newJob(), newJob(), newJob()]];
    await Promise.all(batches.map((b) => writes.insert(b)));
    expect(statements).toHaveLength(1);
    for (const j of batches.flat()) expect(await getJob(raw, j.id)).toMatchObject({ state: 'queued' });
  });

  it('fails only the submit the database refuses, when several went out together', async () => {
    const good = [newJob(), newJob()];
    // PostgreSQL's text refuses a NUL (the API never lets one through; here it stands for any refused row).
    const bad = [newJob(), { ...newJob(), id: 'j-\u0000' }];
    const [a, b] = await Promise.allSettled([writes.insert(good), writes.insert(bad)]);
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('rejected');
    for (const j of good) expect(await getJob(raw, j.id)).not.toBeNull();
    expect(await getJob(raw, bad[0]!.id)).toBeNull();
  });

  it('takes results from many leases with one statement, answering each: stale ones get null', async () => {
    const jobs = await leasedJobs(5);
    const answers = await Promise.all([
      ...jobs.map((j, i) => writes.complete({ jobId: j.id, leaseId: `L-${j.id}`, outcome: { ok: true, output: i }, at: at(3) })),
      writes.complete({ jobId: jobs[0]!.id, leaseId: 'stale', outcome: { ok: true, output: 'late' }, at: at(3) }),
    ]);
    expect(statements).toHaveLength(1);
    expect(answers.map((r) => r?.state ?? null)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', null]);
    expect(await getJob(raw, jobs[0]!.id)).toMatchObject({ output: 0 });
  });

  it('writes a start and its result, sent in one turn, as one statement, in that order', async () => {
    const [j] = await leasedJobs(1);
    const started = writes.markRunning(j!.id, `L-${j!.id}`, at(2));
    const done = writes.complete({ jobId: j!.id, leaseId: `L-${j!.id}`, outcome: { ok: true, output: 'y' }, at: at(3) });
    expect(await started).toBe(true);
    expect(await done).toMatchObject({ state: 'succeeded', startedAt: at(2) });
    expect(statements).toHaveLength(1);
    expect((await getJobEvents(raw, j!.id)).map((e) => e.state)).toEqual(['queued', 'leased', 'running', 'succeeded']);
  });

  it('writes a start that comes alone on the next turn, without waiting for a result', async () => {
    const [j] = await leasedJobs(1);
    expect(await writes.markRunning(j!.id, `L-${j!.id}`, at(2))).toBe(true);
    expect(statements).toEqual([expect.stringMatching(/SET state = 'running'/)]);
    expect(await getJob(raw, j!.id)).toMatchObject({ state: 'running', startedAt: at(2) });
  });

  it('writes a start whose result failed on its own, before the failure', async () => {
    const [j] = await leasedJobs(1);
    const started = writes.markRunning(j!.id, `L-${j!.id}`, at(2));
    const error = { code: 'GG_ERR_EXECUTOR_CRASHED', message: 'exit 1', retryable: true };
    const done = writes.complete({ jobId: j!.id, leaseId: `L-${j!.id}`, outcome: { ok: false, error }, at: at(3) });
    expect(await started).toBe(true);
    expect(await done).toMatchObject({ state: 'queued', error: { code: 'GG_ERR_EXECUTOR_CRASHED' } });
    expect((await getJobEvents(raw, j!.id)).map((e) => e.state)).toEqual(['queued', 'leased', 'running', 'queued']);
  });

  it('answers a write only once it is durable, and flush() waits for every write asked for before it', async () => {
    const [j] = await leasedJobs(1);
    let answered = false;
    const done = writes.complete({ jobId: j!.id, leaseId: `L-${j!.id}`, outcome: { ok: true, output: 1 }, at: at(3) }).then(() => {
      answered = true;
    });
    expect(answered).toBe(false);
    await writes.flush();
    await done;
    expect(answered).toBe(true);
    expect(await getJob(raw, j!.id)).toMatchObject({ state: 'succeeded' });
  });

  it('gathers what arrives while a flush runs into the next one', async () => {
    const jobs = await leasedJobs(6);
    const first = writes.complete({ jobId: jobs[0]!.id, leaseId: `L-${jobs[0]!.id}`, outcome: { ok: true, output: 0 }, at: at(3) });
    await new Promise((resolve) => setImmediate(resolve));
    // The first flush is under way (its statement sent): these five wait for the next one, together.
    const rest = jobs.slice(1).map((j) => writes.complete({ jobId: j.id, leaseId: `L-${j.id}`, outcome: { ok: true, output: 1 }, at: at(3) }));
    await Promise.all([first, ...rest]);
    expect(statements).toHaveLength(2);
  });
});
