/**
 * A ControlTarget that shows whatever WorkerView a test gives it, records
 * every call the window makes, and refuses one when told to, the way the
 * worker host refuses a bad token or address. The real host is tested end to
 * end elsewhere; this one makes each window state reachable on demand.
 */
import { EventEmitter } from 'node:events';
import type { ControlAction, EnrollForm, SettingsUpdate, WorkerView } from '../../src/protocol/control.js';
import type { GridError } from '../../src/protocol/errors.js';
import type { ControlTarget } from '../../src/worker/control/target.js';

export type Call = { method: 'act'; arg: ControlAction } | { method: 'enroll'; arg: EnrollForm } | { method: 'updateSettings'; arg: SettingsUpdate };

export class FakeTarget extends EventEmitter<{ view: [WorkerView] }> implements ControlTarget {
  readonly calls: Call[] = [];
  /** Thrown by the next call (then cleared). */
  refuseNext: GridError | null = null;
  /** What a successful call answers; default: the current view. */
  answer: WorkerView | null = null;
  private waiters: Array<() => void> = [];

  constructor(public current: WorkerView) {
    super();
  }

  view(): WorkerView {
    return this.current;
  }

  act(arg: ControlAction): Promise<WorkerView> {
    return this.record({ method: 'act', arg });
  }

  enroll(arg: EnrollForm): Promise<WorkerView> {
    return this.record({ method: 'enroll', arg });
  }

  updateSettings(arg: SettingsUpdate): Promise<WorkerView> {
    return this.record({ method: 'updateSettings', arg });
  }

  /** Resolves once `n` calls have arrived. */
  async calledTimes(n: number): Promise<Call[]> {
    while (this.calls.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.calls;
  }

  private async record(call: Call): Promise<WorkerView> {
    this.calls.push(call);
    for (const w of this.waiters.splice(0)) w();
    const refusal = this.refuseNext;
    this.refuseNext = null;
    if (refusal) throw refusal;
    if (this.answer) this.current = this.answer;
    return this.current;
  }
}
