/**
 * Runs the jobs the coordinator assigns, within the worker's slots: fetch the
 * model (verified, cached), run it in a job process, report progress and the
 * result with the lease id it came with; step aside when the machine's owner
 * needs it (issue #5).
 *
 *   const runner = new JobRunner({ slots: 1, threads: 2, models: cache, run: (kind, job, o) => pool.run(kind, job, o), canRun, logger });
 *   runner.attach(send);           // the current connection; detach() when it drops
 *   runner.accept(assignMessage);  // from job.assign
 *   runner.cancel(jobId);          // from job.cancel
 *   heartbeat.runningJobs = runner.running();
 *   if (!runner.suspend()) await runner.handBack('You are using this computer');  // Windows cannot suspend
 *   runner.resume();               // the owner left: the stopped jobs go on
 *   await runner.handBack(reason); // paused past the grace: job.release for each, requeued at once
 *   window.jobs.running = runner.views();  runner.on('finished', count);
 *
 * A job whose connection dropped is stopped, not finished: the coordinator
 * has already put it back in the queue, so its result would be refused.
 */
import { EventEmitter } from 'node:events';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { RunningJobView } from '../protocol/control.js';
import {
  checkJobPayload,
  MAX_PARTIAL_CHARS,
  checkJson,
  cleanText,
  ERROR_CODES,
  GridError,
  isGridError,
  MAX_ERROR_MESSAGE,
  MAX_INLINE_PAYLOAD_BYTES,
  type ErrorCode,
  type JobSpec,
  type ModelRef,
  type RunningJob,
  type WorkerMessageInput,
} from '../protocol/index.js';
import { GatheredPieces, Suspension, type RunJobOptions } from './executors/index.js';

export interface JobRunnerOptions {
  slots: number;
  /** A kind's GPU backends that passed the worker's probe, best first. @default none: the CPU only */
  gpuBackends?(kind: string): readonly string[];
  /** Whether the kind's jobs use the GPU without asking for one (Executor.gpuByDefault: llm). @default never */
  gpuByDefault?(kind: string): boolean;
  /** Runtime threads per job; `setThreads` changes it for jobs that start later. */
  threads: number;
  models: { acquire(ref: ModelRef, signal?: AbortSignal): Promise<{ path: string; release(): void }> };
  run(kind: string, job: JobSpec, opts: RunJobOptions): Promise<unknown>;
  /** Ends what waits warm between jobs (idle job processes, a loaded LLM in one): `giveBackMemory` calls it. @default nothing to end */
  dropIdle?(why: string): void;
  canRun(kind: string): boolean;
  /** Inputs and results too large for a control frame go over HTTPS. */
  transfer: {
    fetchInput(jobId: string, leaseId: string): Promise<unknown>;
    postResult(msg: Extract<WorkerMessageInput, { type: 'job.result' }>): Promise<void>;
  };
  logger: Logger;
  /**
   * The OS the job processes run on. Only whether it can stop a process
   * matters: Windows has no SIGSTOP, so there `suspend()` says no and the
   * caller hands the jobs back instead.
   * @default process.platform
   */
  platform?: NodeJS.Platform;
  /** How long a job runs before its start is reported (START_REPORT_MS). @default 250 */
  startReportMs?: number;
}

/** A job that ended with a result (sent, or a refusal on arrival): the status window's counts and last error. */
export interface JobFinished {
  jobId: string;
  ok: boolean;
  /** The failure's message; null on success. */
  error: string | null;
  at: Date;
}

interface Running {
  leaseId: string;
  kind: string;
  modelName: string;
  startedAt: Date;
  progress: number | null;
  /** The executor's latest word on it ("412 tokens · 38 tokens/s"), for the status window. */
  detail: string | null;
  controller: AbortController;
  done: Promise<void>;
  /** Set by handBack: the reason its job.release carries, unless the job ends on its own first. */
  handBack?: string;
  /** Started with GPU backends to run on: handed back when the owner's policy takes the GPU away. */
  onGpu: boolean;
}

type Send = (msg: WorkerMessageInput) => Promise<void>;
type ResultMessage = Extract<WorkerMessageInput, { type: 'job.result' }>;

/** At most this often a job's progress goes over the wire; heartbeats carry the latest anyway. */
const PROGRESS_EVERY_MS = 250;
/**
 * How long a job's output is gathered before it goes out as one job.partial:
 * a frame per token would make the QUIC library's per-message cost, not the
 * model, bound tokens per second; 25 ms stays below what a reader notices.
 */
const PARTIAL_EVERY_MS = 25;
/**
 * A job's start is reported only once it has run this long: a shorter job's
 * result says how long it ran (`runMs`) instead. For tiny jobs that is one
 * control message in three fewer, on both ends of the connection.
 */
