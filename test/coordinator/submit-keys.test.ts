/**
 * Idempotency keys in the store, on every backend: a key queues its jobs
 * once, also when two requests with it arrive at the same moment (on
 * PostgreSQL, two connections), and is forgotten after a day.
 */
import { describe, expect, it } from 'vitest';
import { forgetSubmitKeys, insertJobsOnce, listJobs, SUBMIT_KEY_TTL_MS, type Db } from '../../src/coordinator/store/index.js';
import { backends, useMigratedDb } from '../helpers/backends.js';
import { newJob, T0 } from '../helpers/store-jobs.js';

const later = (ms: number) => new Date(T0.getTime() + ms);
const key = (k: string, o: { requestSha256?: string; now?: Date } = {}) => ({ apiKeyId: 'k1', key: k, requestSha256: o.requestSha256 ?? 'a'.repeat(64), now: o.now ?? T0 });
const count = async (db: Db) => (await listJobs(db, { limit: 100_000 })).length;

describe.each(backends)('submit keys on $name', (backend) => {
  let db: Db;
  useMigratedDb(backend, (opened) => (db = opened as Db));

  it('inserts the jobs of the first request with a key, and only says which they were to a second', async () => {
    const jobs = [newJob(), newJob()];
    expect(await insertJobsOnce(db, jobs, key('once'))).toEqual({ earlier: null });
    const before = await count(db);
    expect(await insertJobsOnce(db, [newJob(), newJob()], key('once'))).toEqual({ earlier: { requestSha256: 'a'.repeat(64), jobIds: jobs.map((j) => j.id) } });
    expect(await count(db)).toBe(before);
  });

  it('queues once when ten requests with one key arrive together', async () => {
    const before = await count(db);
    const tries = Array.from({ length: 10 }, () => [newJob()]);
    const answers = await Promise.all(tries.map((jobs) => insertJobsOnce(db, jobs, key('together'))));
    const first = answers.findIndex((a) => a.earlier === null);
    expect(answers.filter((a) => a.earlier === null)).toHaveLength(1);
    for (const a of answers) if (a.earlier) expect(a.earlier.jobIds).toEqual([tries[first]![0]!.id]);
    expect(await count(db)).toBe(before + 1);
  });

  it('takes a key again once it is a day old, and forgets keys older than asked', async () => {
    await insertJobsOnce(db, [newJob()], key('daily'));
    expect((await insertJobsOnce(db, [newJob()], key('daily', { now: later(SUBMIT_KEY_TTL_MS - 1) }))).earlier).not.toBeNull();
    expect(await insertJobsOnce(db, [newJob()], key('daily', { now: later(SUBMIT_KEY_TTL_MS + 1) }))).toEqual({ earlier: null });
    await insertJobsOnce(db, [newJob()], key('old'));
    expect(await forgetSubmitKeys(db, later(1))).toBeGreaterThanOrEqual(1);
    // 'daily' was claimed again a day later: it stays.
    expect((await insertJobsOnce(db, [newJob()], key('daily', { now: later(SUBMIT_KEY_TTL_MS + 2) }))).earlier).not.toBeNull();
    expect(await insertJobsOnce(db, [newJob()], key('old', { now: later(2) }))).toEqual({ earlier: null });
  });

  it('keeps nothing of a request whose jobs could not be inserted', async () => {
    const clash = newJob();
    await insertJobsOnce(db, [clash], key('first'));
    // A job id that exists: the insert fails, and the key with it.
    await expect(insertJobsOnce(db, [clash], key('second'))).rejects.toThrow();
    expect(await insertJobsOnce(db, [newJob()], key('second'))).toEqual({ earlier: null });
  });
});
