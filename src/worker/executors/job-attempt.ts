/**
 * One job on one job process: sends `run`, relays progress, enforces the
 * timeout and the cancel signal, and says whether the process may take
 * another job. job-pool.ts decides what happens to the process next.
 *
 *   const attempt = await attemptJob(child, 'onnx', job, opts);
 *   if (attempt.reusable) keepWarm(child); else if (child.usable) child.finish('…');
 *   if (!attempt.ok) throw attempt.error;
 *
 * Settles only once the process's state is known: alive and waiting for its
 * next message after a result, an executor's failure, or a job a shared
 * process stopped when asked; gone (its exit seen) after a timeout, a cancel
 * or a crash. While `suspension` is on, the process is stopped and its
 * timeout clock with it: a job gets its whole time running.
 */
import { GridError } from '../../protocol/errors.js';
import type { JobSpec } from '../../protocol/messages.js';
import type { FromJobProcess } from './ipc.js';
import type { JobChild, JobExit, JobLogger } from './job-child.js';
import { isOverMemoryLimit, MEMORY_LIMIT_MARK } from './memory-limit.js';
import { PausableTimer } from './pausable-timer.js';
import type { Suspension } from './suspension.js';
import type { OutputPiece } from './types.js';

export interface RunJobOptions {
  /** A verified model file from the model cache. */
  modelPath: string;
  /** CPU threads the runtime may use. */
  threads: number;
  /** The kind's GPU backends that passed the worker's probe, best first. @default none: the CPU only */
  gpuBackends?: readonly string[];
  /** The worker's slot count now: how many jobs one shared process (job-pool.ts) takes at once. @default 1 */
  slots?: number;
  /**
   * Wall-clock limit while allowed to run, a process start included where one
   * was needed; past it the process is killed. Time suspended does not count.
   */
  timeoutMs: number;
  /** Abort to cancel: the process is killed at once (a shared one is asked to stop the job first). */
  signal: AbortSignal;
  onProgress(progress: number, message?: string): void;
  /** Output as the job produces it (an llm job's text). @default dropped */
  onPartial?(piece: OutputPiece): void;
  /** Where the job process's lines go while it runs this job, prefixed `[job <id> pid <pid>]`. @default the pool's logger */
  logger?: JobLogger;
  /** While on, the job's process is stopped (SIGSTOP; POSIX only) and a job without a process yet waits. @default never suspended */
  suspension?: Suspension;
}

/**
 * How a job ended. `reusable`: the process ended the job cleanly and may take
 * another. A GG_ERR_INTERNAL failure (the executor threw something that is
 * not a GridError: a bug) is not reusable: after a bug the process's state is
 * unknown, and a fresh one costs only a fork.
 */
export type Attempt = { ok: true; output: unknown; reusable: true } | { ok: false; error: GridError; reusable: boolean };

/**
 * How long a shared process has to stop a canceled job (an LLM stops at its
 * next token, milliseconds) before it is killed, and its other jobs with it.
 */
export const CANCEL_GRACE_MS = 1000;

/**
 * `shared`: the process may run other jobs too (job-pool.ts), so a cancel or
 * a timeout first asks it to stop this one and kills it only past
 * CANCEL_GRACE_MS, or at once while it is stopped (SIGSTOP) and cannot act.
 */