const START_REPORT_MS = 250;
/** JobRelease.reason's limit. */
const MAX_REASON = 500;

export class JobRunner extends EventEmitter<{ changed: []; finished: [JobFinished] }> {
  private readonly jobs = new Map<string, Running>();
  private readonly suspension = new Suspension();
  private readonly platform: NodeJS.Platform;
  private threads: number;
  private slots: number;
  private send: Send | null = null;
  /** Why jobs may not use the GPU now (the owner's policy); null when they may. */
  private gpuOff: string | null = null;

  constructor(private readonly opts: JobRunnerOptions) {
    super();
    this.platform = opts.platform ?? process.platform;
    this.threads = opts.threads;
    this.slots = opts.slots;
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

  /** Jobs are held where they are: processes stopped, timeouts paused, new jobs waiting. */
  get suspended(): boolean {
    return this.suspension.suspended;
  }

  running(): RunningJob[] {
    return [...this.jobs].map(([jobId, r]) => ({ jobId, leaseId: r.leaseId, progress: r.progress }));
  }

  /** The running jobs as the status window shows them; one waiting for its process counts as suspended with the rest. */
  views(): RunningJobView[] {
    return [...this.jobs].map(([jobId, r]) => ({
      jobId,
      kind: r.kind,
      modelName: r.modelName,
      progress: r.progress,
      detail: r.detail,
      startedAt: r.startedAt.toISOString(),
      suspended: this.suspension.suspended,
    }));
  }

  /**
   * Stops every job's process where it is (SIGSTOP) and its timeout clock,
   * for a pause expected to be short. A job assigned meanwhile is accepted
   * and waits without a process, rather than refused: a refusal is a failed
   * attempt that counts against the job's max attempts, while a waiting job
   * either runs here on resume or goes back uncounted with handBack. Returns
   * false, changing nothing, where the OS cannot stop a process (Windows).
   */
  suspend(): boolean {
    if (this.platform === 'win32') return false;
    if (this.suspension.suspended) return true;
    this.suspension.set(true);
    this.emit('changed');
    return true;
  }

  /**
   * The owner needs the machine: what waits warm between jobs goes now (a
   * loaded model can hold gigabytes), at the cost of a load at the next job.
   */
  giveBackMemory(why: string): void {
    this.opts.dropIdle?.(why);
  }

  /** Lets the stopped jobs go on; each gets the rest of its timeout. */
  resume(): void {
    if (!this.suspension.suspended) return;
    this.suspension.set(false);
    this.emit('changed');
  }

  /**
   * Gives every job back: its process is killed (a stopped one too) and
   * `job.release` goes instead of a result, so the coordinator requeues it at
   * once without counting the attempt. A job that ends on its own meanwhile
   * sends its result instead: exactly one of the two per lease. Resolves once
   * every process is gone and every message has been handed to the
   * connection. Leaves `suspended` as it was.
   */
  handBack(reason: string): Promise<void> {
    return this.handBackWhere(reason, () => true);
  }

  private async handBackWhere(reason: string, which: (r: Running) => boolean): Promise<void> {
    const all = [...this.jobs.values()].filter((r) => !r.controller.signal.aborted && which(r));
    for (const r of all) {
      r.handBack = reason.slice(0, MAX_REASON);
      r.controller.abort(new GridError('GG_ERR_JOB_CANCELED', `handed back: ${reason}`));
    }
    await Promise.all(all.map((r) => r.done));
  }

  /**
   * Whether jobs may use the GPU (the owner's policy: "GPU jobs wait until
   * you are away"). Off, the jobs running on it are handed back at once, not
   * suspended: a stopped process would still hold the VRAM its owner wants
   * back (BOINC takes GPU tasks out of memory on suspend too). Jobs that
   * start meanwhile run on the CPU where they allow it, and a job that needs
   * the GPU is refused (the coordinator, told by the next heartbeat, sends
   * no more).
   */
  async setGpuOff(reason: string | null): Promise<void> {
    const was = this.gpuOff;
    this.gpuOff = reason;
    if (reason !== null && was === null) await this.handBackWhere(reason, (r) => r.onGpu);
  }

  private gpuBackends(kind: string): readonly string[] {
    return this.gpuOff === null ? (this.opts.gpuBackends?.(kind) ?? []) : [];
  }

  /** Jobs at once from now on (a running job is never stopped for it); the agent reports it with the next heartbeat. */
  setSlots(slots: number): void {
    if (!Number.isInteger(slots) || slots < 1) throw new GridError('GG_ERR_CONFIG_INVALID', `slots must be a whole number ≥ 1, not ${slots}`);
    this.slots = slots;
  }

  get slotCount(): number {
    return this.slots;
  }

  /** The owner's (or administrator's) core limit: jobs that start from now on get `threads` runtime threads. */
  setThreads(threads: number): void {
    if (!Number.isInteger(threads) || threads < 1) throw new GridError('GG_ERR_CONFIG_INVALID', `threads must be a whole number ≥ 1, not ${threads}`);
    this.threads = threads;
  }

  accept(assign: { job: JobSpec; leaseId: string }): void {
    const { job, leaseId } = assign;
    const refuse = (code: ErrorCode, message: string) => void this.sendResult({ type: 'job.result', jobId: job.jobId, leaseId, outcome: failure(code, message) });
    if (this.jobs.has(job.jobId)) return;
    if (this.jobs.size >= this.slots) {
      refuse('GG_ERR_WORKER_BUSY', `all ${this.slots} slots are busy`);
      return;
    }
    if (!this.opts.canRun(job.kind)) {
      refuse('GG_ERR_EXECUTOR_UNAVAILABLE', `this worker has no executor for ${job.kind} jobs`);
      return;
    }
    const gpu = job.requirements.gpu;
    if (gpu && !gpu.fallback && this.gpuOff !== null) {
      refuse('GG_ERR_GPU_UNAVAILABLE', this.gpuOff);
      return;
    }
    const controller = new AbortController();
    const entry: Running = {
      leaseId,
      kind: job.kind,
      modelName: job.model.name,
      startedAt: new Date(),
      progress: 0,
      detail: null,
      controller,
      done: Promise.resolve(),
      onGpu: (gpu !== undefined || this.opts.gpuByDefault?.(job.kind) === true) && this.gpuBackends(job.kind).length > 0,
    };
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
    const { signal } = entry.controller;
    const log = this.opts.logger.child({ jobId, attempt: job.attempt });
    const startReportMs = this.opts.startReportMs ?? START_REPORT_MS;
    // Monotonic, unlike entry.startedAt (the wall-clock time the status window shows).
    const started = performance.now();
    const runMs = () => Math.floor(performance.now() - started);
    /** When progress last went out; 0 until the start has been reported. */
    let lastSent = 0;
    const sendProgress = (p: number, message?: string) => {
      lastSent = Date.now();
      void this.report({ type: 'job.progress', jobId, leaseId: entry.leaseId, progress: p, ...(message ? { message } : {}) });
    };
    const progress = (p: number, message?: string) => {
      entry.progress = p;
      if (message !== undefined) entry.detail = message;
      const quiet = lastSent === 0 ? runMs() < startReportMs : Date.now() - lastSent < PROGRESS_EVERY_MS;
      if (!quiet) sendProgress(p, message);
    };
    // The first progress message marks the job running at the coordinator.
    const startReport = setTimeout(() => lastSent === 0 && sendProgress(entry.progress ?? 0, 'started'), startReportMs);
    const partials = partialOutput((offset, text, tokens) => void this.report({ type: 'job.partial', jobId, leaseId: entry.leaseId, offset, text, ...(tokens && { tokens }) }));
    let model: { path: string; release(): void } | undefined;
    try {
      const input = job.inputByReference ? await this.opts.transfer.fetchInput(jobId, entry.leaseId) : job.input;
      model = await this.opts.models.acquire(job.model, signal);
      const output = await this.opts.run(job.kind, { ...job, input, inputByReference: false }, {
        modelPath: model.path,
        threads: this.threads,
        slots: this.slots,
        gpuBackends: entry.onGpu ? this.gpuBackends(job.kind) : [],
        timeoutMs: job.timeoutMs,
        signal,
        onProgress: (p, message) => progress(p, message),
        onPartial: (piece) => partials.add(piece),
        suspension: this.suspension,
      });
      // Sent before the result, on the same stream: a client streaming the output gets all of it first.
      partials.flush();
      // What the coordinator would refuse (or store as a failure) is this worker's failure, said here.
      const problem = checkJobPayload(job.kind, 'output', output) ?? checkJson(output);
      if (problem) throw new GridError('GG_ERR_OUTPUT_INVALID', `the ${job.kind} executor returned an invalid result: ${problem}`);
      log.info('job succeeded');
      const result = { type: 'job.result' as const, jobId, leaseId: entry.leaseId, runMs: runMs(), outcome: { ok: true as const, output } };
      if (Buffer.byteLength(JSON.stringify(output)) <= MAX_INLINE_PAYLOAD_BYTES) await this.sendResult(result);
      else await this.postLarge(result);
    } catch (e) {
      if (signal.aborted) {
        // Canceled, or the connection dropped: the lease is gone, nothing to send.
        if (entry.handBack === undefined) {
          log.info('job stopped');
          return;
        }
        if (e === signal.reason || isGridError(e, 'GG_ERR_JOB_CANCELED')) {
          log.info(`job handed back: ${entry.handBack}`);
          await this.report({ type: 'job.release', jobId, leaseId: entry.leaseId, reason: entry.handBack });
          return;
        }
        // It failed on its own (a timeout, a crash) before the hand-back reached it: that is its result.
      }
      const err = isGridError(e) ? e : new GridError('GG_ERR_INTERNAL', e instanceof Error ? e.message : String(e));
      log.warn({ code: err.code }, `job failed: ${err.message}`);
      await this.sendResult({
        type: 'job.result',
        jobId,
        leaseId: entry.leaseId,
        runMs: runMs(),
        outcome: failure(err.code, asMessage(err.message, model ? [[model.path, `the model file of ${job.model.name}`]] : [])),
      });
    } finally {
      clearTimeout(startReport);
      partials.stop();
      model?.release();
    }
  }

  /** A result too large for a frame, over HTTPS; one that cannot be sent is reported as a failure the coordinator can show. */
  private async postLarge(result: ResultMessage): Promise<void> {
    try {
      await this.opts.transfer.postResult(result);
      this.finished(result);
    } catch (e) {
      const err = isGridError(e) ? e : new GridError('GG_ERR_INTERNAL', String(e));
      if (err.code === 'GG_ERR_JOB_LEASE_STALE') return;
      await this.sendResult({
        type: 'job.result',
        jobId: result.jobId,
        leaseId: result.leaseId,
        runMs: result.runMs,
        outcome: failure(err.code, asMessage(`could not upload the result: ${err.message}`)),
      });
    }
  }

  /** Sends a result on the current connection, then tells `finished`; one too large for a frame goes as a failure the coordinator can show. */
  private async sendResult(result: ResultMessage): Promise<void> {
    const send = this.send;
    let sent = result;
    try {
      await send?.(result);
    } catch (e) {
      if (!isGridError(e, 'GG_ERR_FRAME_TOO_LARGE')) {
        this.opts.logger.debug({ err: e, type: result.type }, 'could not send to the coordinator');
      } else {
        sent = {
          type: 'job.result',
          jobId: result.jobId,
          leaseId: result.leaseId,
          runMs: result.runMs,
          outcome: failure('GG_ERR_FRAME_TOO_LARGE', asMessage(`the output is too large to send inline: ${e.message}`)),
        };
        await this.report(sent);
      }
    }
    this.finished(sent);
  }

  private finished({ jobId, outcome }: ResultMessage): void {
    this.emit('finished', { jobId, ok: outcome.ok, error: outcome.ok ? null : outcome.error.message, at: new Date() });
  }

  /** Sends on the current connection, if any; never rejects. */
  private async report(msg: WorkerMessageInput): Promise<void> {
    try {
      await this.send?.(msg);
    } catch (e) {
      this.opts.logger.debug({ err: e, type: msg.type }, 'could not send to the coordinator');
    }
  }
}

/** A failed outcome; whether the coordinator may run the job again is the registry's word for the code, never the call site's. */
function failure(code: ErrorCode, message: string): ResultMessage['outcome'] {
  return { ok: false, error: { code, message, retryable: ERROR_CODES[code].retryable } };
}

/**
 * An error message as the protocol takes it, and as the coordinator's users
 * may see it: a runtime's text may hold control characters, may be long, and
 * names files on this machine (onnxruntime: "Load model from /home/…/models/…
 * failed"), which say who runs it and how it is laid out. `local` pairs a path
 * with what to say instead; the model cache's folder and the home directory
 * are always replaced.
 */
function asMessage(text: string, local: [path: string, shown: string][] = []): string {
  let t = text;
  const places = [...local, ...local.map(([p]): [string, string] => [dirname(p), '(model cache)']), [homedir(), '~'] as [string, string]];
  for (const [path, shown] of places) if (path.length > 1) t = t.replaceAll(path, shown);
  // Cut first: cleaning also mends a surrogate pair the cut split.
  return cleanText(t.slice(0, MAX_ERROR_MESSAGE));
}

/** A job's output as it is produced: pieces at most every PARTIAL_EVERY_MS, each saying where it starts, cut to fit a frame. */
function partialOutput(send: (offset: number, text: string, tokens: number[] | undefined) => void): GatheredPieces {
  let sent = 0;
  return new GatheredPieces(
    PARTIAL_EVERY_MS,
    ({ text, tokens }) => {
      // Tokens go only with the whole text they decode to: a piece cut to fit a frame goes without.
      const whole = text.length <= MAX_PARTIAL_CHARS && tokens && tokens.length <= MAX_PARTIAL_CHARS ? tokens : undefined;
      for (let at = 0; at < text.length; at += MAX_PARTIAL_CHARS) {
        const part = text.slice(at, at + MAX_PARTIAL_CHARS);
        send(sent, part, whole);
        sent += part.length;
      }
    },
    MAX_PARTIAL_CHARS,
  );
}
