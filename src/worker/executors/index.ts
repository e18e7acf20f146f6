/**
 * Executors, as the worker agent sees them: which job kinds this worker can
 * run, and `runJob` (or a JobProcessPool of one's own) to run one in a job
 * process, a warm one where one is idle.
 *
 *   if (!canRunKind(job.kind, hardware)) refuse(job, 'GG_ERR_EXECUTOR_UNAVAILABLE');
 *   const output = await runJob(job.kind, job, { modelPath, threads, timeoutMs: job.timeoutMs, signal, onProgress });
 *   hello.capabilities.executors = executorKinds().filter((k) => canRunKind(k, hardware));
 *   await closeJobProcesses(); // at shutdown
 */
import type { HardwareReport } from '../../protocol/messages.js';
import { EXECUTORS } from './registry.js';

export {
  closeJobProcesses,
  JobProcessPool,
  runJob,
  type JobProcessInfo,
  type JobProcessPoolOptions,
  type RunJobOptions,
} from './child-runner.js';
export type { JobExit, JobExitReason, JobLogger } from './job-child.js';
export type { JobPriority } from './priority.js';
export { Suspension } from './suspension.js';
export { JobProcessLeftovers } from './leftovers.js';
export type { Executor, ExecutorContext } from './types.js';

/** Every job kind this build has an executor for, whether or not this machine can run it. */
export function executorKinds(): string[] {
  return [...EXECUTORS.keys()];
}

/** Whether this machine can run jobs of `kind` (an executor exists and supports the platform). */
export function canRunKind(kind: string, hardware: HardwareReport): boolean {
  return EXECUTORS.get(kind)?.canRun(hardware) ?? false;
}
