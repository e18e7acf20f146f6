/**
 * The worker host: the one object both the desktop app and the headless
 * worker run. It starts the worker (or waits for enrollment), applies the
 * polite-worker policy (twice a second while a job runs) — suspending a job the moment
 * its owner needs the machine and handing it back after a grace period —,
 * keeps the owner's settings, and answers the status window
 * (`ControlTarget`).
 *
 *   const host = await openWorkerHost({ dataDir, appVersion, logger, defaultPreset: 'dedicated',
 *                                       signals: headlessSignals({ ownPids }), startAtLogin: null });
 *   host.on('view', (v) => tray.update(v));
 *   await host.act({ action: 'snooze', minutes: 60 });
 *   await host.quit({ graceMs: 30_000 });   // no new jobs; finish or hand back; disconnect
 */
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import {
  GridError,
  isGridError,
  MAX_SNOOZE_MS,
  parseEnrollmentToken,
  type AdminOverride,
  type ConnectionState,
  type ControlAction,
  type EnrollForm,
  type SettingsUpdate,
  type UserControl,
  type WorkerStatus,
  type WorkerView,
} from '../protocol/index.js';
import { parseCoordinatorAddress } from './address.js';
import type { ControlTarget } from './control/target.js';
import { loadHostSettings, saveHostSettings, type HostSettings } from './host-settings.js';
import { DayCounts, hardwareView } from './host-view.js';
import { compilePolicy, decide, INITIAL_MEMORY, policyNow, type Decision, type Policy, type PolicyMemory, type PresetName } from './policy/index.js';
import { UNKNOWN_READINGS, type SignalReadings, type SignalSource } from './signals/index.js';
import { startWorker, type RunningWorker, type StartWorkerOptions, type WorkerJobOptions } from './worker.js';

export interface WorkerHostOptions {
  dataDir: string;
  appVersion: string;
  logger: Logger;
  /** The preset when the owner chose none: `desktop` in the app, `dedicated` headless. */
  defaultPreset: Exclude<PresetName, 'custom'>;
  signals: Pick<SignalSource, 'read'>;
  /** The host's login item; null where there is none (headless). */
  startAtLogin: { get(): boolean; set(on: boolean): Promise<void> } | null;
  coordinator?: string;
  token?: string;
  name?: string;
  jobs?: WorkerJobOptions;
  agent?: StartWorkerOptions['agent'];
  /** Gives up a start still waiting to enroll with an unreachable coordinator. */
  signal?: AbortSignal;
  /**
   * How often the policy looks at the signals while a job runs: the
   * worst-case delay before it steps aside once its owner is back (goal ≤ 1 s
   * with the stop itself, BENCHMARKS.md). @default 500
   */
  policyIntervalMs?: number;
  /**
   * The same while no job runs, when nothing waits on the answer but the next
   * job's start (and an assignment wakes the policy at once). Each look costs
   * about 1 ms of CPU on a machine that was idle, so this keeps an idle
   * worker near its heartbeat's cost. @default 5000
   */
  idlePolicyIntervalMs?: number;
  /**
   * How long a suspended job waits for its owner to leave again before it is
   * handed back: long enough for a short interruption (a glance at mail),
   * short enough that the grid is not kept waiting for the job. @default 5 min
   */
  suspendGraceMs?: number;
}

export async function openWorkerHost(opts: WorkerHostOptions): Promise<WorkerHost> {
  const host = new WorkerHost(opts, await loadHostSettings(opts.dataDir, (problem) => opts.logger.warn(problem)));
  await host.open();
  return host;
}

