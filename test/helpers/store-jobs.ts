/**
 * Jobs and leases for the store tests: a fixed clock, rows to insert or lease
 * with only what a test cares about spelled out, and one-job forms of the
 * store's many-jobs statements.
 *
 *   const job = await insertJob(db, newJob({ priority: 5 }));
 *   await leaseJobs(db, [lease(job.id, 'L-1')], at(1));
 *   await completeJob(db, job.id, 'L-1', { ok: true, output: 1 }, at(2)); // null: stale lease
 */
import { jobIds } from '../../src/coordinator/job-writes.js';
import {
  completeJobs,
  insertJobs,
  markRunningMany,
  queuedJobRow,
  type Db,
  type JobOutcome,
  type JobRow,
  type Lease,
  type NewJob,
} from '../../src/coordinator/store/index.js';

export const T0 = new Date('2026-01-01T00:00:00.000Z');
/** `s` seconds after T0. */
export const at = (s: number) => new Date(T0.getTime() + s * 1000);

const nextId = jobIds();

export const newJob = (o: Partial<NewJob> = {}): NewJob => ({
  id: nextId(T0.getTime()),
  kind: 'onnx',
  model: { sha256: 'a'.repeat(64), size: 10, name: 'm.onnx' },
  input: { inputs: {} },
  requirements: {},
  timeoutMs: 1000,
  maxAttempts: 3,
  priority: 0,
  now: T0,
  ...o,
});

/** Worker w-1 on instance c-1, for 90 s. */
export const lease = (jobId: string, leaseId: string, o: Partial<Lease> = {}): Lease => ({
  jobId,
  leaseId,
  workerId: 'w-1',
  instanceId: 'c-1',
  expiresAt: at(90),
  ...o,
});

export async function insertJob(db: Db, j: NewJob): Promise<JobRow> {
  await insertJobs(db, [j]);
  return queuedJobRow(j);
}

/** leased → running; false for a stale lease. */
export async function markRunning(db: Db, jobId: string, leaseId: string, now: Date): Promise<boolean> {
  return (await markRunningMany(db, [{ jobId, leaseId, at: now }]))[0]!;
}

export async function completeJob(db: Db, jobId: string, leaseId: string, outcome: JobOutcome, now: Date): Promise<JobRow | null> {
  return (await completeJobs(db, [{ jobId, leaseId, outcome, at: now }]))[0]!;
}
