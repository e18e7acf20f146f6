/**
 * The worker host: the one object both the desktop app and the headless
 * worker run. It starts the worker (or waits for enrollment), runs the
 * polite worker's policy loop (policy-loop.ts), keeps the owner's settings
 * and the administrator's override, and answers the status window
 * (`ControlTarget`).
 *
 *   const host = await openWorkerHost({ dataDir, appVersion, logger, defaultPreset: 'dedicated',
 *                                       signals: headlessSignals({ ownPids }), startAtLogin: null });
 *   host.on('view', (v) => tray.update(v));
 *   await host.act({ action: 'snooze', minutes: 60 });
 *   await host.quit({ graceMs: 30_000 });   // no new jobs; finish or hand back; disconnect
 *
 * Its lifecycle, an explicit state machine (ALLOWED below):
 *
 *   opening ─worker started→ running ─new coordinator address→ restarting ─started→ running
 *   opening ─quit() while it waits to enroll→ quitting
 *   opening ─no identity→ not-enrolled ─form→ enrolling ─enrolled→ running
 *                                            enrolling ─refused→ not-enrolled
 *   not-enrolled, enrolling, running, restarting ─drain()→ draining (no new jobs until the app restarts)
 *   draining ─undrain()→ running, or not-enrolled without a worker (an update that did not install)
 *   any but quitting, stopped ─quit()→ quitting → stopped
 *
 * A worker that ends by itself (revoked, replaced) leaves the host running:
 * the agent's state says why, and `whenEnded` tells the headless command.
 */
import { EventEmitter, once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/files.js';
import type { Logger } from 'pino';
import {
  GridError,
  isGridError,
  parseEnrollmentToken,
  type AdminOverride,
  type ConnectionState,
  type ControlAction,
  type EnrollForm,
  type SettingsUpdate,
  type WorkerStatus,
  type WorkerView,
} from '../protocol/index.js';
import { parseCoordinatorAddress } from './address.js';
import { overrideChanged, policyInForce, setByAdmin } from './admin-policy.js';
import type { ControlTarget } from './control/target.js';
import type { JobRunner } from './job-runner.js';
import { controlFor, loadHostSettings, saveHostSettings, settingsAfter, type HostSettings } from './host-settings.js';
import { DayCounts, workerView } from './host-view.js';
import { PolicyLoop } from './policy-loop.js';
import type { Policy, PresetName } from './policy/index.js';
import type { SignalSource } from './signals/index.js';
import { jobLimits, typedAddress } from './worker-config.js';
import { startWorker, type RunningWorker, type StartWorkerOptions, type WorkerJobOptions } from './worker.js';

/** Defaults: WORKER_DEFAULTS (worker-config.ts), which also says which source wins. */
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
  /** StartWorkerOptions.reEnroll, for `token`. */
  reEnroll?: boolean;
  name?: string;
  jobs?: WorkerJobOptions;
  agent?: StartWorkerOptions['agent'];
  /** Gives up a start still waiting to enroll with an unreachable coordinator. */
  signal?: AbortSignal;
  /** How often the policy looks at the signals while a job runs: the worst-case delay before it steps aside once its owner is back. */
  policyIntervalMs?: number;
  /** The same while no job runs, when nothing waits on the answer but the next job's start. */
  idlePolicyIntervalMs?: number;
  /** How long a suspended job waits for its owner to leave again before it is handed back. */
  suspendGraceMs?: number;
}

export type HostState = 'opening' | 'not-enrolled' | 'enrolling' | 'running' | 'restarting' | 'draining' | 'quitting' | 'stopped';

const ALLOWED: Record<HostState, readonly HostState[]> = {
  // Quit while the first start still waits to enroll.
  opening: ['running', 'not-enrolled', 'quitting'],
  'not-enrolled': ['enrolling', 'draining', 'quitting'],
  enrolling: ['running', 'not-enrolled', 'draining', 'quitting'],
  running: ['restarting', 'draining', 'quitting'],
  // A restart that fails to start the worker again stays here, without one, until quit.
  restarting: ['running', 'draining', 'quitting'],
  draining: ['quitting', 'running', 'not-enrolled'],
  quitting: ['stopped'],
  stopped: [],
};

/** Today's job counts, so a restart (an update, a reboot) does not reset "3 jobs completed today". */
const countsPath = (dataDir: string) => join(dataDir, 'today.json');

export async function openWorkerHost(opts: WorkerHostOptions): Promise<WorkerHost> {
  const host = await createWorkerHost(opts);
  await host.open();
  return host;
}

/**
 * The host with its settings loaded, not yet started (`open`): the desktop
 * app wires its tray, window and quit to it first, so they work while the
 * first start waits for a network that is not up yet.
 */
