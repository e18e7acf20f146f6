/**
 * Runs the jobs the coordinator assigns, within the worker's slots: fetch the
 * model (verified, cached), run it in a job process, report progress and the
 * result with the lease id it came with.
 *
 *   const runner = new JobRunner({ slots: 1, threads: 2, models: cache, run: runJob, canRun, logger });
 *   runner.attach(send);           // the current connection; detach() when it drops
 *   runner.accept(assignMessage);  // from job.assign
 *   runner.cancel(jobId);          // from job.cancel
 *   heartbeat.runningJobs = runner.running();
 *
 * A job whose connection dropped is stopped, not finished: the coordinator
 * has already put it back in the queue, so its result would be refused.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import {
  ERROR_CODES,
  GridError,
  isGridError,
  MAX_INLINE_PAYLOAD_BYTES,
  type ErrorCode,
  type JobSpec,
  type ModelRef,
  type RunningJob,
  type WorkerMessageInput,
} from '../protocol/index.js';
import type { RunJobOptions } from './executors/index.js';

export interface JobRunnerOptions {
  slots: number;
  /** Runtime threads per job. */
  threads: number;
  models: { acquire(ref: ModelRef, signal?: AbortSignal): Promise<{ path: string; release(): void }> };
  run(kind: string, job: JobSpec, opts: RunJobOptions): Promise<unknown>;
  canRun(kind: string): boolean;
  /** Inputs and results too large for a control frame go over HTTPS. */
  transfer: {
    fetchInput(jobId: string, leaseId: string): Promise<unknown>;
    postResult(msg: Extract<WorkerMessageInput, { type: 'job.result' }>): Promise<void>;
  };
  logger: Logger;
}

interface Running {
  leaseId: string;
  progress: number | null;
  controller: AbortController;
  done: Promise<void>;
}

type Send = (msg: WorkerMessageInput) => Promise<void>;

/** At most this often a job's progress goes over the wire; heartbeats carry the latest anyway. */
const PROGRESS_EVERY_MS = 250;

export class JobRunner extends EventEmitter<{ changed: [] }> {
  private readonly jobs = new Map<string, Running>();
  private send: Send | null = null;

  constructor(private readonly opts: JobRunnerOptions) {
    super();
  }

  attach(send: Send): void {
    this.send = send;
  }

  /** The connection dropped: stop every job (their leases are gone) and wait for their processes to exit. */
  async detach(): Promise<void> {
    this.send = null;
    await this.stopAll('connection to the coordinator lost');
  }

  get busy(): number {
    return this.jobs.size;
  }

  running(): RunningJob[] {
    return [...this.jobs].map(([jobId, r]) => ({ jobId, leaseId: r.leaseId, progress: r.progress }));
  }

  accept(assign: { job: JobSpec; leaseId: string }): void {
    const { job, leaseId } = assign;
    const refuse = (code: ErrorCode, message: string, retryable: boolean) =>
      this.report({ type: 'job.result', jobId: job.jobId, leaseId, outcome: { ok: false, error: { code, message, retryable } } });
    if (this.jobs.has(job.jobId)) return;
    if (this.jobs.size >= this.opts.slots) {
      refuse('GG_ERR_WORKER_BUSY', `all ${this.opts.slots} slots are busy`, true);
      return;
    }
    if (!this.opts.canRun(job.kind)) {
      refuse('GG_ERR_EXECUTOR_UNAVAILABLE', `this worker has no executor for ${job.kind} jobs`, true);
      return;
    }
    const controller = new AbortController();
    const entry: Running = { leaseId, progress: 0, controller, done: Promise.resolve() };
    this.jobs.set(job.jobId, entry);
    entry.done = this.execute(job, entry).finally(() => {
      this.jobs.delete(job.jobId);
      this.emit('changed');
    });
    this.emit('changed');
  }

  /** The coordinator canceled the job (or its lease expired): kill its process; no result is sent. */
  cancel(jobId: string, leaseId: string): void {
    const r = this.jobs.get(jobId);
    if (r?.leaseId === leaseId) r.controller.abort();
  }

