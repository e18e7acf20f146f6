/**
 * What the policy knows about the machine and its owner at one moment. The
 * adapters (Electron's powerMonitor in the app, systeminformation headless)
 * fill it in later; the policy never asks the system itself. Every reading
 * can be unknown (null), and `decide` says what it does with each unknown.
 *
 *   const signals: Signals = { ...UNKNOWN_SIGNALS, idleSeconds: powerMonitor.getSystemIdleTime(), onBattery: false };
 */
import { z } from 'zod';
import { UserControl } from '../../protocol/policy.js';

export { UserControl };

export const Signals = z.strictObject({
  /** Seconds since the last keyboard or pointer input; null where no idle source works (Wayland, headless). */
  idleSeconds: z.number().min(0).nullable(),
  /** The session's screen is locked: the owner is away whatever the idle time says. */
  screenLocked: z.boolean().nullable(),
  /** Running on battery; a machine without a battery reports false or null, never true. */
  onBattery: z.boolean().nullable(),
  /** Charge, 0..100. */
  batteryPercent: z.number().min(0).max(100).nullable(),
  /** CPU used by processes other than this worker's jobs, 0..1 of the whole machine. */
  otherCpu: z.number().min(0).max(1).nullable(),
  /**
   * How busy other programs keep the busiest GPU, 0..1: NVIDIA's only
   * (nvidia-smi), and only while none of this worker's jobs is on a GPU,
   * whose use it cannot tell apart; absent or null where unknown.
   */
  gpuBusy: z.number().min(0).max(1).nullable().optional(),
  /** The hottest GPU's temperature, °C (nvidia-smi); absent or null where unknown. */
  gpuTempC: z.number().min(-50).max(200).nullable().optional(),
  control: UserControl,
  /** A job is running (or suspended) on this worker right now. */
  jobRunning: z.boolean(),
});
export type Signals = z.infer<typeof Signals>;

/** Nothing known, nothing requested: a base to fill in. */
export const UNKNOWN_SIGNALS: Readonly<Signals> = Object.freeze<Signals>({
  idleSeconds: null,
  screenLocked: null,
  onBattery: null,
  batteryPercent: null,
  otherCpu: null,
  control: { state: 'active' },
  jobRunning: false,
});
