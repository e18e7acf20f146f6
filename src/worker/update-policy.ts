/**
 * When a downloaded update may be installed: never while this worker holds a
 * job. Installing restarts the app, which would kill the job process and
 * throw away its work, so the worker drains first (takes no new jobs, lets
 * the running ones finish) and installs once it holds none.
 *
 *   const d = mayApplyUpdate({ updateReady: true, runningJobs: runner.busy, draining: false });
 *   if (d.action === 'drain') await host.drain(d.reason);
 *   if (d.action === 'install') updater.quitAndInstall(true, true);
 *
 * Pure: the caller samples the inputs and acts on the answer.
 */

export interface UpdateGateInput {
  /** A newer version is downloaded and its checksum verified. */
  updateReady: boolean;
  /**
   * Jobs this worker holds a lease on: running, suspended by the owner's
   * policy, or accepted and still starting. A suspended job counts: its
   * process is alive and its work would be lost.
   */
  runningJobs: number;
  /** The worker takes no new jobs (this updater, an administrator or the quit path asked). */
  draining: boolean;
}

export type UpdateAction =
  /** Nothing to install. */
  | 'none'
  /** Stop taking jobs so the held ones can finish. */
  | 'drain'
  /** Already draining: wait for the held jobs to finish. */
  | 'wait'
  /** No job held: restart into the new version now. */
  | 'install';

export interface UpdateDecision {
  action: UpdateAction;
  /** For the log and the status window. */
  reason: string;
}

export function mayApplyUpdate(input: UpdateGateInput): UpdateDecision {
  if (!Number.isSafeInteger(input.runningJobs) || input.runningJobs < 0) {
    throw new Error(`runningJobs must be a count, got ${input.runningJobs}`);
  }
  if (!input.updateReady) return { action: 'none', reason: 'no update is downloaded' };
  if (input.runningJobs === 0) return { action: 'install', reason: 'an update is ready and no job is running' };
  const jobs = input.runningJobs === 1 ? '1 job' : `${input.runningJobs} jobs`;
  return input.draining
    ? { action: 'wait', reason: `an update is ready; waiting for ${jobs} to finish` }
    : { action: 'drain', reason: `an update is ready; taking no new jobs until ${jobs} finish` };
}
