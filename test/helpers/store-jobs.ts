/**
 * Jobs and leases for the store tests: a fixed clock, and rows to insert or
 * lease with only what a test cares about spelled out.
 *
 *   await insertJobs(db, [newJob({ priority: 5 }), newJob()]);
 *   await leaseJobs(db, [lease(job.id, 'L-1')], at(1));
 */
import { jobIds } from '../../src/coordinator/job-writes.js';
import type { Lease, NewJob } from '../../src/coordinator/store/index.js';

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
