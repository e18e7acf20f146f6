/**
 * The polite worker's loop (issue 5): reads the signals, decides with the
 * policy (policy/), and makes the running jobs step aside — suspended the
 * moment their owner needs the machine, handed back once the pause outlasts
 * the grace period. It looks often while a job runs and seldom otherwise;
 * steps never overlap (a slow signal read delays the next, it does not pile up).
 *
 *   const loop = new PolicyLoop({ signals, logger, runner: () => worker?.runner ?? null, policy: () => policy,
 *                                 control: () => settings.control, settle, onDecision, onStep });
 *   await loop.step();   // decide now (before `hello`, after the owner acted)
 *   loop.start();        // then on its own cadence, until stop()
 */
import type { Logger } from 'pino';
import type { UserControl } from '../protocol/index.js';
import type { JobRunner } from './job-runner.js';
import { decide, INITIAL_MEMORY, policyNow, type Decision, type Policy, type PolicyMemory } from './policy/index.js';
import { UNKNOWN_READINGS, type SignalReadings, type SignalSource } from './signals/index.js';
import { WORKER_DEFAULTS } from './worker-config.js';

export interface PolicyLoopOptions {
  signals: Pick<SignalSource, 'read'>;
  logger: Logger;
  /** The jobs to move aside; null while there is no worker. */
  runner(): JobRunner | null;
  policy(): Policy;
  control(): UserControl;
  /** Saves a control the loop settled: a "finish" with nothing left running is a pause, a snooze that ran out is over. */
  settle(control: UserControl): Promise<void>;
  /** The decision changed in what the coordinator is told: run, take jobs, or the reason. */
  onDecision(decision: Decision): void;
  /** After each step. */
  onStep(): void;
  /** The look's interval while a job runs. */
  intervalMs?: number;
  /** The look's interval while none runs (an assignment wakes the loop at once). */
  idleIntervalMs?: number;
  /** How long a suspended job waits for its owner to leave again before it is handed back. */
  suspendGraceMs?: number;
}

export class PolicyLoop {
  private memory: PolicyMemory = INITIAL_MEMORY;
  private current: Decision | null = null;
  private suspendedSince: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** Looking often (a job runs) or seldom, between start() and stop(). */
  private cadence: 'not started' | 'watching' | 'idle' | 'stopped' = 'not started';
  /** The step in flight, which the next one waits for. */
  private inFlight: Promise<void> | null = null;

  constructor(private readonly opts: PolicyLoopOptions) {}

  /** The last decision; null before the first step. */
  get decision(): Decision | null {
    return this.current;
  }

  /** Steps from now on, by itself. */
  start(): void {
    if (this.cadence === 'not started') this.schedule();
  }

  /** No further steps; resolves once the one in flight is done. */
  async stop(): Promise<void> {
    this.cadence = 'stopped';
    clearTimeout(this.timer);
    await this.inFlight;
  }

  /** A job started: while the loop looks seldom, it looks now and often from now on. */
  jobStarted(): void {
    if (this.cadence === 'idle') void this.step().finally(() => this.schedule());
  }

  /** One step now, or the one in flight; none once stopped. */
  step(): Promise<void> {
    if (this.cadence === 'stopped') return Promise.resolve();
    this.inFlight ??= this.look().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private schedule(): void {
    if (this.cadence === 'stopped') return;
    clearTimeout(this.timer);
    this.cadence = (this.opts.runner()?.busy ?? 0) > 0 ? 'watching' : 'idle';
    const ms = this.cadence === 'watching' ? (this.opts.intervalMs ?? WORKER_DEFAULTS.policyIntervalMs) : (this.opts.idleIntervalMs ?? WORKER_DEFAULTS.idlePolicyIntervalMs);
    this.timer = setTimeout(() => void this.step().finally(() => this.schedule()), ms);
    this.timer.unref();
  }

  private async look(): Promise<void> {
    let readings: SignalReadings;
    try {
      readings = await this.opts.signals.read();
    } catch (e) {
      this.opts.logger.debug({ err: e }, 'signals unreadable; treating them as unknown');
      readings = UNKNOWN_READINGS;
    }
    const runner = this.opts.runner();
    const nowMs = Date.now();
    const saved = this.opts.control();
    let control = saved;
    // A finished "finish" and a run-out snooze are settled, so a restart does not repeat them.
    if (control.state === 'finishing' && (runner?.busy ?? 0) === 0) control = { state: 'paused' };
    if (control.state === 'snoozed' && control.untilMs <= nowMs) control = { state: 'active' };
    if (control !== saved) await this.opts.settle(control);

    const before = this.current;
    const d = decide(this.opts.policy(), { ...readings, control, jobRunning: (runner?.busy ?? 0) > 0 }, this.memory, policyNow(new Date(nowMs)));
    this.memory = d.memory;
    this.current = d;
    if (runner) await this.stepAside(runner, d, nowMs);
    if (!before || before.run !== d.run || before.acceptJobs !== d.acceptJobs || before.reason !== d.reason || before.gpuReason !== d.gpuReason) {
      // The first decision is part of starting up, not news.
      if (before && before.run !== d.run) this.opts.logger.info({ run: d.run, cause: d.cause }, d.reason);
      this.opts.onDecision(d);
    }
    this.opts.onStep();
  }

  /**
   * Suspends running jobs while the policy says stop; hands them back once
   * the pause outlasts the grace period. Idle job processes go at once: the
   * memory of the models they hold is the owner's while they need the machine.
   */
  private async stepAside(runner: JobRunner, d: Decision, nowMs: number): Promise<void> {
    const { logger } = this.opts;
    await runner.setGpuOff(d.gpu ? null : (d.gpuReason ?? d.reason));
    if (d.run) {
      if (runner.suspended) {
        runner.resume();
        logger.info('jobs resumed');
      }
      this.suspendedSince = null;
      return;
    }
    runner.giveBackMemory(d.reason);
    if (runner.busy === 0) {
      if (runner.suspended) runner.resume();
      this.suspendedSince = null;
      return;
    }
    if (!runner.suspended) {
      if (runner.suspend()) {
        this.suspendedSince = nowMs;
        logger.info({ reason: d.reason }, 'jobs suspended');
        return;
      }
      logger.info({ reason: d.reason }, 'jobs cannot be suspended here: handing them back');
      await runner.handBack(d.reason);
      return;
    }
    if (this.suspendedSince !== null && nowMs - this.suspendedSince >= (this.opts.suspendGraceMs ?? WORKER_DEFAULTS.suspendGraceMs)) {
      logger.info({ reason: d.reason }, 'paused longer than the grace period: handing the jobs back');
      this.suspendedSince = null;
      await runner.handBack(d.reason);
    }
  }
}
