/**
 * The status window is a few independent sections; each owns its DOM and
 * updates itself from the whole WorkerView, rebuilding only when its own
 * slice changed, so the once-a-second poll does not flicker or steal focus.
 *
 *   const jobs = jobsSection();
 *   root.append(jobs.el);
 *   jobs.update(view);
 */
import type { WorkerView } from '../../protocol/control.js';
import type { Bridge, BridgeError } from '../bridge.js';

export interface Section {
  readonly el: HTMLElement;
  update(view: WorkerView): void;
}

/** What sections may ask of the window. */
export interface Ui {
  /**
   * Runs one call on the bridge. On success the window shows the view it
   * returned and this resolves to null; on a refusal it resolves to the
   * error, for the caller to show where it belongs.
   */
  perform(call: (bridge: Bridge) => Promise<WorkerView>): Promise<BridgeError | null>;
}