  async stopAll(reason: string): Promise<void> {
    const all = [...this.jobs.values()];
    for (const r of all) r.controller.abort(new GridError('GG_ERR_JOB_CANCELED', reason));
    await Promise.all(all.map((r) => r.done));
  }

  private async execute(job: JobSpec, entry: Running): Promise<void> {
    const { jobId } = job;
    const log = this.opts.logger.child({ jobId, attempt: job.attempt });
    let lastSent = 0;
    const progress = (p: number, message?: string, force = false) => {
      entry.progress = p;
      const now = Date.now();
      if (!force && now - lastSent < PROGRESS_EVERY_MS) return;
      lastSent = now;
      this.report({ type: 'job.progress', jobId, leaseId: entry.leaseId, progress: p, ...(message ? { message } : {}) });
    };
    // One message marks the job running; a model download shows up later as
    // the time between this and the first executor progress.
    progress(0, 'starting', true);
    let model: { path: string; release(): void } | undefined;
    try {
      const input = job.inputByReference ? await this.opts.transfer.fetchInput(jobId, entry.leaseId) : job.input;
      model = await this.opts.models.acquire(job.model, entry.controller.signal);
      const output = await this.opts.run(job.kind, { ...job, input, inputByReference: false }, {
        modelPath: model.path,
        threads: this.opts.threads,
        timeoutMs: job.timeoutMs,
        signal: entry.controller.signal,
        onProgress: (p, message) => progress(p, message),
      });
      log.info('job succeeded');
      const result = { type: 'job.result' as const, jobId, leaseId: entry.leaseId, outcome: { ok: true as const, output } };
      if (Buffer.byteLength(JSON.stringify(output)) <= MAX_INLINE_PAYLOAD_BYTES) this.report(result);
      else await this.postLarge(result);
    } catch (e) {
      if (entry.controller.signal.aborted) {
        log.info('job stopped');
        return;
      }
      const err = isGridError(e) ? e : new GridError('GG_ERR_INTERNAL', e instanceof Error ? e.message : String(e));
      log.warn({ code: err.code }, `job failed: ${err.message}`);
      this.report({
        type: 'job.result',
        jobId,
        leaseId: entry.leaseId,
        outcome: { ok: false, error: { code: err.code, message: err.message.slice(0, 4000), retryable: ERROR_CODES[err.code].retryable } },
      });
    } finally {
      model?.release();
    }
  }

  /** A result too large for a frame, over HTTPS; one that cannot be sent is reported as a failure the coordinator can show. */
  private async postLarge(result: Extract<WorkerMessageInput, { type: 'job.result' }>): Promise<void> {
    try {
      await this.opts.transfer.postResult(result);
    } catch (e) {
      const err = isGridError(e) ? e : new GridError('GG_ERR_INTERNAL', String(e));
      if (err.code === 'GG_ERR_JOB_LEASE_STALE') return;
      this.report({
        type: 'job.result',
        jobId: result.jobId,
        leaseId: result.leaseId,
        outcome: { ok: false, error: { code: err.code, message: `could not upload the result: ${err.message}`, retryable: err.retryable } },
      });
    }
  }

  /** Sends on the current connection; a result too large for a frame becomes a failure the coordinator can show. */
  private report(msg: WorkerMessageInput): void {
    const send = this.send;
    if (!send) return;
    send(msg).catch((e: unknown) => {
      if (isGridError(e, 'GG_ERR_FRAME_TOO_LARGE') && msg.type === 'job.result') {
        void send({
          type: 'job.result',
          jobId: msg.jobId,
          leaseId: msg.leaseId,
          outcome: { ok: false, error: { code: 'GG_ERR_FRAME_TOO_LARGE', message: `the output is too large to send inline: ${e.message}`, retryable: false } },
        }).catch(() => undefined);
        return;
      }
      this.opts.logger.debug({ err: e, type: msg.type }, 'could not send to the coordinator');
    });
  }
}