export class WorkerHost extends EventEmitter<{ view: [WorkerView] }> implements ControlTarget {
  private worker: RunningWorker | null = null;
  /** Waiting for the worker to end for good (`whenEnded`). */
  private readonly endWaiters: ((error: unknown) => void)[] = [];
  private connection: { state: ConnectionState; detail: string | null } = { state: 'connecting', detail: null };
  private policy: Policy;
  private memory: PolicyMemory = INITIAL_MEMORY;
  private decision: Decision | null = null;
  private readings: SignalReadings = UNKNOWN_READINGS;
  private suspendedSince: number | null = null;
  private readonly counts = new DayCounts();
  private timer: NodeJS.Timeout | undefined;
  /** The next step is the quick one, for a running job. */
  private watching = false;
  private ticking: Promise<void> | null = null;
  private quitting = false;
  /** Why the host takes no new jobs for now (an update waits for the running ones), or null. */
  private drainReason: string | null = null;
  private lastView = '';

  constructor(
    private readonly opts: WorkerHostOptions,
    private settings: HostSettings,
  ) {
    super();
    this.policy = this.compile(settings);
  }

  /** @internal by openWorkerHost: decide once (so `hello` carries the right status), then start. */
  async open(): Promise<void> {
    await this.tick();
    await this.startWorker(this.opts.token);
    this.schedule();
  }