export async function createWorkerHost(opts: WorkerHostOptions): Promise<WorkerHost> {
  // Missing, unreadable or not JSON: the day starts at zero (it is only a count).
  const saved: unknown = await readFile(countsPath(opts.dataDir), 'utf8')
    .then((text) => JSON.parse(text) as unknown)
    .catch(() => null);
  return new WorkerHost(opts, await loadHostSettings(opts.dataDir, (problem) => opts.logger.warn(problem)), DayCounts.restore(saved));
}

export class WorkerHost extends EventEmitter<{ view: [WorkerView] }> implements ControlTarget {
  private current: { state: HostState; detail: string | null } = { state: 'opening', detail: null };
  private started: RunningWorker | null = null;
  /** Waiting for the worker to end for good (`whenEnded`). */
  private readonly endWaiters: ((error: unknown) => void)[] = [];
  /** The agent's last state, kept through a restart until the next worker reports. */
  private connection: { state: ConnectionState; detail: string | null } = { state: 'connecting', detail: null };
  private policy: Policy;
  private readonly loop: PolicyLoop;
  private shutdown: Promise<void> | null = null;
  /** A write of today.json is due (at most one a second, however many jobs end). */
  private countsTimer: NodeJS.Timeout | null = null;
  private lastView = '';
  /** Aborted by quit(): a start still waiting to enroll gives up. */
  private readonly quitting = new AbortController();

  constructor(
    private readonly opts: WorkerHostOptions,
    private settings: HostSettings,
    private readonly counts: DayCounts = new DayCounts(),
  ) {
    super();
    this.policy = policyInForce(settings, opts.defaultPreset);
    this.loop = new PolicyLoop({
      signals: opts.signals,
      logger: opts.logger,
      runner: () => this.started?.runner ?? null,
      policy: () => this.policy,
      control: () => this.settings.control,
      settle: (control) => this.save({ ...this.settings, control }),
      onDecision: () => this.started?.agent.statusChanged(),
      onStep: () => this.emitView(),
      intervalMs: opts.policyIntervalMs,
      idleIntervalMs: opts.idlePolicyIntervalMs,
      suspendGraceMs: opts.suspendGraceMs,
    });
  }

  /**
   * Decides once (so `hello` carries the right status), then starts the
   * worker: enrolls, trying again while the coordinator cannot be reached
   * (the view says so), or waits for the form. Resolves early, without an
   * error, when quit() comes first.
   */
  async open(): Promise<void> {
    await this.loop.step();
    try {
      await this.startWorker(this.opts.token);
    } catch (e) {
      if (this.quitting.signal.aborted) return;
      throw e;
    }
    if (this.quitting.signal.aborted) return;
    this.loop.start();
  }

  get state(): HostState {
    return this.current.state;
  }

  /** The enrolled worker, once it started (the app's tray and the CLI read it). */
  get worker(): RunningWorker | null {
    return this.started;
  }

  // ---------------------------------------------------------------- ControlTarget

  view(): WorkerView {
    const { state, detail } = this.current;
    return workerView({
      appVersion: this.opts.appVersion,
      connection: state === 'not-enrolled' || state === 'enrolling' ? { state, detail } : this.connection,
      savedCoordinator: this.settings.coordinator ?? null,
      worker: this.started,
      decision: this.loop.decision,
      holdBack: state === 'quitting' || state === 'stopped' ? 'Quitting: finishing or handing back the running job' : state === 'draining' ? detail : null,
      control: this.settings.control,
      byAdmin: setByAdmin(this.policy),
      policySettings: this.settings.policy ?? { preset: this.opts.defaultPreset },
      startAtLogin: this.opts.startAtLogin?.get() ?? null,
      counts: this.counts,
    });
  }

  async act(action: ControlAction): Promise<WorkerView> {
    const control = controlFor(action, Date.now(), this.started?.runner.busy ?? 0);
    await this.save({ ...this.settings, control });
    this.opts.logger.info({ control }, 'owner changed the pause state');
    await this.loop.step();
    return this.view();
  }

  async enroll(form: EnrollForm): Promise<WorkerView> {
    if (this.state === 'enrolling') throw new GridError('GG_ERR_BAD_REQUEST', 'enrollment is already under way');
    if (this.state !== 'not-enrolled') throw new GridError('GG_ERR_BAD_REQUEST', 'this worker is already enrolled');
    // Both checked before anything touches the network or the disk.
    parseCoordinatorAddress(form.coordinator);
    parseEnrollmentToken(form.token);
    this.transition('enrolling', `enrolling with ${form.coordinator}`);
    try {
      await this.startWorker(form.token, form.coordinator, form.name);
    } catch (e) {
      if (this.current.state === 'enrolling') this.transition('not-enrolled', isGridError(e) ? e.message : String(e));
      throw e;
    }
    if (!this.started) throw new GridError('GG_ERR_INTERNAL', 'enrollment ended without a worker');
    return this.view();
  }

