/**
 * The worker's handle on one job process: a forked Node process with typed
 * exits, after VS Code's utilityProcess. Knows processes, not jobs; see
 * child-runner.ts for the job logic.
 *
 *   const child = JobChild.fork({ label: `job ${jobId}`, logger });
 *   child.on('message', (msg) => …);               // parsed FromJobProcess messages only
 *   child.send({ type: 'run', … });
 *   child.kill('canceled');                         // SIGTERM, then SIGKILL after the grace
 *   const exit = await child.exited;                // { reason: 'canceled', code: null, signal: 'SIGTERM' }
 *
 * Log lines (the child's stdout and stderr included) are prefixed
 * `[<label> pid <pid>]`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { FromJobProcess, type ToJobProcess } from './ipc.js';

/**
 * Why the process ended: `done` after `finish()`, `timeout`/`canceled`/`killed`
 * after `kill(reason)`, `crashed` when it ended on its own (a segfault, an
 * abort, `process.exit`, the OOM killer) or could not start.
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
}

/** Lines of stderr kept for the message of a crash. */
const STDERR_TAIL_LINES = 20;
/** How long after exit the pipes may stay open before the exit is reported anyway. */
const STDIO_DRAIN_MS = 1000;

// Run from TypeScript source (tests, tsx), the job process needs tsx too; from dist/, plain node.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = fileURLToPath(new URL(FROM_SOURCE ? './job-process.ts' : './job-process.js', import.meta.url));
const EXEC_ARGV = FROM_SOURCE ? ['--import', 'tsx'] : [];

export class JobChild extends EventEmitter<{ message: [FromJobProcess] }> {
  /** Settles once the process is gone and its output has been read; never rejects. */
  readonly exited: Promise<JobExit>;
  private readonly proc: ChildProcess;
  private readonly prefix: string;
  private readonly stderrTail: string[] = [];
  private ending: { reason: JobExitReason; detail?: string } | undefined;
  private killTimer: NodeJS.Timeout | undefined;

  static fork(options: JobChildOptions): JobChild {
    return new JobChild(options);
  }

  private constructor(private readonly options: JobChildOptions) {
    super();
    this.proc = fork(ENTRY, [], {
      execArgv: EXEC_ARGV,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.prefix = `[${options.label} pid ${this.proc.pid ?? '?'}]`;
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

  send(msg: ToJobProcess): void {
    if (!this.proc.connected) return;
    // An EPIPE here means the process is already dying; its exit says why.
    this.proc.send(msg, (err) => err && this.log('debug', `send failed: ${err.message}`));
  }

  /** The job is over: close the channel (the process exits on disconnect), kill it if it lingers. */
  finish(): void {
    if (this.ending) return;
    this.ending = { reason: 'done' };
    if (this.proc.connected) this.proc.disconnect();
    if (this.alive) this.killTimer = setTimeout(() => this.signal('SIGKILL'), this.options.finishGraceMs ?? 2000);
  }

  /** SIGTERM now and SIGKILL after the grace. The first reason given is the one reported. */
  kill(reason: 'timeout' | 'canceled' | 'killed', detail?: string): void {
    // A process that already ended, or is already being killed, keeps the reason it has.
    if (!this.alive || (this.ending && this.ending.reason !== 'done')) return;
    clearTimeout(this.killTimer);
    this.ending = { reason, detail };
    this.signal('SIGTERM');
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
      this.kill('killed', `sent an invalid message (${parsed.error.issues[0]?.message ?? 'schema mismatch'})`);
      return;
    }
    this.emit('message', parsed.data);
  }

  private settle(code: number | null, signal: NodeJS.Signals | null, startError?: string): JobExit {
    clearTimeout(this.killTimer);
    const reason = startError ? 'crashed' : (this.ending?.reason ?? 'crashed');
    const detail = startError ?? this.ending?.detail;
    this.log(reason === 'done' ? 'debug' : 'info', `exited: ${reason}, code ${code}, signal ${signal}${detail ? `, ${detail}` : ''}`);
    return { reason, code, signal, ...(detail !== undefined && { detail }) };
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
    this.options.logger?.[level](`${this.prefix} ${msg}`);
  }
}
