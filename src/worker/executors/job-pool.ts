/**
 * Warm job processes, per job kind: a process that ended a job cleanly waits
 * for the next job of its kind instead of exiting, so a job costs an IPC round
 * trip rather than a fork (node, zod and the runtime loaded again each time).
 *
 *   const pool = new JobProcessPool({ maxIdle: slots, logger });
 *   const output = await pool.run('onnx', job, { modelPath, threads, timeoutMs, signal, onProgress });
 *   pool.on('exit', ({ pid, kind, exit }) => …);   // every process that ends, and why
 *   await pool.close();                             // idle ones exit now, running ones when their jobs end
 *
 * Crash isolation is unchanged: a process whose job timed out or was canceled
 * is killed and never reused; one that crashed fails only the job it was
 * running, and the next job gets a new process. A process is never shared by
 * two jobs at once. Idle processes exit after `idleTimeoutMs`, so an idle
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
}

/** A job process as the pool reports it. `jobs`: how many it ran. */
export interface JobProcessInfo {
  pid: number | undefined;
  kind: string;
  jobs: number;
}

interface Warm extends JobProcessInfo {
  child: JobChild;
  busy: boolean;
  idleTimer?: NodeJS.Timeout;
  /** The model of its latest job: its executor keeps that one loaded. */
  model?: string;
}

export class JobProcessPool extends EventEmitter<{ spawn: [JobProcessInfo]; exit: [JobProcessInfo & { exit: JobExit }] }> {
  private readonly settings: Required<Omit<JobProcessPoolOptions, 'logger' | 'priority'>> & Pick<JobProcessPoolOptions, 'logger' | 'priority'>;
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
    const proc = this.take(kind, job.model.sha256) ?? this.spawn(kind, `job ${job.jobId}`, logger);
    proc.child.assign(`job ${job.jobId}`, logger);
    proc.child.hold(true);
    proc.busy = true;
    proc.jobs += 1;
    proc.model = job.model.sha256;
    const attempt = await attemptJob(proc.child, kind, job, opts);
    proc.busy = false;
    if (attempt.reusable) this.release(proc);
    else if (proc.child.usable) this.retire(proc, 'not reused after a failure that was not a GridError');
    if (attempt.ok) return attempt.output;
    throw attempt.error;
  }

  /** Idle processes exit now, running ones when their jobs end; resolves when all that exist now are gone. The pool stays usable. */
  async close(): Promise<void> {
    this.closing += 1;
    try {
      for (const list of this.idle.values()) {
        for (const proc of list.splice(0)) this.retire(proc, 'the pool is closing');
      }
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

  private take(kind: string, model: string): Warm | undefined {
    const list = this.idle.get(kind);
    if (!list) return undefined;
    // One that has the model loaded (an LLM's load takes seconds), else the most recently used: its caches are warmest, and the others can time out.
    const loaded = list.findLastIndex((p) => p.model === model && p.child.usable);
    if (loaded >= 0) list.push(...list.splice(loaded, 1));
    for (let proc = list.pop(); proc; proc = list.pop()) {
      clearTimeout(proc.idleTimer);
      if (proc.child.usable) return proc;
    }
    return undefined;
  }

  private spawn(kind: string, label: string, logger: JobLogger | undefined): Warm {
    const child = JobChild.fork({ label, logger, ...(this.settings.priority && { priority: this.settings.priority }) });
    const proc: Warm = { child, pid: child.pid, kind, jobs: 0, busy: false };
    this.all.add(proc);
    // Between jobs a process has nothing to say; if it speaks, it is not in the state we think.
    child.on('message', () => {
      if (!proc.busy) child.kill('killed', 'sent a message while idle');
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

  /** A process that ended its job cleanly: back to the pool, unless it has done its share or the pool is full or closing. */
  private release(proc: Warm): void {
    if (!proc.child.usable) return; // it died meanwhile; its exit cleans up
    const list = this.idle.get(proc.kind) ?? [];
    const { maxIdle, maxJobsPerProcess, idleTimeoutMs } = this.settings;
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
