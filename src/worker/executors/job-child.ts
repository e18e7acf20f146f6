/**
 * The worker's handle on one job process: a forked Node process with typed
 * exits, after VS Code's utilityProcess. Knows processes, not jobs; see
 * job-attempt.ts for one job on it and job-pool.ts for keeping it warm.
 *
 *   const child = JobChild.fork({ label: `job ${jobId}`, logger });
 *   child.on('message', (msg) => …);               // parsed FromJobProcess messages only
 *   child.send({ type: 'run', … });
 *   child.assign(`job ${nextJobId}`, logger);       // a warm process takes its next job
 *   child.hold(false);                              // idle: it no longer keeps the worker's event loop alive
 *   child.suspend(); child.resume();                // SIGSTOP / SIGCONT: the owner needs the CPU for a while
 *   child.kill('canceled');                         // SIGTERM, then SIGKILL after the grace
 *   child.finish('idle for 60000 ms');              // or: close the channel, the process exits on its own
 *   const exit = await child.exited;                // { reason: 'canceled', code: null, signal: 'SIGTERM' }
 *
 * Log lines (the child's stdout and stderr included) are prefixed
 * `[<label> pid <pid>]`. The process runs at low priority unless told
 * otherwise (priority.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { firstZodProblem } from '../../protocol/zod-problems.js';
import { entryPoint } from './entry-point.js';
import { FromJobProcess, type ToJobProcess } from './ipc.js';
import { applyPriority, defaultJobPriority, priorityEnv, priorityPlan, type JobPriority } from './priority.js';
import { MEMORY_LIMIT_ENV } from './memory-limit.js';

/**
 * Why the process ended: `done` after `finish()` (no more jobs for it),
 * `timeout`/`canceled`/`killed` after `kill(reason)`, `crashed` when it ended
 * on its own (a segfault, an abort, `process.exit`, the OOM killer) or could
 * not start.
 */
export type JobExitReason = 'done' | 'crashed' | 'timeout' | 'canceled' | 'killed';

export interface JobExit {
  reason: JobExitReason;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why we killed it (`kill`'s detail), or why it could not start. */
  detail?: string;
}

export type JobLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface JobChildOptions {
  /** Names the process in log lines and errors, e.g. `job 42`. */
  label: string;
  logger?: JobLogger;
  /**
   * How long SIGTERM may take before SIGKILL.
   * @default 300
   */
  killGraceMs?: number;
  /**
   * How long the process may take to exit after `finish()` before it is killed.
   * @default 2000
   */
  finishGraceMs?: number;
  /** @default 'low' (GOGRID_JOB_PRIORITY=normal changes it: priority.ts) */
  priority?: JobPriority;
  /** The process kills itself past this much resident memory (memory-limit.ts). @default none */
  memoryLimitBytes?: number | null;
}

/** Lines of stderr kept for the message of a crash. */
const STDERR_TAIL_LINES = 20;
/** How long after exit the pipes may stay open before the exit is reported anyway. */
const STDIO_DRAIN_MS = 1000;

/**
 * Job processes stopped right now. A stopped process cannot see its channel
 * close, so if the worker exits while one is stopped it would stay stopped
 * for good, holding its memory: kill it on the way out. That covers a normal
 * exit and an uncaught exception, not a signal that ends the worker outright
 * (SIGKILL, the OOM killer); the orphan then stays stopped until killed.
 */
const STOPPED = new Set<ChildProcess>();
let exitHook = false;

export class JobChild extends EventEmitter<{ message: [FromJobProcess]; exit: [JobExit] }> {
  /** Settles once the process is gone and its output has been read; never rejects. The `exit` event fires just before. */
  readonly exited: Promise<JobExit>;
  private readonly proc: ChildProcess;
  private prefix: string;
  private logger: JobLogger | undefined;
  private readonly stderrTail: string[] = [];
  private ending: { reason: JobExitReason; detail?: string } | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  static fork(options: JobChildOptions): JobChild {
    return new JobChild(options);
  }