  /** The next policy step: soon while a job runs, seldom otherwise. */
  private schedule(): void {
    clearTimeout(this.timer);
    if (this.quitting) return;
    this.watching = (this.worker?.jobs.busy ?? 0) > 0;
    const ms = this.watching ? (this.opts.policyIntervalMs ?? 500) : (this.opts.idlePolicyIntervalMs ?? 5000);
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), ms);
    this.timer.unref();
  }

  // ---------------------------------------------------------------- ControlTarget

  view(): WorkerView {
    const w = this.worker;
    const d = this.decision;
    const identity = w?.agent.currentIdentity ?? null;
    return {
      appVersion: this.opts.appVersion,
      connection: {
        ...this.connection,
        coordinator: identity ? `${identity.coordinator.host}:${identity.coordinator.port}` : (this.settings.coordinator ?? null),
      },
      worker: identity ? { id: identity.workerId, name: identity.name } : null,
      hardware: w ? hardwareView(w.hardware) : null,
      jobs: { running: w?.jobs.views() ?? [], ...this.counts.view(new Date()) },
      policy: {
        run: d?.run ?? false,
        cause: d?.cause ?? 'starting',
        reason: this.quitting ? 'Quitting: finishing or handing back the running job' : (this.drainReason ?? d?.reason ?? 'Starting'),
        control: this.settings.control,
        byAdmin: this.policy.admin.paused || this.policy.admin.setRules || this.policy.admin.setLimits,
      },
      settings: {
        policy: this.settings.policy ?? { preset: this.opts.defaultPreset },
        startAtLogin: this.opts.startAtLogin?.get() ?? null,
      },
    };
  }

  async act(action: ControlAction): Promise<WorkerView> {
    const nowMs = Date.now();
    const control: UserControl = (() => {
      switch (action.action) {
        case 'pause':
          return { state: 'paused' };
        case 'resume':
          return { state: 'active' };
        case 'snooze': {
          const untilMs = action.untilMs ?? nowMs + action.minutes! * 60_000;
          if (untilMs <= nowMs || untilMs > nowMs + MAX_SNOOZE_MS) {
            throw new GridError('GG_ERR_BAD_REQUEST', `untilMs: a snooze ends in the next ${MAX_SNOOZE_MS / 86_400_000} days, not at ${untilMs}`);
          }
          return { state: 'snoozed', untilMs };
        }
        case 'finish':
          return (this.worker?.jobs.busy ?? 0) > 0 ? { state: 'finishing' } : { state: 'paused' };
      }
    })();
    await this.save({ ...this.settings, control });
    this.opts.logger.info({ control }, 'owner changed the pause state');
    await this.tick();
    return this.view();
  }

  async enroll(form: EnrollForm): Promise<WorkerView> {
    if (this.worker) throw new GridError('GG_ERR_BAD_REQUEST', 'this worker is already enrolled');
    if (this.connection.state === 'enrolling') throw new GridError('GG_ERR_BAD_REQUEST', 'enrollment is already under way');
    // Both checked before anything touches the network or the disk.
    parseCoordinatorAddress(form.coordinator);
    parseEnrollmentToken(form.token);
    this.setConnection('enrolling', `enrolling with ${form.coordinator}`);
    try {
      await this.startWorker(form.token, form.coordinator, form.name);
    } catch (e) {
      this.setConnection('not-enrolled', isGridError(e) ? e.message : String(e));
      throw e;
    }
    if (!this.worker) throw new GridError('GG_ERR_INTERNAL', 'enrollment ended without a worker');
    return this.view();
  }

  async updateSettings(update: SettingsUpdate): Promise<WorkerView> {
    const next: HostSettings = { ...this.settings };
    if (update.policy) {
      compilePolicy(update.policy, next.adminPolicy); // throws naming the bad key; nothing saved
      next.policy = update.policy;
    }
    if (update.coordinator !== undefined) {
      parseCoordinatorAddress(update.coordinator);
      next.coordinator = update.coordinator;
    }
    if (update.startAtLogin !== undefined) {
      if (!this.opts.startAtLogin) throw new GridError('GG_ERR_BAD_REQUEST', 'this worker has no login item to change (it runs headless)');
      next.startAtLogin = update.startAtLogin;
    }
    await this.save(next);
    if (update.startAtLogin !== undefined) await this.opts.startAtLogin!.set(update.startAtLogin);
    if (update.coordinator !== undefined && this.worker) await this.restartWorker();
    await this.tick();
    return this.view();
  }

  // ---------------------------------------------------------------- lifecycle

  /** The running worker, once enrolled (tests and the app's tray read it). */
  get running(): RunningWorker | null {
    return this.worker;
  }

  /**
   * Resolves when the worker stops by itself for good (revoked, replaced by
   * another connection, refused): with the error that stopped it, or null. A
   * worker restarted on a new coordinator address has not ended, so a headless
   * `gogrid worker` keeps running through it.
   */
  whenEnded(): Promise<unknown> {
    return new Promise((resolve) => this.endWaiters.push(resolve));
  }

  /** True while `drain` holds new jobs back. */
  get draining(): boolean {
    return this.drainReason !== null || this.quitting;
  }

  /**
   * Takes no new jobs and resolves once none is held (finished, or handed
   * back after the pause grace period); for an update, which must never
   * kill a job. Stays draining: the caller restarts the app next.
   */
  async drain(reason: string): Promise<void> {
    this.drainReason = reason;
    this.worker?.agent.statusChanged();
    this.emitView();
    const w = this.worker;
    if (w) await idleWithin(w, Infinity);
  }

  /**
   * Drains and stops: no new jobs; the running ones get `graceMs` to finish,
   * then are handed back (the coordinator requeues them at once); then the
   * connection closes cleanly.
   */
  async quit({ graceMs }: { graceMs: number }): Promise<void> {
    this.quitting = true;
    clearTimeout(this.timer);
    await this.ticking;
    const w = this.worker;
    if (w) {
      w.agent.statusChanged();
      if (w.jobs.suspended) w.jobs.resume();
      if (w.jobs.busy > 0 && !(await idleWithin(w, graceMs))) await w.jobs.handBack('the worker is quitting');
      await w.agent.stop();
      await w.closed;
    }
    this.emitView();
  }

  // ---------------------------------------------------------------- internals

  private compile(settings: HostSettings): Policy {
    return compilePolicy(settings.policy ?? { preset: this.opts.defaultPreset }, settings.adminPolicy);
  }

  private async save(next: HostSettings): Promise<void> {
    await saveHostSettings(this.opts.dataDir, next);
    this.settings = next;
    this.policy = this.compile(next);
    this.applyLimits();
  }

  /**
   * The limits on what the worker was started with (`--slots`, `--threads`):
   * the owner's or the administrator's settings when they set one, and the
   * administrator's ceiling. Presets' own slot count (1) is not a limit, so
   * `--slots 4` on a dedicated server stays 4.
   */
  private limits(): { threads: number; slots: number } {
    const configuredThreads = this.opts.jobs?.threads ?? availableParallelism();
    const admin = this.settings.adminPolicy;
    const chosen = (admin.settings ?? this.settings.policy)?.slots;
    return {
      threads: Math.min(configuredThreads, this.policy.maxCores ?? configuredThreads),
      slots: Math.min(this.opts.jobs?.slots ?? 1, chosen ?? Infinity, admin.limits?.slots ?? Infinity),
    };
  }

  private applyLimits(): void {
    const runner = this.worker?.jobs;
    if (!runner) return;
    const { threads, slots } = this.limits();
    runner.setThreads(threads);
    if (slots !== runner.slotCount) {
      runner.setSlots(slots);
      this.worker!.agent.statusChanged();
    }
  }

  private async startWorker(token?: string, coordinator?: string, name?: string): Promise<void> {
    let worker: RunningWorker;
    try {
      worker = await startWorker({
        dataDir: this.opts.dataDir,
        coordinator: coordinator ?? this.settings.coordinator ?? this.opts.coordinator,
        token,
        name: name ?? this.opts.name,
        appVersion: this.opts.appVersion,
        logger: this.opts.logger,
        // Started within the limits already, so hello announces the right slot count.
        jobs: { ...this.opts.jobs, ...this.limits() },
        signal: this.opts.signal,
        agent: { ...this.opts.agent, status: () => this.status(), accepting: () => !this.draining && (this.decision?.acceptJobs ?? false) },
      });
    } catch (e) {
      if (isGridError(e, 'GG_ERR_NOT_ENROLLED')) {
        this.setConnection('not-enrolled', e.message);
        return;
      }
      throw e;
    }
    this.worker = worker;
    // The administrator who provisioned this machine chose its preset; the owner can change it later.
    if (worker.provisionedPreset !== null && this.settings.policy === undefined) {
      await this.save({ ...this.settings, policy: { preset: worker.provisionedPreset } });
      await this.tick();
    }
    if (coordinator !== undefined && coordinator !== this.settings.coordinator && this.settings.coordinator !== undefined) {
      await this.save({ ...this.settings, coordinator: undefined });
    }
    this.applyLimits();
    void worker.agent.done.then(
      () => null,
      (e: unknown) => e,
    ).then((error) => {
      if (this.worker === worker) for (const resolve of this.endWaiters.splice(0)) resolve(error);
    });
    worker.agent.on('state', (e) => this.setConnection(e.state, e.detail));
    worker.agent.on('adminPolicy', (p) => void this.onAdminPolicy(p));
    worker.jobs.on('changed', () => {
      this.emitView();
      // A job started: look at the owner often from now on (a finished one lets the next step slow down).
      if (worker.jobs.busy > 0 && !this.watching) void this.tick().finally(() => this.schedule());
    });
    worker.jobs.on('finished', (e) => {
      this.counts.record(e);
      this.emitView();
    });
    this.setConnection(worker.agent.state.state, worker.agent.state.detail);
  }

  private async restartWorker(): Promise<void> {
    const w = this.worker!;
    this.worker = null;
    if (w.jobs.busy > 0) await w.jobs.handBack('the worker is reconnecting to a new coordinator address');
    await w.agent.stop();
    await w.closed;
    await this.startWorker();
  }

  private async onAdminPolicy(override: AdminOverride): Promise<void> {
    if (JSON.stringify(override) === JSON.stringify(this.settings.adminPolicy)) return;
    this.opts.logger.info({ adminPolicy: override }, 'the administrator changed this worker’s policy');
    try {
      await this.save({ ...this.settings, adminPolicy: override });
    } catch (e) {
      // An override the owner's settings cannot combine with still applies in memory.
      this.opts.logger.error({ err: e }, 'could not save the administrator’s policy');
    }
    await this.tick();
  }

  private status(): { status: WorkerStatus; pausedReason: string | null } {
    const d = this.decision;
    if (this.quitting) return { status: 'draining', pausedReason: 'The worker is quitting' };
    if (this.drainReason !== null) return { status: 'draining', pausedReason: this.drainReason };
    if (!d || !d.run) return { status: 'paused', pausedReason: d?.reason ?? 'Starting' };
    if (!d.acceptJobs) return { status: 'draining', pausedReason: d.reason };
    return { status: (this.worker?.jobs.busy ?? 0) > 0 ? 'working' : 'idle', pausedReason: null };
  }

  /** One policy step; steps never overlap (a slow signal read delays the next, it does not pile up). */
  private tick(): Promise<void> {
    this.ticking ??= this.step().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  private async step(): Promise<void> {
    if (this.quitting) return;
    try {
      this.readings = await this.opts.signals.read();
    } catch (e) {
      this.opts.logger.debug({ err: e }, 'signals unreadable; treating them as unknown');
      this.readings = UNKNOWN_READINGS;
    }
    const runner = this.worker?.jobs;
    const nowMs = Date.now();
    let control = this.settings.control;
    // A finished "finish" and a run-out snooze are settled, so a restart does not repeat them.
    if (control.state === 'finishing' && (runner?.busy ?? 0) === 0) control = { state: 'paused' };
    if (control.state === 'snoozed' && control.untilMs <= nowMs) control = { state: 'active' };
    if (control !== this.settings.control) await this.save({ ...this.settings, control });

    const before = this.decision;
    const d = decide(this.policy, { ...this.readings, control, jobRunning: (runner?.busy ?? 0) > 0 }, this.memory, policyNow(new Date(nowMs)));
    this.memory = d.memory;
    this.decision = d;
    if (runner) await this.stepAside(d, nowMs);
    if (!before || before.run !== d.run || before.acceptJobs !== d.acceptJobs || before.reason !== d.reason) {
      // The first decision is part of starting up, not news.
      if (before && before.run !== d.run) this.opts.logger.info({ run: d.run, cause: d.cause }, d.reason);
      this.worker?.agent.statusChanged();
    }
    this.emitView();
  }

  /** Suspends running jobs while the policy says stop; hands them back once the pause outlasts the grace period. */
  private async stepAside(d: Decision, nowMs: number): Promise<void> {
    const runner = this.worker!.jobs;
    if (d.run) {
      if (runner.suspended) {
        runner.resume();
        this.opts.logger.info('jobs resumed');
      }
      this.suspendedSince = null;
      return;
    }
    if (runner.busy === 0) {
      if (runner.suspended) runner.resume();
      this.suspendedSince = null;
      return;
    }
    if (!runner.suspended) {
      if (runner.suspend()) {
        this.suspendedSince = nowMs;
        this.opts.logger.info({ reason: d.reason }, 'jobs suspended');
        return;
      }
      this.opts.logger.info({ reason: d.reason }, 'jobs cannot be suspended here: handing them back');
      await runner.handBack(d.reason);
      return;
    }
    if (this.suspendedSince !== null && nowMs - this.suspendedSince >= (this.opts.suspendGraceMs ?? 5 * 60_000)) {
      this.opts.logger.info({ reason: d.reason }, 'paused longer than the grace period: handing the jobs back');
      this.suspendedSince = null;
      await runner.handBack(d.reason);
    }
  }

  private setConnection(state: ConnectionState, detail: string | null): void {
    this.connection = { state, detail };
    this.emitView();
  }

  private emitView(): void {
    const view = this.view();
    const json = JSON.stringify(view);
    if (json === this.lastView) return;
    this.lastView = json;
    this.emit('view', view);
  }
}

/** Resolves true once the worker runs no job, false after `ms` (never, for Infinity). */
function idleWithin(w: RunningWorker, ms: number): Promise<boolean> {
  if (w.jobs.busy === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    // setTimeout would read Infinity as 1 ms.
    const timer = Number.isFinite(ms)
      ? setTimeout(() => {
          w.jobs.off('changed', check);
          resolve(false);
        }, ms)
      : undefined;
    const check = () => {
      if (w.jobs.busy > 0) return;
      clearTimeout(timer);
      w.jobs.off('changed', check);
      resolve(true);
    };
    w.jobs.on('changed', check);
  });
}