export function attemptJob(child: JobChild, kind: string, job: JobSpec, opts: RunJobOptions & { slots: number; shared: boolean }): Promise<Attempt> {
  return new Promise((resolve) => {
    /** Why this job is being stopped in its process, and the error it then ends with, whatever the process answers. */
    let stopping: GridError | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    /** This job's timeout or cancel killed the process, rather than another job's on a shared one. */
    let killedHere = false;
    const stop = (reason: 'timeout' | 'canceled', detail?: string) => {
      if (!opts.shared || child.suspended) {
        killedHere = true;
        return child.kill(reason, detail);
      }
      if (stopping) return;
      stopping = reason === 'timeout' ? timeoutError(job, detail) : canceledError(job);
      child.send({ type: 'cancel', jobId: job.jobId });
      killTimer = setTimeout(() => {
        killedHere = true;
        child.kill(reason, `${detail ?? 'canceled'}; job ${job.jobId} did not stop within ${CANCEL_GRACE_MS} ms`);
      }, CANCEL_GRACE_MS);
    };
    const timer = new PausableTimer(opts.timeoutMs, () => stop('timeout', `timeout of ${opts.timeoutMs} ms`));
    const onAbort = () => stop('canceled');
    const onSuspend = (on: boolean) => {
      if (on) {
        timer.pause();
        child.suspend();
      } else {
        child.resume();
        timer.resume();
      }
    };
    // Killed for another job's timeout or cancel, this one ends as if its process had crashed.
    const onExit = (exit: JobExit) => {
      const reason = killedHere || (exit.reason !== 'timeout' && exit.reason !== 'canceled') ? exit.reason : 'killed';
      settle({ ok: false, error: exitError(job, { ...exit, reason }, child.stderr()), reusable: false });
    };
    const onMessage = (msg: FromJobProcess) => {
      // Once it is being killed (timeout, cancel), a late result does not count: its exit decides.
      if (child.stopping) return;
      // Another job of a shared process: the pool checks that it runs one.
      if (msg.jobId !== job.jobId) return;
      switch (msg.type) {
        case 'progress':
          if (!stopping) opts.onProgress(msg.progress, msg.message);
          break;
        case 'partial':
          if (!stopping) opts.onPartial?.({ text: msg.text, ...(msg.tokens && { tokens: msg.tokens }) });
          break;
        case 'result':
          // A result that crossed the cancel in the pipe: the job was still stopped, as asked.
          settle(stopping ? { ok: false, error: stopping, reusable: true } : { ok: true, output: msg.output, reusable: true });
          break;
        case 'failed':
          settle({ ok: false, error: stopping ?? new GridError(msg.code, msg.message), reusable: msg.code !== 'GG_ERR_INTERNAL' });
          break;
      }
    };
    // Listeners come off when the job ends: a warm process runs up to thousands of jobs.
    const settle = (attempt: Attempt) => {
      timer.clear();
      clearTimeout(killTimer);
      opts.suspension?.off('change', onSuspend);
      opts.signal.removeEventListener('abort', onAbort);
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(attempt);
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    opts.suspension?.on('change', onSuspend);
    // Suspended between the pool's wait and here: the process starts stopped, its `run` waits in the pipe.
    if (opts.suspension?.suspended) onSuspend(true);
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.send({ type: 'run', kind, job, modelPath: opts.modelPath, threads: opts.threads, slots: opts.slots, gpuBackends: [...(opts.gpuBackends ?? [])] });
  });
}

export function canceledError(job: JobSpec): GridError {
  return new GridError('GG_ERR_JOB_CANCELED', `job ${job.jobId} was canceled`);
}

function timeoutError(job: JobSpec, detail = 'timeout'): GridError {
  return new GridError('GG_ERR_JOB_TIMEOUT', `job ${job.jobId} ran past its timeout (${detail})`);
}

function exitError(job: JobSpec, exit: JobExit, stderr: string): GridError {
  switch (exit.reason) {
    case 'timeout':
      return timeoutError(job, `${exit.detail ?? 'timeout'}; its process was killed`);
    case 'canceled':
      return canceledError(job);
    default: {
      if (isOverMemoryLimit(stderr)) {
        const line = stderr.split('\n').find((l) => l.includes(MEMORY_LIMIT_MARK));
        const used = (line && /\(([^)]*)\)\s*$/.exec(line)?.[1]) ?? "V8's heap is full";
        return new GridError('GG_ERR_WORKER_OUT_OF_MEMORY', `job ${job.jobId} used more memory than a job process may on this worker (${used}; GOGRID_JOB_MEMORY_LIMIT_MIB sets it)`);
      }
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      const why = exit.detail ? ` (${exit.detail})` : '';
      const tail = stderr ? `; last output: ${stderr.slice(-1500)}` : '';
      return new GridError('GG_ERR_EXECUTOR_CRASHED', `the job process for job ${job.jobId} ${how} without a result${why}${tail}`);
    }
  }
}