  private constructor(private readonly options: JobChildOptions) {
    super();
    this.logger = options.logger;
    const plan = priorityPlan(options.priority ?? defaultJobPriority(), process.platform);
    const limit = options.memoryLimitBytes ?? null;
    const entry = entryPoint('job-process');
    this.proc = fork(entry.file, [], {
      execArgv: limit === null ? entry.execArgv : [...entry.execArgv, `--max-old-space-size=${Math.floor(limit / 2 ** 20)}`],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
      detached: plan.ownSession,
      env: { ...process.env, ...priorityEnv(plan), ...(limit !== null && { [MEMORY_LIMIT_ENV]: String(limit) }) },
    });
    this.prefix = `[${options.label} pid ${this.proc.pid ?? '?'}]`;
    const notLowered = this.proc.pid === undefined ? null : applyPriority(this.proc.pid, plan);
    if (notLowered) this.log('warn', `could not lower its priority: ${notLowered}`);
    this.readLines(this.proc.stdout, false);
    this.readLines(this.proc.stderr, true);
    this.exited = new Promise((resolve) => {
      // Not the 'close' event: after the parent's disconnect() Node never emits it
      // (nodejs/node#19433, #65646). 'exit', then the pipes drained, so the stderr tail is complete.
      this.proc.once('exit', (code, signal) => {
        void this.drained().then(() => resolve(this.settle(code, signal)));
      });
      this.proc.once('error', (err) => {
        // A process that never started emits 'error' and no 'exit'.
        if (this.proc.pid === undefined) resolve(this.settle(null, null, `could not start: ${err.message}`));
        else this.log('warn', `process error: ${err.message}`);
      });
    });
    this.proc.on('message', (raw: unknown) => this.receive(raw));
    this.log('debug', 'started');
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Alive, connected, and neither finishing nor being killed: it can take a job. */
  get usable(): boolean {
    return this.alive && this.proc.connected && !this.ending;
  }

  /** Stopped by `suspend()` and not resumed yet. */
  get suspended(): boolean {
    return this.stopped;
  }

  /** `finish()` or `kill()` was called: whatever it sends now, its exit decides. */
  get stopping(): boolean {
    return this.ending !== undefined;
  }

  /** Names the process after the job it runs now and sends its lines to that job's logger; forgets the last job's stderr. */
  assign(label: string, logger: JobLogger | undefined): void {
    this.prefix = `[${label} pid ${this.proc.pid ?? '?'}]`;
    this.logger = logger;
    this.stderrTail.length = 0;
  }

  /**
   * Whether this process keeps the worker's event loop alive: yes while it
   * runs a job, no while it waits for one, so idle job processes never hold
   * a worker (or a script) open. When the worker exits, the channel closes
   * and an idle job process exits with it.
   */
  hold(on: boolean): void {
    const method = on ? 'ref' : 'unref';
    this.proc[method]();
    this.proc.channel?.[method]();
    for (const stream of [this.proc.stdout, this.proc.stderr]) if (stream instanceof Socket) stream[method]();
  }

  send(msg: ToJobProcess): void {
    if (!this.proc.connected) return;
    // An EPIPE here means the process is already dying; its exit says why.
    this.proc.send(msg, (err) => err && this.log('debug', `send failed: ${err.message}`));
  }

  /**
   * Stops the process where it is (SIGSTOP: it cannot be caught or ignored);
   * `resume()` lets it go on. Not on Windows, which has no such signal: the
   * caller checks the platform first. A process already being killed is left
   * to die.
   */
  suspend(): void {
    if (this.stopped || !this.alive || this.ending) return;
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const proc of STOPPED) proc.kill('SIGKILL');
      });
    }
    this.stopped = true;
    STOPPED.add(this.proc);
    this.signal('SIGSTOP');
  }

  resume(): void {
    if (!this.stopped) return;
    this.stopped = false;
    STOPPED.delete(this.proc);
    this.signal('SIGCONT');
  }

  /**
   * No more jobs for it: close the channel (the process exits on disconnect),
   * kill it if it lingers. `detail` says why (`idle for 60000 ms`).
   */
  finish(detail?: string): void {
    if (this.ending) return;
    this.ending = { reason: 'done', ...(detail !== undefined && { detail }) };
    // Whoever awaits `exited` now needs the exit event, even from an idle process.
    this.hold(true);
    // A stopped process would not see the channel close.
    this.resume();
    if (this.proc.connected) this.proc.disconnect();
    if (this.alive) this.killTimer = setTimeout(() => this.signal('SIGKILL'), this.options.finishGraceMs ?? 2000);
  }

  /** SIGTERM now and SIGKILL after the grace. The first reason given is the one reported. */
  kill(reason: 'timeout' | 'canceled' | 'killed', detail?: string): void {
    // A process that already ended, or is already being killed, keeps the reason it has.
    if (!this.alive || (this.ending && this.ending.reason !== 'done')) return;
    clearTimeout(this.killTimer);
    this.ending = { reason, detail };
    this.hold(true);
    this.signal('SIGTERM');
    // Linux ends a stopped process on a fatal SIGTERM, but one that handles
    // SIGTERM, or another kernel, would keep it pending until SIGCONT.
    this.resume();
    this.killTimer = setTimeout(() => this.signal('SIGKILL'), this.options.killGraceMs ?? 300);
  }

  /** The last lines the process wrote to stderr. */
  stderr(): string {
    return this.stderrTail.join('\n');
  }

  private receive(raw: unknown): void {
    const parsed = FromJobProcess.safeParse(raw);
    if (!parsed.success) {
      this.log('warn', `invalid message: ${parsed.error.message}`);
      this.kill('killed', `sent an invalid message (${firstZodProblem(parsed.error)})`);
      return;
    }
    this.emit('message', parsed.data);
  }

  private settle(code: number | null, signal: NodeJS.Signals | null, startError?: string): JobExit {
    clearTimeout(this.killTimer);
    this.stopped = false;
    STOPPED.delete(this.proc);
    const reason = startError ? 'crashed' : (this.ending?.reason ?? 'crashed');
    const detail = startError ?? this.ending?.detail;
    this.log(reason === 'done' ? 'debug' : 'info', `exited: ${reason}, code ${code}, signal ${signal}${detail ? `, ${detail}` : ''}`);
    const exit: JobExit = { reason, code, signal, ...(detail !== undefined && { detail }) };
    this.emit('exit', exit);
    return exit;
  }

  /** Pipes and channel closed, or STDIO_DRAIN_MS after exit (a grandchild may hold the pipes open). */
  private drained(): Promise<void> {
    const pending: Promise<unknown>[] = [];
    for (const stream of [this.proc.stdout, this.proc.stderr]) if (stream && !stream.closed) pending.push(once(stream, 'close'));
    // The channel reports its end only after every message the process sent has been read.
    if (this.proc.connected) pending.push(once(this.proc, 'disconnect'));
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, STDIO_DRAIN_MS)));
    const closed = Promise.all(pending.map((p) => p.catch(() => undefined)));
    return Promise.race([closed, limit]).then(() => clearTimeout(timer));
  }

  private get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(sig);
  }

  private readLines(stream: NodeJS.ReadableStream | null, isStderr: boolean): void {
    if (!stream) return;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (isStderr) {
        this.stderrTail.push(line);
        if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
      }
      this.log(isStderr ? 'warn' : 'info', line);
    });
  }

  private log(level: 'debug' | 'info' | 'warn', msg: string): void {
    this.logger?.[level](`${this.prefix} ${msg}`);
  }
}
