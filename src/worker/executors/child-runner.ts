/**
 * Runs one job in a job process of its own, so a crash, leak or hang in a
 * native runtime never takes the worker down.
 *
 *   const output = await runJob('onnx', job, {
 *     modelPath, threads: 2, timeoutMs: job.timeoutMs, signal: controller.signal,
 *     onProgress: (p, msg) => report(p, msg),
 *   });
 *
 * Settles only after the process is gone. Rejects with a GridError:
 * GG_ERR_JOB_TIMEOUT (ran past `timeoutMs`, killed), GG_ERR_JOB_CANCELED
 * (`signal` aborted, killed), GG_ERR_EXECUTOR_CRASHED (ended without a
 * result; the message has the exit code or signal and the last stderr lines),
 * or the executor's own GridError, code and message intact.
 *
 * One fork per job is the safe baseline. A fork costs tens of milliseconds
 * (more with tsx, from source), so a later version may keep a warm process per
 * kind: the IPC protocol already names the job in every message, so only this
 * file would change.
 */
import { GridError } from '../../protocol/errors.js';
import type { JobSpec } from '../../protocol/messages.js';
import { JobChild, type JobExit, type JobLogger } from './job-child.js';

export interface RunJobOptions {
  /** A verified model file from the model cache. */
  modelPath: string;
  /** CPU threads the runtime may use. */
  threads: number;
  /** Wall-clock limit, process start included; past it the process is killed. */
  timeoutMs: number;
  /** Abort to cancel: the process is killed at once. */
  signal: AbortSignal;
  onProgress(progress: number, message?: string): void;
  /** Where the job process's lines go, prefixed `[job <id> pid <pid>]`. @default none */
  logger?: JobLogger;
}

export async function runJob(kind: string, job: JobSpec, opts: RunJobOptions): Promise<unknown> {
  if (opts.signal.aborted) throw canceled(job);
  const child = JobChild.fork({ label: `job ${job.jobId}`, logger: opts.logger });
  let outcome: { ok: true; output: unknown } | { ok: false; error: GridError } | undefined;

  // setTimeout fires at once past 2^31 - 1 ms; no job needs longer than those 24.8 days.
  const timer = setTimeout(() => child.kill('timeout', `timeout of ${opts.timeoutMs} ms`), Math.min(opts.timeoutMs, 2 ** 31 - 1));
  const onAbort = () => child.kill('canceled');
  opts.signal.addEventListener('abort', onAbort, { once: true });

  child.on('message', (msg) => {
    if (msg.jobId !== job.jobId) {
      child.kill('killed', `reported on job ${msg.jobId}, not ${job.jobId}`);
      return;
    }
    if (outcome) return;
    switch (msg.type) {
      case 'progress':
        opts.onProgress(msg.progress, msg.message);
        break;
      case 'result':
        outcome = { ok: true, output: msg.output };
        clearTimeout(timer);
        child.finish();
        break;
      case 'failed':
        outcome = { ok: false, error: new GridError(msg.code, msg.message) };
        clearTimeout(timer);
        child.finish();
        break;
    }
  });
  child.send({ type: 'run', kind, job, modelPath: opts.modelPath, threads: opts.threads });

  const exit = await child.exited;
  clearTimeout(timer);
  opts.signal.removeEventListener('abort', onAbort);

  // A result that arrived counts even if the process then died on the way out.
  if (outcome?.ok) return outcome.output;
  if (outcome) throw outcome.error;
  throw exitError(job, exit, child.stderr());
}

function exitError(job: JobSpec, exit: JobExit, stderr: string): GridError {
  switch (exit.reason) {
    case 'timeout':
      return new GridError('GG_ERR_JOB_TIMEOUT', `job ${job.jobId} ran past its timeout (${exit.detail ?? 'timeout'}); its process was killed`);
    case 'canceled':
      return canceled(job);
    default: {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      const why = exit.detail ? ` (${exit.detail})` : '';
      const tail = stderr ? `; last output: ${stderr.slice(-1500)}` : '';
      return new GridError('GG_ERR_EXECUTOR_CRASHED', `the job process for job ${job.jobId} ${how} without a result${why}${tail}`);
    }
  }
}

function canceled(job: JobSpec): GridError {
  return new GridError('GG_ERR_JOB_CANCELED', `job ${job.jobId} was canceled`);
}
