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
 * next message after a result or an executor's failure; gone (its exit seen)
 * after a timeout, a cancel or a crash.
 */
import { GridError } from '../../protocol/errors.js';
import type { JobSpec } from '../../protocol/messages.js';
import type { FromJobProcess } from './ipc.js';
import type { JobChild, JobExit, JobLogger } from './job-child.js';

export interface RunJobOptions {
  /** A verified model file from the model cache. */
  modelPath: string;
  /** CPU threads the runtime may use. */
  threads: number;
  /** Wall-clock limit, a process start included where one was needed; past it the process is killed. */
  timeoutMs: number;
  /** Abort to cancel: the process is killed at once. */
  signal: AbortSignal;
  onProgress(progress: number, message?: string): void;
  /** Where the job process's lines go while it runs this job, prefixed `[job <id> pid <pid>]`. @default the pool's logger */
  logger?: JobLogger;
}

/**
 * How a job ended. `reusable`: the process ended the job cleanly and may take
 * another. A GG_ERR_INTERNAL failure (the executor threw something that is
 * not a GridError: a bug) is not reusable: after a bug the process's state is
 * unknown, and a fresh one costs only a fork.
 */
export type Attempt = { ok: true; output: unknown; reusable: true } | { ok: false; error: GridError; reusable: boolean };

/** setTimeout fires at once past 2^31 - 1 ms; no job needs longer than those 24.8 days. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function attemptJob(child: JobChild, kind: string, job: JobSpec, opts: RunJobOptions): Promise<Attempt> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('timeout', `timeout of ${opts.timeoutMs} ms`), Math.min(opts.timeoutMs, MAX_TIMER_MS));
    const onAbort = () => child.kill('canceled');
    const onExit = (exit: JobExit) => settle({ ok: false, error: exitError(job, exit, child.stderr()), reusable: false });
    const onMessage = (msg: FromJobProcess) => {
      // Once it is being killed (timeout, cancel), a late result does not count: its exit decides.
      if (child.stopping) return;
      if (msg.jobId !== job.jobId) {
        child.kill('killed', `reported on job ${msg.jobId}, not ${job.jobId}`);
        return;
      }
      switch (msg.type) {
        case 'progress':
          opts.onProgress(msg.progress, msg.message);
          break;
        case 'result':
          settle({ ok: true, output: msg.output, reusable: true });
          break;
        case 'failed':
          settle({ ok: false, error: new GridError(msg.code, msg.message), reusable: msg.code !== 'GG_ERR_INTERNAL' });
          break;
      }
    };
    // Listeners come off when the job ends: a warm process runs up to thousands of jobs.
    const settle = (attempt: Attempt) => {
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(attempt);
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.send({ type: 'run', kind, job, modelPath: opts.modelPath, threads: opts.threads });
  });
}

export function canceledError(job: JobSpec): GridError {
  return new GridError('GG_ERR_JOB_CANCELED', `job ${job.jobId} was canceled`);
}

function exitError(job: JobSpec, exit: JobExit, stderr: string): GridError {
  switch (exit.reason) {
    case 'timeout':
      return new GridError('GG_ERR_JOB_TIMEOUT', `job ${job.jobId} ran past its timeout (${exit.detail ?? 'timeout'}); its process was killed`);
    case 'canceled':
      return canceledError(job);
    default: {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      const why = exit.detail ? ` (${exit.detail})` : '';
      const tail = stderr ? `; last output: ${stderr.slice(-1500)}` : '';
      return new GridError('GG_ERR_EXECUTOR_CRASHED', `the job process for job ${job.jobId} ${how} without a result${why}${tail}`);
    }
  }
}
