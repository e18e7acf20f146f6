/**
 * Runs one job in a job process, so a crash, leak or hang in a native runtime
 * never takes the worker down. The process is a warm one of the job's kind
 * when one is idle (job-pool.ts), a new one otherwise.
 *
 *   const output = await runJob('onnx', job, {
 *     modelPath, threads: 2, timeoutMs: job.timeoutMs, signal: controller.signal,
 *     onProgress: (p, msg) => report(p, msg),
 *   });
 *   await closeJobProcesses(); // at shutdown: no job process outlives this (or its idle timeout)
 *
 * Settles only once the process's state is known (back in the pool, or gone).
 * Rejects with a GridError: GG_ERR_JOB_TIMEOUT (ran past `timeoutMs`,
 * killed), GG_ERR_JOB_CANCELED (`signal` aborted, killed),
 * GG_ERR_EXECUTOR_CRASHED (ended without a result; the message has the exit
 * code or signal and the last stderr lines), or the executor's own GridError,
 * code and message intact. A process that was killed or crashed is never
 * reused.
 *
 * `runJob` uses one pool shared by this process (one idle process per kind);
 * the worker keeps a pool of its own sized to its slots (worker.ts).
 */
import type { JobSpec } from '../../protocol/messages.js';
import type { RunJobOptions } from './job-attempt.js';
import { JobProcessPool } from './job-pool.js';

export type { RunJobOptions } from './job-attempt.js';
export { closeJobProcesses, JobProcessPool, type JobProcessInfo, type JobProcessPoolOptions } from './job-pool.js';

const shared = new JobProcessPool();

export function runJob(kind: string, job: JobSpec, opts: RunJobOptions): Promise<unknown> {
  return shared.run(kind, job, opts);
}
