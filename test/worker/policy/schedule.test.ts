import { describe, expect, it } from 'vitest';
import { WEEKDAYS, type WallClock, type Weekday } from '../../../src/worker/policy/clock.js';
import { compileSchedule, inSchedule, nextOpening, ScheduleWindow } from '../../../src/worker/policy/schedule.js';

const at = (day: Weekday, hhmm: string): WallClock => ({
  weekday: WEEKDAYS.indexOf(day),
  minutesOfDay: Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3)),
  day: 0,
});
const WORKDAYS: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri'];
const nights = compileSchedule([{ days: WORKDAYS, from: '19:00', to: '07:00' }]);
const sundayNight = compileSchedule([{ days: ['sun'], from: '22:00', to: '02:00' }]);
const mondayOffice = compileSchedule([{ days: ['mon'], from: '09:00', to: '17:00' }]);
const saturday = compileSchedule([{ days: ['sat'], from: '00:00', to: '24:00' }]);
const saturdayToMidnight = compileSchedule([{ days: ['sat'], from: '12:00', to: '00:00' }]);
const splitMonday = compileSchedule([
  { days: ['mon'], from: '08:00', to: '12:00' },
  { days: ['mon'], from: '13:00', to: '17:00' },
]);

describe('inSchedule', () => {
  it.each([
    // Workday nights 19:00–07:00: the window belongs to the day it opens on.
    ['nights', nights, 'mon', '18:59', false],
    ['nights', nights, 'mon', '19:00', true],
    ['nights', nights, 'mon', '23:59', true],
    ['nights', nights, 'tue', '00:00', true],
    ['nights', nights, 'tue', '06:59', true],
    ['nights', nights, 'tue', '07:00', false],
    ['nights', nights, 'sat', '06:59', true], // Friday's night
    ['nights', nights, 'sat', '07:00', false],
    ['nights', nights, 'sat', '19:00', false],
    ['nights', nights, 'sun', '23:00', false],
    ['nights', nights, 'mon', '00:00', false], // Sunday night is not a workday night
    ['nights', nights, 'mon', '06:59', false],
    // Crossing midnight and the end of the week at once.
    ['sunday night', sundayNight, 'sun', '21:59', false],
    ['sunday night', sundayNight, 'sun', '22:00', true],
    ['sunday night', sundayNight, 'mon', '01:59', true],
    ['sunday night', sundayNight, 'mon', '02:00', false],
    ['sunday night', sundayNight, 'sat', '23:00', false],
    // Same-day window: from inclusive, to exclusive.
    ['monday office', mondayOffice, 'mon', '08:59', false],
    ['monday office', mondayOffice, 'mon', '09:00', true],
    ['monday office', mondayOffice, 'mon', '16:59', true],
    ['monday office', mondayOffice, 'mon', '17:00', false],
    ['monday office', mondayOffice, 'tue', '10:00', false],
    // A whole day, 00:00–24:00.
    ['saturday', saturday, 'fri', '23:59', false],
    ['saturday', saturday, 'sat', '00:00', true],
    ['saturday', saturday, 'sat', '23:59', true],
    ['saturday', saturday, 'sun', '00:00', false],
    // "to 00:00" after noon closes at the next midnight.
    ['saturday to midnight', saturdayToMidnight, 'sat', '11:59', false],
    ['saturday to midnight', saturdayToMidnight, 'sat', '23:59', true],
    ['saturday to midnight', saturdayToMidnight, 'sun', '00:00', false],
    // Two windows with a gap.
    ['split monday', splitMonday, 'mon', '11:59', true],
    ['split monday', splitMonday, 'mon', '12:30', false],
    ['split monday', splitMonday, 'mon', '13:00', true],
    ['no schedule', [], 'wed', '03:00', true],
  ] as const)('%s: %s %s → %s', (_name, windows, day, time, inside) => {
    expect(inSchedule(windows, at(day, time))).toBe(inside);
  });
});

describe('nextOpening', () => {
  it.each([
    ['nights', nights, 'mon', '10:00', '19:00\u201307:00'],
    ['nights', nights, 'fri', '18:59', '19:00\u201307:00'],
    ['nights', nights, 'sat', '07:00', 'Mon 19:00\u201307:00'],
    ['nights', nights, 'sun', '12:00', 'tomorrow 19:00\u201307:00'],
    ['monday office', mondayOffice, 'mon', '17:00', 'Mon 09:00\u201317:00'], // a week from now
    ['monday office', mondayOffice, 'mon', '09:00', 'Mon 09:00\u201317:00'], // opening this minute is not "next"
    ['monday office', mondayOffice, 'sun', '23:59', 'tomorrow 09:00\u201317:00'],
    ['split monday', splitMonday, 'mon', '12:00', '13:00\u201317:00'],
    ['saturday', saturday, 'tue', '09:00', 'Sat 00:00\u201324:00'],
    ['no schedule', [], 'tue', '09:00', null],
  ] as const)('%s: at %s %s → %s', (_name, windows, day, time, label) => {
    expect(nextOpening(windows, at(day, time))).toBe(label);
  });
});

describe('ScheduleWindow', () => {
  it.each([
    [{ days: ['mon'], from: '00:00', to: '24:00' }],
    [{ days: ['sun'], from: '23:59', to: '00:00' }],
    [{ days: WEEKDAYS, from: '19:00', to: '07:00' }],
  ])('accepts %j', (window) => {
    expect(ScheduleWindow.safeParse(window).success).toBe(true);
  });

  it.each([
    [{ days: ['mon'], from: '07:00', to: '07:00' }, 'from and to are equal'],
    [{ days: ['mon'], from: '00:00', to: '00:00' }, 'from and to are equal'],
    [{ days: ['mon'], from: '24:00', to: '07:00' }, 'from 00:00 to 23:59'],
    [{ days: ['mon'], from: '7:00', to: '08:00' }, 'HH:MM'],
    [{ days: ['mon'], from: '06:00', to: '23:60' }, 'from 00:00 to 24:00'],
    [{ days: ['mon'], from: '06:00', to: '24:01' }, 'from 00:00 to 24:00'],
    [{ days: [], from: '06:00', to: '07:00' }, 'days'],
    [{ days: ['monday'], from: '06:00', to: '07:00' }, 'days'],
    [{ days: ['mon'], from: '06:00', to: '07:00', tz: 'UTC' }, 'tz'],
  ])('rejects %j (%s)', (window, hint) => {
    const result = ScheduleWindow.safeParse(window);
    expect(result.success).toBe(false);
    const text = result.error!.issues.map((i) => `${i.path.join('.')} ${i.message} ${'keys' in i ? String(i.keys) : ''}`).join('\n');
    expect(text).toContain(hint);
  });
});
