/**
 * Warm job processes, per job kind: a process that ended a job cleanly waits
 * for the next job of its kind instead of exiting, so a job costs an IPC round
 * trip rather than a fork (node, zod and the runtime loaded again each time).
 *
 *   const pool = new JobProcessPool({ maxIdle: slots, logger });
 *   const output = await pool.run('onnx', job, { modelPath, threads, timeoutMs, signal, onProgress });
 *   pool.on('exit', ({ pid, kind, exit }) => …);   // every process that ends, and why
 *   pool.dropIdle('the owner is using the machine'); // idle ones exit now: their memory goes back
 *   await pool.close();                             // idle ones exit now, running ones when their jobs end
 *
 * Crash isolation is unchanged: a process whose job timed out or was canceled
 * is killed and never reused; one that crashed fails only the job it was
 * running, and the next job gets a new process. A process runs one job at a
 * time, except for a shared executor's (the LLM's, `Executor.shared`): its
 * process runs up to `slots` jobs at once on the same model, which it loads
 * once, and a canceled or timed-out job is stopped in it, the process kept
 * (killed only if the job does not stop: job-attempt.ts); a crash there
 * fails every job it ran. Idle processes exit after `idleTimeoutMs`, so an idle
 * worker holds no runtime in memory, and they never keep the worker's event
 * loop alive (JobChild.hold). Processes run at low OS priority unless
 * `priority: 'normal'` (priority.ts). A job that comes while its suspension
 * is on waits for it to go off before it takes a process: no fork, no CPU
 * while the owner needs the machine.
 */
import { EventEmitter } from 'node:events';
import type { JobSpec } from '../../protocol/messages.js';
import { attemptJob, canceledError, type RunJobOptions } from './job-attempt.js';
import { JobChild, type JobExit, type JobLogger } from './job-child.js';
import type { JobPriority } from './priority.js';
import { EXECUTORS } from './registry.js';

export interface JobProcessPoolOptions {
  /**
   * Idle processes kept per kind: the worker's slot count, so every slot finds
   * a warm process; 0 forks a process per job.
   * @default 1
   */
  maxIdle?: number;
  /** How long an idle process waits for a job before it exits. @default 60_000 */
  idleTimeoutMs?: number;
  /**
   * Jobs one process runs before it is replaced, so a leak in a runtime (a few
   * KiB per run is the usual kind) stays bounded at this many times its size
   * whatever the model; an RSS cap would have to know how big a healthy
   * process is, and that depends on the model. A replacement costs a fork
   * (~120 ms from dist/), about 12 µs a job at 10,000: measured on 2 cores,
   * trivial jobs ran at ~4,000/s recycling every 1,000 jobs, ~8,000–15,000/s
   * every 10,000, ~10,000–15,000/s never.
   * @default 10_000
   */
  maxJobsPerProcess?: number;
  /** Where process lines go when no job's logger applies (starts, idle exits). @default none */
  logger?: JobLogger;
  /**
   * The OS priority of the processes: `low` leaves the CPU to the machine's
   * owner (nice 19, below normal on Windows); `normal` turns that off.
   * @default 'low', or `normal` with GOGRID_JOB_PRIORITY=normal in the environment
   */
  priority?: JobPriority;
  /** Whether jobs of `kind` share a process (`Executor.shared`). @default what the executor of that kind says */
  shared?(kind: string): boolean;
  /** The memory limit of a process of `kind` (memory-limit.ts); null: none. @default none */
  memoryLimitBytes?(kind: string): number | null;
}

/** A job process as the pool reports it. `jobs`: how many it ran. */
export interface JobProcessInfo {
  pid: number | undefined;
  kind: string;
  jobs: number;
}

interface Warm extends JobProcessInfo {
  child: JobChild;
  /** The jobs it runs now: at most one, or `slots` for a shared kind. */
  running: Set<string>;
  idleTimer?: NodeJS.Timeout;
  /** The model of its latest job: its executor keeps that one loaded. */
  model?: string;
  /** The slot count its jobs came with: a shared executor sized its model's context for it. */
  slots: number;
  /** Takes no more jobs, and goes once its running ones end: why. */
  retiring?: string;
}

