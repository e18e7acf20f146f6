/**
 * Local wall-clock time for the policy. Schedules ("runs 19:00–07:00") and
 * snooze ends ("until 15:20") are read on the owner's wall clock, so a
 * decision needs an instant *and* a time zone; passing both in keeps
 * `decide` pure and lets tests pick any moment in any zone.
 *
 *   const now = policyNow();                                  // this machine's clock and zone
 *   const now = policyNow(new Date('2025-03-10T18:00:00Z'), 'Europe/Berlin');
 *   wallClock(now.epochMs, now.timeZone);                     // { weekday: 0 (mon), minutesOfDay: 1140, day: 20157 }
 */

import { WEEKDAYS, type Weekday } from '../../protocol/policy.js';

export { WEEKDAYS, type Weekday };

const WEEKDAY_LABELS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const MS_PER_DAY = 86_400_000;
export const MINUTES_PER_DAY = 1440;

/** The moment a decision is made: an instant, and the IANA zone whose wall clock schedules are read on. */
export interface PolicyNow {
  epochMs: number;
  timeZone: string;
}

/** A wall-clock reading in one zone. */
export interface WallClock {
  /** 0 = Monday … 6 = Sunday (the order of `WEEKDAYS`). */
  weekday: number;
  /** 0 … 1439; seconds are dropped, so a window edge at 07:00 is crossed at 07:00:00. */
  minutesOfDay: number;
  /** The local calendar date as days since 1970-01-01: differences count calendar days, whatever DST does. */
  day: number;
}

/** `now` for `decide`: the system clock and zone unless given. Throws RangeError for an unknown zone. */
export function policyNow(date: Date = new Date(), timeZone: string = systemTimeZone(date.getTime())): PolicyNow {
  formatter(timeZone);
  return { epochMs: date.getTime(), timeZone };
}

let systemZone: { zone: string; untilMs: number } | null = null;

/**
 * The machine's zone, looked up again each minute: asking builds an
 * Intl.DateTimeFormat (tens of µs, twice a second for the life of the
 * worker), and a laptop that travels changes zone rarely.
 */
function systemTimeZone(nowMs: number): string {
  if (systemZone === null || nowMs >= systemZone.untilMs || nowMs < systemZone.untilMs - 60_000) {
    systemZone = { zone: Intl.DateTimeFormat().resolvedOptions().timeZone, untilMs: nowMs + 60_000 };
  }
  return systemZone.zone;
}

// Building an Intl.DateTimeFormat costs tens of microseconds and decide runs
// every few seconds for the life of the worker: keep one per zone.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    // hourCycle h23: with `hour12: false` some ICU versions print midnight as "24".
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The last reading per zone: every zone's offset is whole minutes, so one minute reads the same throughout. */
const lastReading = new Map<string, { minute: number; clock: WallClock }>();

export function wallClock(epochMs: number, timeZone: string): WallClock {
  const minute = Math.floor(epochMs / 60_000);
  const last = lastReading.get(timeZone);
  if (last?.minute === minute) return last.clock;
  const clock = readWallClock(epochMs, timeZone);
  lastReading.set(timeZone, { minute, clock });
  return clock;
}

function readWallClock(epochMs: number, timeZone: string): WallClock {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(epochMs)) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const day = Date.UTC(parts['year'] ?? 0, (parts['month'] ?? 1) - 1, parts['day'] ?? 1) / MS_PER_DAY;
  // 1970-01-01 was a Thursday, index 3 when Monday is 0.
  const weekday = (((day + 3) % 7) + 7) % 7;
  return { weekday, minutesOfDay: (parts['hour'] ?? 0) * 60 + (parts['minute'] ?? 0), day };
}

/** 1140 → "19:00"; 1440 → "24:00". */
export function formatMinutes(minutes: number): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
}

/** "Mon". */
export function weekdayLabel(weekday: number): string {
  return WEEKDAY_LABELS[weekday] ?? '?';
}

/**
 * A future moment as a person reads it on their clock: "15:20" today,
 * "tomorrow 08:00", "Sat 09:00" within the week, else "2025-03-20 09:00".
 */
export function formatMoment(epochMs: number, now: PolicyNow): string {
  const at = wallClock(epochMs, now.timeZone);
  const days = at.day - wallClock(now.epochMs, now.timeZone).day;
  const time = formatMinutes(at.minutesOfDay);
  if (days <= 0) return time;
  if (days === 1) return `tomorrow ${time}`;
  if (days < 7) return `${weekdayLabel(at.weekday)} ${time}`;
  return `${new Date(at.day * MS_PER_DAY).toISOString().slice(0, 10)} ${time}`;
}
