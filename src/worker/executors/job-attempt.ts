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
 * after a timeout, a cancel or a crash. While `suspension` is on, the process
 * is stopped and its timeout clock with it: a job gets its whole time running.
 */
import { GridError } from '../../protocol/errors.js';
import type { JobSpec } from '../../protocol/messages.js';
import type { FromJobProcess } from './ipc.js';
import type { JobChild, JobExit, JobLogger } from './job-child.js';
import { PausableTimer } from './pausable-timer.js';
import type { Suspension } from './suspension.js';
import type { OutputPiece } from './types.js';

export interface RunJobOptions {
  /** A verified model file from the model cache. */
  modelPath: string;
  /** CPU threads the runtime may use. */
  threads: number;
  /**
   * Wall-clock limit while allowed to run, a process start included where one
   * was needed; past it the process is killed. Time suspended does not count.
   */
  timeoutMs: number;
  /** Abort to cancel: the process is killed at once. */
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

export function attemptJob(child: JobChild, kind: string, job: JobSpec, opts: RunJobOptions): Promise<Attempt> {
  return new Promise((resolve) => {
    const timer = new PausableTimer(opts.timeoutMs, () => child.kill('timeout', `timeout of ${opts.timeoutMs} ms`));
    const onAbort = () => child.kill('canceled');
    const onSuspend = (on: boolean) => {
      if (on) {
        timer.pause();
        child.suspend();
      } else {
        child.resume();
        timer.resume();
      }
    };
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
        case 'partial':
          opts.onPartial?.({ text: msg.text, ...(msg.tokens && { tokens: msg.tokens }) });
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
      timer.clear();
      opts.suspension?.off('change', onSuspend);
      // A result may cross a SIGSTOP in the pipe; the process goes back to the pool running.
      child.resume();
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