export class JobProcessPool extends EventEmitter<{ spawn: [JobProcessInfo]; exit: [JobProcessInfo & { exit: JobExit }] }> {
  private readonly settings: Required<Omit<JobProcessPoolOptions, 'logger' | 'priority' | 'memoryLimitBytes'>> &
    Pick<JobProcessPoolOptions, 'logger' | 'priority' | 'memoryLimitBytes'>;
  private readonly idle = new Map<string, Warm[]>();
  private readonly all = new Set<Warm>();
  /** close() calls in progress: while any is, no process goes back to the pool. */
  private closing = 0;

  constructor(options: JobProcessPoolOptions = {}) {
    super();
    this.settings = {
      maxIdle: options.maxIdle ?? 1,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      maxJobsPerProcess: options.maxJobsPerProcess ?? 10_000,
      logger: options.logger,
      priority: options.priority,
      shared: options.shared ?? ((kind) => EXECUTORS.get(kind)?.shared ?? false),
      memoryLimitBytes: options.memoryLimitBytes,
    };
  }

  /**
   * Runs one job on a warm process of its kind, or a new one. Settles only
   * once the process's state is known (back in the pool, or gone). Rejects
   * with a GridError: GG_ERR_JOB_TIMEOUT (ran past `timeoutMs`, killed),
   * GG_ERR_JOB_CANCELED (`signal` aborted, killed), GG_ERR_EXECUTOR_CRASHED
   * (ended without a result; the message has the exit code or signal and the
   * last stderr lines), or the executor's own GridError, code and message intact.
   */
  async run(kind: string, job: JobSpec, opts: RunJobOptions): Promise<unknown> {
    if (opts.suspension?.suspended) await opts.suspension.whenResumed(opts.signal);
    if (opts.signal.aborted) throw canceledError(job);
    const logger = opts.logger ?? this.settings.logger;
    const shared = this.settings.shared(kind);
    const slots = shared ? (opts.slots ?? 1) : 1;
    const model = job.model.sha256;
    const proc = (shared ? this.sharing(kind, model, slots) : undefined) ?? this.take(kind, model) ?? this.spawn(kind, `job ${job.jobId}`, logger);
    // A shared process's lines name the job it took last; each job's own messages carry its id.
    proc.child.assign(proc.running.size === 0 ? `job ${job.jobId}` : `${kind} jobs`, logger);
    proc.child.hold(true);
    proc.running.add(job.jobId);
    proc.jobs += 1;
    proc.model = model;
    proc.slots = slots;
    const attempt = await attemptJob(proc.child, kind, job, { ...opts, slots, shared });
    proc.running.delete(job.jobId);
    if (!attempt.reusable && proc.child.usable) proc.retiring ??= 'not reused after a failure that was not a GridError';
    if (proc.running.size === 0) this.release(proc);
    if (attempt.ok) return attempt.output;
    throw attempt.error;
  }

  /**
   * Idle processes exit now (the memory of the models they hold goes back to
   * the machine's owner); running ones are left to end their jobs.
   */
  dropIdle(why: string): void {
    for (const list of this.idle.values()) {
      for (const proc of list.splice(0)) this.retire(proc, why);
    }
  }

  /** Idle processes exit now, running ones when their jobs end; resolves when all that exist now are gone. The pool stays usable. */
  async close(): Promise<void> {
    this.closing += 1;
    try {
      this.dropIdle('the pool is closing');
      await Promise.all([...this.all].map((proc) => proc.child.exited));
    } finally {
      this.closing -= 1;
    }
  }

  /** Every job process alive now, busy or idle: the worker's own CPU use, which the policy does not count as "other programs". */
  pids(): number[] {
    return [...this.all].flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  }

  /** The models the live processes hold (loaded, or loading for the job they run). */
  loadedModels(): string[] {
    return [...new Set([...this.all].flatMap((p) => (p.model && p.child.usable ? [p.model] : [])))];
  }

  /** Idle processes of `kind` right now. */
  idleCount(kind: string): number {
    return this.idle.get(kind)?.length ?? 0;
  }

