/**
 * The policy's rules, one function each: what the signals say, what the rule
 * remembers for the next call, and whether it pauses the worker. `decide`
 * runs every rule on every call, even when a rule higher in precedence
 * already pauses, so the memory is never stale when that rule lets go.
 *
 *   const input = inputRule(policy, signals, memory, now.epochMs);
 *   input.pause; // { rule: 'input', reason: 'You are using this computer' } or null
 */
import { formatMoment, wallClock, type PolicyNow } from './clock.js';
import { reasons, wholePercent } from './reasons.js';
import { inSchedule, nextOpening } from './schedule.js';
import { GPU_COOL_DOWN_C, type Policy } from './settings.js';
import type { Signals } from './signals.js';

/** The rules that can pause the worker, in `PRECEDENCE` order. */
export type Rule = 'admin' | 'user' | 'snooze' | 'schedule' | 'battery' | 'input' | 'cpu';

export interface Pause {
  rule: Rule;
  reason: string;
}

/** What the caller keeps between calls and passes back; plain JSON, no hidden state anywhere else. */
export interface PolicyMemory {
  /**
   * Epoch ms of the latest input seen. It only moves forward: an idle time
   * implying an earlier last input than one already seen is a glitch (idle
   * time cannot grow faster than the clock), so it cannot restart the worker.
   */
  lastInputMs: number | null;
  /** The latest sample of other programs' CPU use above the threshold, while it still holds the worker. */
  cpuBusy: { atMs: number; percent: number } | null;
  /** The latest known battery reading, kept for `batteryHoldMs` over unknown ones. */
  battery: { atMs: number; onBattery: boolean; percent: number | null } | null;
  /** Went below the minimum on battery: stays set until the charger is connected, so a charge that reads 19 %, 20 %, 19 % does not flap. */
  batteryLow: boolean;
  /** The latest sample of other programs' GPU use above the threshold, while it still keeps jobs off the GPU. Absent: none. */
  gpuBusy?: { atMs: number; percent: number } | null;
  /** Went over the temperature ceiling: stays set until the GPU is GPU_COOL_DOWN_C below it. Absent: false. */
  gpuHot?: boolean;
}

export const INITIAL_MEMORY: Readonly<PolicyMemory> = Object.freeze({ lastInputMs: null, cpuBusy: null, battery: null, batteryLow: false });

/** A memory from the future means the wall clock was set back; forget it rather than wait for the clock to catch up. */
function past<T extends { atMs: number }>(entry: T | null, nowMs: number): T | null {
  return entry !== null && entry.atMs <= nowMs ? entry : null;
}

// ---------------------------------------------------------------- owner and administrator

/** The administrator's pause, then the owner's pause, finish and snooze. */
export function controlRule(policy: Policy, signals: Signals, now: PolicyNow): Pause | null {
  if (policy.admin.paused) return { rule: 'admin', reason: reasons.adminPaused(policy.admin.message) };
  const control = signals.control;
  switch (control.state) {
    case 'paused':
      return { rule: 'user', reason: reasons.userPaused };
    case 'finishing':
      // While the job runs the other rules still apply to it; once it is done, this is the owner's pause.
      return signals.jobRunning ? null : { rule: 'user', reason: reasons.userPaused };
    case 'snoozed':
      return now.epochMs < control.untilMs ? { rule: 'snooze', reason: reasons.snoozed(formatMoment(control.untilMs, now)) } : null;
    case 'active':
      return null;
  }
}

// ---------------------------------------------------------------- schedule

export function scheduleRule(policy: Policy, now: PolicyNow): Pause | null {
  const clock = wallClock(now.epochMs, now.timeZone);
  if (inSchedule(policy.schedule, clock)) return null;
  // Outside a non-empty schedule there is always a next opening.
  const opens = nextOpening(policy.schedule, clock) ?? '';
  return { rule: 'schedule', reason: reasons.outsideSchedule(opens, policy.admin.setRules) };
}

// ---------------------------------------------------------------- battery

export interface BatteryOutcome {
  pause: Pause | null;
  battery: PolicyMemory['battery'];
  batteryLow: boolean;
}

/** Unknown (and not held from a recent reading) counts as "not on battery": a desktop without one must run. */
export function batteryRule(policy: Policy, signals: Signals, memory: PolicyMemory, nowMs: number): BatteryOutcome {
  const held = past(memory.battery, nowMs);
  const reading =
    signals.onBattery !== null
      ? { atMs: nowMs, onBattery: signals.onBattery, percent: signals.batteryPercent }
      : held !== null && nowMs - held.atMs < policy.batteryHoldMs
        ? held
        : null;
  if (reading === null || !reading.onBattery) return { pause: null, battery: reading, batteryLow: false };
  const pause = (reason: string): Pause => ({ rule: 'battery', reason });
  if (!policy.runOnBattery) return { pause: pause(reasons.onBattery(reading.percent)), battery: reading, batteryLow: false };
  if (policy.minBatteryPercent === 0) return { pause: null, battery: reading, batteryLow: false };
  const low = memory.batteryLow || (reading.percent !== null && wholePercent(reading.percent) < policy.minBatteryPercent);
  if (low) return { pause: pause(reasons.batteryLow(reading.percent)), battery: reading, batteryLow: true };
  // A minimum that cannot be checked is not met: running a laptop flat is what gets a worker uninstalled.
  if (reading.percent === null) return { pause: pause(reasons.chargeUnknown), battery: reading, batteryLow: false };
  return { pause: null, battery: reading, batteryLow: false };
}

