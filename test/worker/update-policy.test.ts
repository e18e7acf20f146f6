import { describe, expect, it } from 'vitest';
import { mayApplyUpdate, type UpdateAction, type UpdateGateInput } from '../../src/worker/update-policy.js';

// Every combination that matters: a job held in any form blocks installing.
const table: Array<[UpdateGateInput, UpdateAction, RegExp]> = [
  [{ updateReady: false, runningJobs: 0, draining: false }, 'none', /no update/],
  [{ updateReady: false, runningJobs: 3, draining: false }, 'none', /no update/],
  // Draining for another reason (an administrator, the quit path) is not the updater's business.
  [{ updateReady: false, runningJobs: 1, draining: true }, 'none', /no update/],
  [{ updateReady: true, runningJobs: 0, draining: false }, 'install', /no job is running/],
  [{ updateReady: true, runningJobs: 0, draining: true }, 'install', /no job is running/],
  [{ updateReady: true, runningJobs: 1, draining: false }, 'drain', /taking no new jobs until 1 job finish/],
  [{ updateReady: true, runningJobs: 4, draining: false }, 'drain', /until 4 jobs finish/],
  [{ updateReady: true, runningJobs: 1, draining: true }, 'wait', /waiting for 1 job to finish/],
  [{ updateReady: true, runningJobs: 2, draining: true }, 'wait', /waiting for 2 jobs/],
];

describe('mayApplyUpdate', () => {
  it.each(table)('%o → %s', (input, action, reason) => {
    const decision = mayApplyUpdate(input);
    expect(decision.action).toBe(action);
    expect(decision.reason).toMatch(reason);
  });

  it('never installs while any job is held', () => {
    for (const runningJobs of [1, 2, 17]) {
      for (const draining of [false, true]) {
        expect(mayApplyUpdate({ updateReady: true, runningJobs, draining }).action).not.toBe('install');
      }
    }
  });

  it('refuses a job count that is not a count (a bug in the caller)', () => {
    for (const runningJobs of [-1, 0.5, Number.NaN]) {
      expect(() => mayApplyUpdate({ updateReady: true, runningJobs, draining: false })).toThrow(/runningJobs must be a count/);
    }
  });
});