  /** A shared process of `kind` already running jobs on `model`, with a slot to spare. */
  private sharing(kind: string, model: string, slots: number): Warm | undefined {
    for (const proc of this.all) {
      const fits = proc.kind === kind && proc.model === model && proc.slots === slots && proc.running.size < slots;
      if (fits && proc.running.size > 0 && proc.child.usable && !proc.retiring) return proc;
    }
    return undefined;
  }

  private take(kind: string, model: string): Warm | undefined {
    const list = this.idle.get(kind);
    if (!list) return undefined;
    // One that has the model loaded (an LLM's load takes seconds). Else, for a
    // shared kind, the one idle longest: it gives up its model, and the models
    // used lately stay loaded (least recently used goes). Else the most
    // recently used: its caches are warmest, and the others can time out.
    const loaded = list.findLastIndex((p) => p.model === model && p.child.usable);
    if (loaded >= 0) list.push(...list.splice(loaded, 1));
    else if (this.settings.shared(kind) && list.length > 1) list.push(...list.splice(0, 1));
    for (let proc = list.pop(); proc; proc = list.pop()) {
      clearTimeout(proc.idleTimer);
      if (proc.child.usable) return proc;
    }
    return undefined;
  }

  private spawn(kind: string, label: string, logger: JobLogger | undefined): Warm {
    const child = JobChild.fork({
      label,
      logger,
      ...(this.settings.priority && { priority: this.settings.priority }),
      memoryLimitBytes: this.settings.memoryLimitBytes?.(kind) ?? null,
    });
    const proc: Warm = { child, pid: child.pid, kind, jobs: 0, running: new Set(), slots: 1 };
    this.all.add(proc);
    // A process speaks of the jobs it was given; otherwise it is not in the state we think.
    child.on('message', (msg) => {
      if (!proc.running.has(msg.jobId)) child.kill('killed', proc.running.size === 0 ? 'sent a message while idle' : `reported on job ${msg.jobId}, which it does not run`);
    });
    child.once('exit', (exit) => {
      clearTimeout(proc.idleTimer);
      this.all.delete(proc);
      this.removeIdle(proc);
      this.emit('exit', { pid: proc.pid, kind, jobs: proc.jobs, exit });
    });
    this.emit('spawn', { pid: proc.pid, kind, jobs: 0 });
    return proc;
  }

  /** A process whose jobs have all ended: back to the pool, unless it has done its share or the pool is full or closing. */
  private release(proc: Warm): void {
    if (!proc.child.usable) return; // it died meanwhile; its exit cleans up
    // A result may cross a SIGSTOP in the pipe; the process goes back to the pool running.
    proc.child.resume();
    const list = this.idle.get(proc.kind) ?? [];
    const { maxIdle, maxJobsPerProcess, idleTimeoutMs } = this.settings;
    if (proc.retiring) return this.retire(proc, proc.retiring);
    if (this.closing > 0) return this.retire(proc, 'the pool is closing');
    if (proc.jobs >= maxJobsPerProcess) return this.retire(proc, `recycled after ${proc.jobs} jobs`);
    if (list.length >= maxIdle) return this.retire(proc, `${maxIdle} idle ${proc.kind} process${maxIdle === 1 ? '' : 'es'} already`);
    proc.child.assign(`${proc.kind} idle`, this.settings.logger);
    proc.child.hold(false);
    proc.idleTimer = setTimeout(() => {
      this.removeIdle(proc);
      this.retire(proc, `idle for ${idleTimeoutMs} ms`);
    }, idleTimeoutMs).unref();
    list.push(proc);
    this.idle.set(proc.kind, list);
  }

  private retire(proc: Warm, why: string): void {
    clearTimeout(proc.idleTimer);
    proc.child.assign(`${proc.kind} retiring`, this.settings.logger);
    proc.child.finish(why);
  }

  private removeIdle(proc: Warm): void {
    const list = this.idle.get(proc.kind);
    const at = list ? list.indexOf(proc) : -1;
    if (list && at >= 0) list.splice(at, 1);
  }
}
