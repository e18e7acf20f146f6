/**
 * Battery readings from systeminformation, with "unknown" kept apart from
 * "no battery": a desktop without one is not on battery (false), and its
 * charge is unknown (null); a failed reading is unknown on both counts.
 *
 *   const read = batteryReader({ maxAgeMs: 10_000 });
 *   const { onBattery, batteryPercent } = await read();
 */
import si from 'systeminformation';
import type { SignalReadings } from './source.js';

export type BatteryReadings = Pick<SignalReadings, 'onBattery' | 'batteryPercent'>;

const UNKNOWN: BatteryReadings = { onBattery: null, batteryPercent: null };

/** @param maxAgeMs a reading younger than this is reused: on macOS and Windows each one spawns a process. */
export function batteryReader(opts: { maxAgeMs: number }): () => Promise<BatteryReadings> {
  let cached: { atMs: number; value: Promise<BatteryReadings> } | null = null;
  return () => {
    const now = Date.now();
    if (cached === null || now - cached.atMs >= opts.maxAgeMs) cached = { atMs: now, value: readBattery() };
    return cached.value;
  };
}

export async function readBattery(): Promise<BatteryReadings> {
  let data: si.Systeminformation.BatteryData;
  try {
    data = await si.battery();
  } catch {
    return UNKNOWN;
  }
  return toReadings(data);
}

export function toReadings(data: Pick<si.Systeminformation.BatteryData, 'hasBattery' | 'acConnected' | 'percent'>): BatteryReadings {
  if (data.hasBattery !== true) return data.hasBattery === false ? { onBattery: false, batteryPercent: null } : UNKNOWN;
  const percent = typeof data.percent === 'number' && Number.isFinite(data.percent) ? Math.min(100, Math.max(0, data.percent)) : null;
  const onBattery = typeof data.acConnected === 'boolean' ? !data.acConnected : null;
  return { onBattery, batteryPercent: percent };
}