// ---------------------------------------------------------------- input

/** Whether the owner is at the machine, and how we know. */
export type Presence = { kind: 'locked' } | { kind: 'idle'; idleMs: number } | { kind: 'present' } | { kind: 'unknown' };

export interface InputOutcome {
  pause: Pause | null;
  presence: Presence;
  lastInputMs: number | null;
}

/**
 * Away = screen locked, or no input for `idleMs`. Input stops the worker at
 * once; it resumes only after `idleMs` without input again, which the idle
 * time gives for free because it counts from the last input.
 */
export function inputRule(policy: Policy, signals: Signals, memory: PolicyMemory, nowMs: number): InputOutcome {
  const remembered = memory.lastInputMs !== null && memory.lastInputMs <= nowMs ? memory.lastInputMs : null;
  const seen = signals.idleSeconds === null ? null : nowMs - signals.idleSeconds * 1000;
  const lastInputMs = remembered === null ? seen : seen === null ? remembered : Math.max(remembered, seen);

  let presence: Presence;
  // A locked screen says "away" even while someone nudges the mouse at the lock screen.
  if (signals.screenLocked === true) presence = { kind: 'locked' };
  else if (seen === null || lastInputMs === null) presence = { kind: 'unknown' };
  else if (nowMs - lastInputMs >= policy.idleMs) presence = { kind: 'idle', idleMs: nowMs - lastInputMs };
  else presence = { kind: 'present' };

  if (policy.runWhileInUse || presence.kind === 'locked' || presence.kind === 'idle') return { pause: null, presence, lastInputMs };
  // Without an idle source a desktop cannot know its owner left; running anyway is the impolite guess.
  const reason = presence.kind === 'unknown' ? reasons.inUseUnknown : reasons.inUse;
  return { pause: { rule: 'input', reason }, presence, lastInputMs };
}

// ---------------------------------------------------------------- CPU

export interface CpuOutcome {
  pause: Pause | null;
  cpuBusy: PolicyMemory['cpuBusy'];
}

/**
 * Pause at once when other programs use more than the threshold; resume only
 * after `cpuCalmMs` with no sample above it (see TIMINGS.cpuCalmSeconds for
 * why a hold time). An unknown sample is no evidence either way: it neither
 * pauses nor counts as calm, but the hold of an earlier busy sample still runs out.
 */
export function cpuRule(policy: Policy, signals: Signals, memory: PolicyMemory, nowMs: number): CpuOutcome {
  if (policy.cpuThresholdPercent === null) return { pause: null, cpuBusy: null };
  const percent = signals.otherCpu === null ? null : wholePercent(signals.otherCpu * 100);
  const busyNow = percent !== null && percent > policy.cpuThresholdPercent;
  const busy = busyNow ? { atMs: nowMs, percent } : past(memory.cpuBusy, nowMs);
  if (busy === null || nowMs - busy.atMs >= policy.cpuCalmMs) return { pause: null, cpuBusy: null };
  const reason = busyNow ? reasons.cpuBusy(busy.percent) : reasons.cpuWasBusy(busy.percent);
  return { pause: { rule: 'cpu', reason }, cpuBusy: busy };
}

// ---------------------------------------------------------------- the GPU

export interface GpuOutcome {
  /** Why jobs may not use the GPU now, or null. */
  off: string | null;
  gpuBusy: PolicyMemory['gpuBusy'];
  gpuHot: boolean;
}

/**
 * Keeps jobs off the GPU (not the worker off its CPU) while other programs
 * use it over the threshold, and for `cpuCalmMs` after, as the CPU rule
 * does; and while it runs hotter than the ceiling, until it has cooled by
 * GPU_COOL_DOWN_C. An unknown temperature keeps what was last known.
 */
export function gpuRule(policy: Policy, signals: Signals, memory: PolicyMemory, nowMs: number): GpuOutcome {
  const temp = signals.gpuTempC ?? null;
  const max = policy.gpuMaxTempC;
  const wasHot = memory.gpuHot ?? false;
  const gpuHot = max !== null && (temp === null ? wasHot : temp > max || (wasHot && temp > max - GPU_COOL_DOWN_C));
  let gpuBusy: PolicyMemory['gpuBusy'] = null;
  let busyReason: string | null = null;
  if (policy.gpuBusyPercent !== null) {
    const percent = signals.gpuBusy == null ? null : wholePercent(signals.gpuBusy * 100);
    const busyNow = percent !== null && percent > policy.gpuBusyPercent;
    const busy = busyNow ? { atMs: nowMs, percent } : past(memory.gpuBusy ?? null, nowMs);
    if (busy !== null && nowMs - busy.atMs < policy.cpuCalmMs) {
      gpuBusy = busy;
      busyReason = busyNow ? reasons.gpuBusy(busy.percent) : reasons.gpuWasBusy(busy.percent);
    }
  }
  const off = gpuHot ? reasons.gpuHot(temp ?? max!, max! - GPU_COOL_DOWN_C) : busyReason;
  return { off, gpuBusy, gpuHot };
}
