/**
 * Weekly time windows in which the worker may run, on the owner's wall clock.
 * A window belongs to the day it opens on: `{ days: ['fri'], from: '19:00',
 * to: '07:00' }` runs from Friday 19:00 to Saturday 07:00. `from` is
 * inclusive and `to` exclusive, so back-to-back windows never overlap.
 *
 *   const windows = compileSchedule([{ days: ['mon', 'tue'], from: '19:00', to: '07:00' }]);
 *   inSchedule(windows, wallClock(now.epochMs, now.timeZone)); // true on Tuesday 06:59, false at 07:00
 */
import { ScheduleWindow } from '../../protocol/policy.js';
import { formatMinutes, MINUTES_PER_DAY, WEEKDAYS, weekdayLabel, type WallClock } from './clock.js';

export { ScheduleWindow };

export interface CompiledWindow {
  /** Indexed by weekday (0 = Monday): whether the window opens that day. */
  days: readonly boolean[];
  from: number;
  /** Minutes of day; `to <= from` means the window closes on the next day. */
  to: number;
  /** "19:00–07:00", as the reason shows it. */
  label: string;
}

function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

export function compileSchedule(windows: readonly ScheduleWindow[]): CompiledWindow[] {
  return windows.map((w) => {
    const from = minutesOf(w.from);
    const to = minutesOf(w.to);
    return {
      days: WEEKDAYS.map((d) => w.days.includes(d)),
      from,
      to,
      label: `${formatMinutes(from)}\u2013${formatMinutes(to)}`,
    };
  });
}

function crossesMidnight(w: CompiledWindow): boolean {
  return w.to <= w.from;
}

function contains(w: CompiledWindow, clock: WallClock): boolean {
  const m = clock.minutesOfDay;
  if (!crossesMidnight(w)) return w.days[clock.weekday] === true && m >= w.from && m < w.to;
  const yesterday = (clock.weekday + 6) % 7;
  return (w.days[clock.weekday] === true && m >= w.from) || (w.days[yesterday] === true && m < w.to);
}

/** An empty schedule means "any time". */
export function inSchedule(windows: readonly CompiledWindow[], clock: WallClock): boolean {
  return windows.length === 0 || windows.some((w) => contains(w, clock));
}

/**
 * The next window to open after `clock`, as the reason shows it: "19:00–07:00"
 * when it opens later today, "tomorrow 19:00–07:00", or "Sat 09:00–17:00".
 * Only called outside the schedule, so a window that opened earlier today has
 * already closed; null for an empty schedule.
 */
export function nextOpening(windows: readonly CompiledWindow[], clock: WallClock): string | null {
  let best: { at: number; label: string } | null = null;
  // Offset 7 is the same weekday next week, for a window that opened earlier today.
  for (let offset = 0; offset <= 7; offset++) {
    const weekday = (clock.weekday + offset) % 7;
    for (const w of windows) {
      if (w.days[weekday] !== true || (offset === 0 && w.from <= clock.minutesOfDay)) continue;
      const at = offset * MINUTES_PER_DAY + w.from;
      if (best === null || at < best.at) {
        const day = offset === 0 ? '' : offset === 1 ? 'tomorrow ' : `${weekdayLabel(weekday)} `;
        best = { at, label: `${day}${w.label}` };
      }
    }
  }
  return best?.label ?? null;
}
