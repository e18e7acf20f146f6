/**
 * The one interface every signal adapter implements: what the policy needs
 * to know about the machine, read on demand (the worker host asks every few
 * seconds). The owner's pause controls and whether a job runs are the host's
 * own state, so they are not readings.
 *
 *   const readings = await source.read();
 *   const signals: Signals = { ...readings, control, jobRunning };
 */
import type { z } from 'zod';
import { Signals } from '../policy/signals.js';

export const SignalReadings = Signals.omit({ control: true, jobRunning: true });
export type SignalReadings = z.infer<typeof SignalReadings>;

export interface SignalSource {
  /** Never rejects: a reading that fails is unknown (null). */
  read(): Promise<SignalReadings>;
  /** Stops whatever the source holds (child processes, listeners); safe to call twice. */
  close(): void;
}

export const UNKNOWN_READINGS: Readonly<SignalReadings> = Object.freeze<SignalReadings>({
  idleSeconds: null,
  screenLocked: null,
  onBattery: null,
  batteryPercent: null,
  otherCpu: null,
});
