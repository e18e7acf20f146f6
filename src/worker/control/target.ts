/**
 * What the local control surfaces act on: the Electron main process (IPC)
 * and the headless worker's loopback HTTP endpoint both drive one
 * `ControlTarget` (the worker host), so the status window behaves the same
 * in both. Inputs are parsed with the protocol/control.ts schemas before they
 * get here; failures throw GridError (the code picks the HTTP status).
 *
 *   const view = await target.act({ action: 'snooze', minutes: 60 });
 *   target.on('view', render);
 */
import type { EventEmitter } from 'node:events';
import type { ControlAction, EnrollForm, SettingsUpdate, WorkerView } from '../../protocol/control.js';

export interface ControlTarget extends Pick<EventEmitter<{ view: [WorkerView] }>, 'on' | 'off'> {
  /** The state right now; cheap, no I/O. */
  view(): WorkerView;
  act(action: ControlAction): Promise<WorkerView>;
  /** First run: enroll with the coordinator, save the identity, connect. */
  enroll(form: EnrollForm): Promise<WorkerView>;
  /** Validated and saved before it applies; nothing is saved when it fails. */
  updateSettings(update: SettingsUpdate): Promise<WorkerView>;
}
