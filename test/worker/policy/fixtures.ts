import type { Signals } from '../../../src/worker/policy/signals.js';

/** A desktop whose owner has been away for 10 minutes, plugged in, quiet. */
export const FREE: Signals = {
  idleSeconds: 600,
  screenLocked: false,
  onBattery: false,
  batteryPercent: null,
  otherCpu: 0.1,
  control: { state: 'active' },
  jobRunning: false,
};
