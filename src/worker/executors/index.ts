/**
 * Executors, as the worker agent sees them: which job kinds this worker can
 * run, and a JobProcessPool to run one in a job process, so a crash, leak or
 * hang in a native runtime never takes the worker down; a warm process where
 * one is idle.
 *
 *   if (!canRunKind(job.kind, hardware)) refuse(job, 'GG_ERR_EXECUTOR_UNAVAILABLE');
 *   const pool = new JobProcessPool({ maxIdle: slots, logger });
 *   const output = await pool.run(job.kind, job, { modelPath, threads, timeoutMs: job.timeoutMs, signal, onProgress });
 *   hello.capabilities.executors = executorKinds().filter((k) => canRunKind(k, hardware));
 *   await pool.close(); // at shutdown
 */
import { SELF_SIZING_KINDS } from '../../protocol/api.js';
import type { HardwareReport } from '../../protocol/messages.js';
import { EXECUTORS } from './registry.js';

export { JobProcessPool, type JobProcessInfo, type JobProcessPoolOptions } from './job-pool.js';
export type { RunJobOptions } from './job-attempt.js';
export type { JobExit, JobExitReason, JobLogger } from './job-child.js';
export type { JobPriority } from './priority.js';
export { Suspension } from './suspension.js';
export { JobProcessLeftovers } from './leftovers.js';
export type { Executor, ExecutorContext, OutputPiece } from './types.js';
export { GatheredPieces } from './gathered-pieces.js';
export { jobMemoryLimitBytes } from './memory-limit.js';

/** Every job kind this build has an executor for, whether or not this machine can run it. */
export function executorKinds(): string[] {
  return [...EXECUTORS.keys()];
}

/** The memory limit of a job process of `kind`: `limit`, unless its runtime sizes its own memory (SELF_SIZING_KINDS, memory-limit.ts). */
export function memoryLimitOfKind(kind: string, limit: number | null): number | null {
  return SELF_SIZING_KINDS.has(kind) ? null : limit;
}

/** Whether jobs of `kind` use the GPU without asking for one (Executor.gpuByDefault). */
export function usesGpuByDefault(kind: string): boolean {
  return EXECUTORS.get(kind)?.gpuByDefault === true;
}

/** Whether this machine can run jobs of `kind` (an executor exists and supports the platform). */
export function canRunKind(kind: string, hardware: HardwareReport): boolean {
  return EXECUTORS.get(kind)?.canRun(hardware) ?? false;
}
