/**
 * A small real ControlTarget for tests of the control surfaces: a WorkerView
 * in memory that the owner's commands change, and a record of every call.
 * The real one is the worker host, tested end to end elsewhere.
 */
import { EventEmitter } from 'node:events';
import { WorkerView, type GridError, type ControlAction, type EnrollForm, type SettingsUpdate, type UserControl } from '../../../src/protocol/index.js';
import type { ControlTarget } from '../../../src/worker/control/target.js';

export const SAMPLE_VIEW: WorkerView = WorkerView.parse({
  appVersion: '0.0.0-test',
  connection: { state: 'online', detail: null, coordinator: '127.0.0.1:8443' },
  worker: { id: 'w-test', name: 'test box' },
  hardware: { summary: 'Test CPU · 2 threads · 4 GiB', cpu: 'Test CPU', threads: 2, memoryBytes: 4 * 2 ** 30, gpus: [], os: 'linux x64' },
  jobs: { running: [], completedToday: 0, failedToday: 0, lastError: null },
  policy: { run: true, cause: 'running', reason: 'Always on: this computer is dedicated to the grid', control: { state: 'active' }, byAdmin: false },
  settings: { policy: { preset: 'dedicated' }, startAtLogin: null },
});

export class MemoryTarget extends EventEmitter<{ view: [WorkerView] }> implements ControlTarget {
  readonly calls: Array<{ method: string; arg: unknown }> = [];
  /** Set to make enroll fail the way a bad token does. */
  enrollError: GridError | null = null;

  constructor(private current: WorkerView = SAMPLE_VIEW) {
    super();
  }

  view(): WorkerView {
    return this.current;
  }

  async act(action: ControlAction): Promise<WorkerView> {
    this.calls.push({ method: 'act', arg: action });
    const control: UserControl =
      action.action === 'pause'
        ? { state: 'paused' }
        : action.action === 'resume'
          ? { state: 'active' }
          : action.action === 'finish'
            ? { state: 'finishing' }
            : { state: 'snoozed', untilMs: action.untilMs ?? Date.now() + action.minutes! * 60_000 };
    const reason = {
      active: 'Always on: this computer is dedicated to the grid',
      paused: 'Paused by you',
      finishing: 'Finishing the current job, then pausing',
      snoozed: 'Snoozed until later',
    }[control.state];
    return this.set({ ...this.current, policy: { ...this.current.policy, run: control.state === 'active', cause: control.state === 'active' ? 'running' : 'user', reason, control } });
  }

  async enroll(form: EnrollForm): Promise<WorkerView> {
    this.calls.push({ method: 'enroll', arg: form });
    if (this.enrollError) throw this.enrollError;
    return this.set({ ...this.current, connection: { state: 'connecting', detail: null, coordinator: form.coordinator } });
  }

  async updateSettings(update: SettingsUpdate): Promise<WorkerView> {
    this.calls.push({ method: 'updateSettings', arg: update });
    return this.set({ ...this.current, settings: { ...this.current.settings, policy: update.policy ?? this.current.settings.policy } });
  }

  private set(view: WorkerView): WorkerView {
    this.current = WorkerView.parse(view);
    this.emit('view', this.current);
    return this.current;
  }
}