  async updateSettings(update: SettingsUpdate): Promise<WorkerView> {
    await this.save(settingsAfter(this.settings, update, { hasLoginItem: this.opts.startAtLogin !== null }));
    if (update.startAtLogin !== undefined) await this.opts.startAtLogin!.set(update.startAtLogin);
    if (update.coordinator !== undefined && this.state === 'running') await this.restartWorker();
    await this.loop.step();
    return this.view();
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Resolves when the worker stops by itself for good (revoked, replaced by
   * another connection, refused): with the error that stopped it, or null. A
   * worker restarted on a new coordinator address has not ended, so a headless
   * `gogrid worker` keeps running through it.
   */
  whenEnded(): Promise<unknown> {
    return new Promise((resolve) => this.endWaiters.push(resolve));
  }

  /** True while the host takes no new jobs (draining or quitting). */
  get draining(): boolean {
    return this.state === 'draining' || this.state === 'quitting' || this.state === 'stopped';
  }

  /**
   * Takes no new jobs and resolves once none is held (finished, or handed
   * back after the pause grace period); for an update, which must never
   * kill a job. Stays draining: the caller restarts the app next.
   */
  async drain(reason: string): Promise<void> {
    if (!this.draining) {
      this.transition('draining', reason);
      this.started?.agent.statusChanged();
    }
    const runner = this.started?.runner;
    if (runner) await idle(runner);
  }

  /** Takes jobs again after drain(): the update it drained for did not install. `reason` goes to the log. */
  undrain(reason: string): void {
    if (this.state !== 'draining') return;
    this.opts.logger.info({ reason }, 'taking jobs again');
    this.transition(this.started ? 'running' : 'not-enrolled', null);
    this.started?.agent.statusChanged();
  }

  /**
   * Drains and stops: no new jobs; the running ones get `graceMs` to finish,
   * then are handed back (the coordinator requeues them at once); then the
   * connection closes cleanly. Called again, it is the same quit.
   */
  quit({ graceMs }: { graceMs: number }): Promise<void> {
    this.shutdown ??= this.shutDown(graceMs);
    return this.shutdown;
  }

  private async shutDown(graceMs: number): Promise<void> {
    this.transition('quitting', null);
    this.quitting.abort();
    await this.loop.stop();
    const w = this.started;
    if (w) {
      w.agent.statusChanged();
      if (w.runner.suspended) w.runner.resume();
      if (w.runner.busy > 0 && !(await idle(w.runner, AbortSignal.timeout(graceMs)))) await w.runner.handBack('the worker is quitting');
      await w.agent.stop();
      await w.closed;
    }
    if (this.countsTimer) await this.saveCounts();
    this.transition('stopped', null);
  }

  private saveCountsSoon(): void {
    if (this.countsTimer) return;
    this.countsTimer = setTimeout(() => void this.saveCounts(), 1000);
    this.countsTimer.unref();
  }

  private async saveCounts(): Promise<void> {
    if (this.countsTimer) clearTimeout(this.countsTimer);
    this.countsTimer = null;
    await writeFileAtomic(countsPath(this.opts.dataDir), JSON.stringify(this.counts.saved()), 0o600).catch((e: unknown) =>
      this.opts.logger.warn({ err: e }, "could not save today's job counts; they start again from the saved ones at the next start"),
    );
  }

  // ---------------------------------------------------------------- internals

  private transition(state: HostState, detail: string | null): void {
    if (!ALLOWED[this.current.state].includes(state)) {
      throw new Error(`illegal worker host transition ${this.current.state} → ${state}`);
    }
    this.current = { state, detail };
    this.emitView();
  }

  private async save(next: HostSettings): Promise<void> {
    await saveHostSettings(this.opts.dataDir, next);
    this.settings = next;
    this.policy = policyInForce(next, this.opts.defaultPreset);
    this.applyLimits();
  }

  private applyLimits(): void {
    const w = this.started;
    if (!w) return;
    const { threads, slots } = jobLimits(this.opts.jobs, this.settings, this.policy);
    w.runner.setThreads(threads);
    if (slots !== w.runner.slotCount) {
      w.runner.setSlots(slots);
      w.agent.statusChanged();
    }
  }

  private async startWorker(token?: string, form?: string, name?: string): Promise<void> {
    let worker: RunningWorker;
    try {
      worker = await startWorker({
        dataDir: this.opts.dataDir,
        coordinator: typedAddress({ form, saved: this.settings.coordinator, flag: this.opts.coordinator }),
        token,
        reEnroll: token !== undefined && token === this.opts.token && this.opts.reEnroll === true,
        name: name ?? this.opts.name,
        appVersion: this.opts.appVersion,
        logger: this.opts.logger,
        // Started within the limits already, so hello announces the right slot count.
        jobs: { ...this.opts.jobs, ...jobLimits(this.opts.jobs, this.settings, this.policy) },
        signal: this.opts.signal ? AbortSignal.any([this.opts.signal, this.quitting.signal]) : this.quitting.signal,
        onEnrollRetry: (why, retryInMs) => this.setConnection('waiting', `could not enroll yet: ${why}; trying again in ${Math.ceil(retryInMs / 1000)} s`),
        agent: { ...this.opts.agent, status: () => this.status(), accepting: () => !this.draining && (this.loop.decision?.acceptJobs ?? false) },
      });
    } catch (e) {
      if (isGridError(e, 'GG_ERR_NOT_ENROLLED') && this.state === 'opening') {
        this.transition('not-enrolled', e.message);
        return;
      }
      throw e;
    }
    if (this.state === 'quitting' || this.state === 'stopped') {
      // quit() came while this worker was starting and found none to stop.
      await worker.agent.stop();
      await worker.closed;
      return;
    }
    this.started = worker;
    if (this.state !== 'draining') this.transition('running', null);
    // The administrator who provisioned this machine chose its preset; the owner can change it later.
    if (worker.provisionedPreset !== null && this.settings.policy === undefined) {
      await this.save({ ...this.settings, policy: { preset: worker.provisionedPreset } });
      await this.loop.step();
    }
    // Enrolled from the form at another address: the one the owner saved before is stale.
    if (form !== undefined && form !== this.settings.coordinator && this.settings.coordinator !== undefined) {
      await this.save({ ...this.settings, coordinator: undefined });
    }
    this.applyLimits();
    void worker.agent.done.then(
      () => null,
      (e: unknown) => e,
    ).then((error) => {
      if (this.started === worker) for (const resolve of this.endWaiters.splice(0)) resolve(error);
    });
    worker.agent.on('state', (e) => this.setConnection(e.state, e.detail));
    worker.agent.on('adminPolicy', (p) => void this.onAdminPolicy(p));
    worker.runner.on('changed', () => {
      this.emitView();
      if (worker.runner.busy > 0) this.loop.jobStarted();
    });
    worker.runner.on('finished', (e) => {
      this.counts.record(e);
      this.saveCountsSoon();
      this.emitView();
    });
    this.setConnection(worker.agent.state.state, worker.agent.state.detail);
  }

  private async restartWorker(): Promise<void> {
    const w = this.started!;
    this.transition('restarting', null);
    this.started = null;
    if (w.runner.busy > 0) await w.runner.handBack('the worker is reconnecting to a new coordinator address');
    await w.agent.stop();
    await w.closed;
    await this.startWorker();
  }

  private async onAdminPolicy(override: AdminOverride): Promise<void> {
    if (!overrideChanged(this.settings.adminPolicy, override)) return;
    this.opts.logger.info({ adminPolicy: override }, 'the administrator changed this worker’s policy');
    try {
      await this.save({ ...this.settings, adminPolicy: override });
    } catch (e) {
      // An override the owner's settings cannot combine with still applies in memory.
      this.opts.logger.error({ err: e }, 'could not save the administrator’s policy');
    }
    await this.loop.step();
  }

  private status(): { status: WorkerStatus; pausedReason: string | null; gpuOff: string | null } {
    const { state, detail } = this.current;
    if (state === 'quitting' || state === 'stopped') return { status: 'draining', pausedReason: 'The worker is quitting', gpuOff: null };
    if (state === 'draining') return { status: 'draining', pausedReason: detail, gpuOff: null };
    const d = this.loop.decision;
    if (!d || !d.run) return { status: 'paused', pausedReason: d?.reason ?? 'Starting', gpuOff: null };
    if (!d.acceptJobs) return { status: 'draining', pausedReason: d.reason, gpuOff: null };
    return { status: (this.started?.runner.busy ?? 0) > 0 ? 'working' : 'idle', pausedReason: null, gpuOff: d.gpuReason };
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

/** Resolves true once the runner runs no job, false when `signal` aborts first. */
async function idle(runner: JobRunner, signal?: AbortSignal): Promise<boolean> {
  try {
    while (runner.busy > 0) await once(runner, 'changed', { signal });
    return true;
  } catch (e) {
    if (signal?.aborted) return false;
    throw e;
  }
}
